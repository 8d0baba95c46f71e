"""One Realtime WebSocket, through the official ``openai`` package.

``AsyncOpenAI(base_url=..., api_key=...).realtime.connect(model=...)`` opens it (or
``connect(call_id=...)``, the sideband of a SIP call); the endpoint, key and model are
configuration, so the same code talks to OpenAI or to the local protocol server.

The package's own reconnection (``on_reconnecting``/``max_retries``) is deliberately *not* used:
a reconnect there opens a fresh server session behind our back (no instructions, tools or
conversation), while the engine must restore the current agent and the context and know the gap.
``CallSession`` does recreation itself; this class reports a close (code, reason) and stops.

Each received event carries its typed model event (``ServerEvent.event``, see
``realtime.model_events``): the session acts on those, never on the wire's dicts.

Every client shares one TLS context (`async_client`): building one loads the CA bundle, a few
hundred milliseconds of CPU on the event loop that every other call of the process would wait for.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import ssl
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import certifi
from openai import AsyncOpenAI, DefaultAsyncHttpxClient
from openai.types.realtime import RealtimeServerEvent
from websockets.exceptions import ConnectionClosed

from realtime.model_events import ModelEvent
from realtime.model_events import parse as parse_model_event

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from openai.resources.realtime.realtime import AsyncRealtimeConnection


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """The TLS context of every upstream client of the process (the CA bundle the SDK uses)."""
    return ssl.create_default_context(cafile=certifi.where())


def async_client(base_url: str, api_key: str, **options: Any) -> AsyncOpenAI:
    """An ``AsyncOpenAI`` client that reuses the process's TLS context (cheap to make per call)."""
    return AsyncOpenAI(base_url=base_url, api_key=api_key,
                       http_client=DefaultAsyncHttpxClient(verify=shared_ssl_context()), **options)


#: One client per event loop and endpoint (`shared_client`): making an ``AsyncOpenAI`` and its httpx
#: client and transport per call cost several milliseconds of CPU at every call start (bench.bridge).
_SHARED_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], AsyncOpenAI]] = (
    weakref.WeakKeyDictionary())


def shared_client(base_url: str, api_key: str) -> AsyncOpenAI:
    """The running event loop's client for ``base_url`` and ``api_key``, made on first use and
    shared by that loop's calls (so no call closes it; it goes with its loop)."""
    clients = _SHARED_CLIENTS.setdefault(asyncio.get_running_loop(), {})
    client = clients.get((base_url, api_key))
    if client is None:
        client = clients[(base_url, api_key)] = async_client(base_url, api_key, max_retries=0)
    return client


class ConnectionLost(Exception):
    """The WebSocket closed; ``code``/``reason`` are the close frame's (1001 on session expiry)."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"Realtime connection closed ({code}) {reason}".strip())
        self.code = code
        self.reason = reason


@dataclass
class ServerEvent:
    """A server event: its ``type``, the raw ``payload`` dict, ``event`` (the typed model event a
    session acts on, None for the rest) and ``parsed`` (the openai model)."""

    type: str
    payload: dict[str, Any]
    _conn: AsyncRealtimeConnection | None = None

    @property
    def event(self) -> ModelEvent | None:
        return parse_model_event(self.payload)

    @property
    def parsed(self) -> RealtimeServerEvent:
        if self._conn is None:
            raise RuntimeError("no connection to parse with")
        return self._conn.parse_event(json.dumps(self.payload))


@functools.lru_cache(maxsize=32)
def websocket_proxy(base_url: str) -> str | None:
    """The proxy the WebSocket to ``base_url`` goes through, as `websockets` finds it in the
    environment (None: direct). Looked up once per process and endpoint: `websockets` would
    read the whole environment twice on every connect (a call's set-up)."""
    from websockets.uri import get_proxy, parse_uri

    scheme, _, rest = base_url.partition("://")
    return get_proxy(parse_uri(f"{'wss' if scheme == 'https' else 'ws'}://{rest}"))


class RealtimeConnection:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        model: str,
        *,
        connect_timeout_s: float = 10.0,
        query: Mapping[str, str] | None = None,
        call_id: str | None = None,
        client: AsyncOpenAI,
    ) -> None:
        """``client``: the AsyncOpenAI client at ``base_url`` to connect through (the event loop's
        `shared_client` for the engine): this class never closes it.
        ``api_key`` is the client's own; it is not read here."""
        self.base_url = base_url
        self.model = model
        self.call_id = call_id
        self.query = dict(query or {})
        self.connect_timeout_s = connect_timeout_s
        self._client = client
        self._conn: AsyncRealtimeConnection | None = None
        self.closed = False

    @property
    def client(self) -> AsyncOpenAI:
        """The HTTP client at the same base URL (the supervisor's Responses API, moderation)."""
        return self._client

    async def open(self) -> None:
        options: Any = {"proxy": websocket_proxy(str(self._client.base_url))}
        if self.call_id:  # a sideband connection to a call the provider carries: no model
            manager = self._client.realtime.connect(call_id=self.call_id, extra_query=self.query,
                                                    websocket_connection_options=options)
        else:
            manager = self._client.realtime.connect(model=self.model, extra_query=self.query,
                                                    websocket_connection_options=options)
        self._conn = await asyncio.wait_for(manager.enter(), self.connect_timeout_s)
        self.closed = False

    async def send(self, event: Mapping[str, Any]) -> None:
        """Send one client event (a GA ``RealtimeClientEventParam`` shaped dict)."""
        await self.send_json(json.dumps(event, ensure_ascii=False))

    async def send_json(self, data: str) -> None:
        if self._conn is None or self.closed:
            raise ConnectionLost(None, "not connected")
        try:
            ws = _direct_socket(self._conn)
            if ws is not None:
                await ws.send(data)
            else:
                await self._conn.send_raw(data)
        except ConnectionClosed as exc:
            self.closed = True
            raise _lost(exc) from exc

    async def recv(self) -> ServerEvent:
        """The next server event; raises ``ConnectionLost`` when the socket closes."""
        if self._conn is None:
            raise ConnectionLost(None, "not connected")
        try:
            data = await self._conn.recv_bytes()
        except ConnectionClosed as exc:
            self.closed = True
            raise _lost(exc) from exc
        payload = cast(dict[str, Any], json.loads(data))
        return ServerEvent(str(payload.get("type", "")), payload, self._conn)

    async def close(self) -> None:
        self.closed = True
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                await asyncio.wait_for(conn.close(), 2.0)
            except Exception as exc:  # noqa: BLE001 — closing a dead socket may fail; nothing to do
                log.debug("closing the Realtime connection failed: %s", exc)

_MISSING = object()


def _direct_socket(conn: Any) -> Any:
    """The WebSocket under the SDK's connection when a send may go straight to it: the SDK's own
    send (a backlog queue for its reconnection, which is not used here, and a task lookup) cost a
    third of each audio frame's send. None, and the SDK's send, whenever that queue holds
    anything, it is reconnecting, or its internals are not the ones known here."""
    queue = getattr(conn, "_send_queue", _MISSING)
    ws = getattr(conn, "_connection", None)
    if queue is _MISSING or ws is None or getattr(conn, "_is_reconnecting", True) or queue:
        return None
    if getattr(conn, "_intentionally_closed", True):
        return None
    return ws


def _lost(exc: ConnectionClosed) -> ConnectionLost:
    frame = exc.rcvd or exc.sent
    return ConnectionLost(frame.code if frame else None, frame.reason if frame else "")
