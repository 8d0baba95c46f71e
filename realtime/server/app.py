"""`ProtocolServer`: the production ASGI app (WebSocket /v1/realtime, POST /v1/realtime/client_secrets,
POST /v1/responses, POST /v1/moderations, OpenAI SIP's /v1/realtime/calls/{call_id}/... and the
`?call_id=` sideband), served by daphne from the CLI (`serve.py`) or in-process on the small server
of `asgi.py` (``await server.start(host, port)``).

It holds only live sessions (a closed one is dropped), unexpired client secrets, and nothing of
the HTTP requests it answered. The test peer (`peer.RealtimeServer`) subclasses it through the
hooks below (``create_session``, ``session_options``, ``session_opened``, ``session_closed``,
``record_request``, ``refuse``); nothing here imports it."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from openai.types.realtime import RealtimeSessionCreateRequest
from pydantic import ValidationError

from .asgi import ASGIServer, Message, Scope
from .moderation import ModerationRefused, Moderator, check_response
from .responders import (
    DefaultResponder,
    FunctionCallOutput,
    Responder,
    ResponseContext,
    ScriptedTranscriber,
    Synthesizer,
    TextOutput,
    ToneSynthesizer,
    Transcriber,
)
from .session import RealtimeSession, SessionDeps
from .sip import SipCall, SipCalls
from .state import DEFAULT_MODEL, default_session, merge_session, new_id, text_tokens
from .vad import EnergyVAD, VoiceActivityDetector
from .validation import _adapter, unknown_fields

log = logging.getLogger(__name__)

Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_REQUEST_BODY = 8 * 1024 * 1024
"""HTTP request bodies (/v1/responses, client secrets...) larger than this get 413."""
MAX_CLIENT_SECRETS = 10_000
"""Unexpired client secrets held at once; past it minting answers 429 until some expire."""
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


_last_trim = 0.0
_trim_pending = False


def _deferred_trim() -> None:
    global _trim_pending
    _trim_pending = False
    release_freed_memory()


def release_freed_memory(min_interval: float = 1.0) -> None:
    """Hand freed heap memory back to the system (glibc's ``malloc_trim``), at most once per
    ``min_interval`` seconds. Without it, the buffers of a large frame or a long call stay in the
    process's heap after they are freed (glibc raises its mmap threshold after a large free, so
    later large buffers come from the heap, which it does not shrink on its own)."""
    global _last_trim, _trim_pending
    now = time.monotonic()
    if now - _last_trim < min_interval:
        if not _trim_pending:  # once the interval is over, then
            _trim_pending = True
            asyncio.get_running_loop().call_later(min_interval, _deferred_trim)
        return
    _last_trim = now
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to do
        return None


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine."""
    import ipaddress

    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class ClientSecret:
    value: str
    expires_at: float
    session: dict[str, Any]


class _ASGITransport:
    def __init__(self, send: Send, scope: Scope) -> None:
        self._send = send
        self._can_abort = "realtime.abort" in (scope.get("extensions") or {})

    async def send_text(self, text: str) -> None:
        await self._send({"type": "websocket.send", "text": text})

    async def close(self, code: int, reason: str) -> None:
        await self._send({"type": "websocket.close", "code": code, "reason": reason})

    async def abort(self) -> None:
        if self._can_abort:
            await self._send({"type": "realtime.abort"})
        else:
            await self._send({"type": "websocket.close", "code": 1011, "reason": "connection dropped"})


def _json_response_body(status: int, payload: Any) -> tuple[int, bytes]:
    return status, json.dumps(payload).encode()


def _api_error(message: str, code: str | None, param: str | None = None, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class ProtocolServer:
    """The protocol server. An ASGI app (``await server(scope, receive, send)``) that can also run
    itself: ``await server.start(host="127.0.0.1", port=0)`` then ``server.url`` / ``server.base_url``."""

    def __init__(
        self,
        *,
        api_key: str | None = "sk-test",
        responder: Responder | None = None,
        text_responder: Responder | None = None,
        transcriber: Transcriber | None = None,
        synthesizer: Synthesizer | None = None,
        vad_factory: Callable[[], VoiceActivityDetector] = EnergyVAD,
        max_session_seconds: float | None = 3600.0,
        validate_outgoing: bool = False,
        default_model: str = DEFAULT_MODEL,
        client_secret_ttl: int = 60,
        max_sessions: int | None = None,
        moderation_terms: Mapping[str, Iterable[str]] | None = None,
        debug: bool = False,
    ) -> None:
        self.api_key = api_key
        self.max_sessions = max_sessions
        self.engine: Any = None
        """The offline engine behind the pluggable parts, when there is one (`offline_server`)."""
        self.deps = SessionDeps(
            responder=responder or DefaultResponder(),
            transcriber=transcriber or ScriptedTranscriber(),  # no transcriber: no transcripts
            synthesizer=synthesizer or ToneSynthesizer(),
            vad_factory=vad_factory,
            validate_outgoing=validate_outgoing,
            debug=debug,
        )
        self.text_responder: Responder = text_responder or DefaultResponder()
        self.max_session_seconds = max_session_seconds
        self.default_model = default_model
        self.client_secret_ttl = client_secret_ttl
        self.secrets: dict[str, ClientSecret] = {}
        """Unexpired client secrets (expired ones are purged whenever one is minted or checked)."""
        self.sessions: list[RealtimeSession] = []
        """The live sessions (the test peer keeps closed ones too)."""
        self.moderation = Moderator(moderation_terms)
        """The classifier behind ``POST /v1/moderations``; ``moderation.flag(category, *terms)``."""
        self.sip = SipCalls()
        self._server: ASGIServer | None = None
        self.host = "127.0.0.1"
        self.port = 0

    # ------------------------------------------------------------------ control
    @property
    def validation_failures(self) -> list[str]:
        """Server events that did not validate (only collected with ``validate_outgoing=True``)."""
        return self.deps.validation_failures

    def incoming_sip_call(self, from_: str = "+15550100000", to: str = "+15550199999",
                          headers: dict[str, str] | None = None) -> SipCall:
        """An incoming OpenAI SIP call waiting to be accepted (see `sip.py`)."""
        return self.sip.incoming(from_, to, headers)

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/v1/realtime"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> ProtocolServer:
        self._server = ASGIServer(self)
        self.host, self.port = await self._server.start(host, port)
        return self

    async def stop(self) -> None:
        for session in list(self.sessions):
            if not session.closed:
                await session.close(1001, "server shutting down")
        if self._server is not None:
            await self._server.stop()
            self._server = None

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    # ------------------------------------------------------------------ hooks (the test peer's)
    def create_session(self, transport: Any, **kwargs: Any) -> RealtimeSession:
        return RealtimeSession(transport, self.deps, **kwargs)

    def session_options(self, query: dict[str, list[str]]) -> dict[str, Any]:
        """Extra keyword arguments for `create_session` from the URL query; ValueError refuses
        the connection with 400. Production reads nothing from the query but the model."""
        return {}

    async def session_opened(self, session: RealtimeSession) -> None:
        self.sessions.append(session)

    def session_closed(self, session: RealtimeSession) -> None:
        """A closed session is dropped: nothing of it stays in the server, and the memory it freed
        goes back to the system."""
        with contextlib.suppress(ValueError):
            self.sessions.remove(session)
        release_freed_memory()

    def record_request(self, kind: str, payload: dict[str, Any]) -> None:
        """An HTTP request answered (``responses``, ``moderations``); production keeps nothing."""

    def refuse(self, reason: str) -> None:
        log.info("refused: %s", reason)

    # ------------------------------------------------------------------ auth
    def _bearer(self, scope: Scope) -> str | None:
        for key, value in scope.get("headers", []):
            if key == b"authorization":
                text = value.decode("latin-1")
                if text.lower().startswith("bearer "):
                    return text[7:].strip()
        for key, value in scope.get("headers", []):
            if key == b"sec-websocket-protocol":
                for proto in value.decode("latin-1").split(","):
                    proto = proto.strip()
                    if proto.startswith("openai-insecure-api-key."):
                        return proto[len("openai-insecure-api-key.") :]
        return None

    def _check_key(self, token: str | None, *, allow_ephemeral: bool) -> tuple[bool, ClientSecret | None]:
        if not token:
            return False, None
        if allow_ephemeral and token.startswith("ek_"):
            self._purge_secrets()
            secret = self.secrets.get(token)
            if secret is not None and secret.expires_at > time.time():
                return True, secret
            return False, None
        if self.api_key is None:
            return True, None
        return secrets.compare_digest(token.encode(), self.api_key.encode()), None

    # ------------------------------------------------------------------ ASGI
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # websocket.connect
        path = scope.get("path", "")
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        ok, secret = self._check_key(self._bearer(scope), allow_ephemeral=True)
        status, body = 0, b""
        if not path.rstrip("/").endswith("/realtime"):
            status, body = _json_response_body(404, _api_error(f"Unknown path {path}", "not_found"))
        elif not ok:
            status, body = _json_response_body(
                401, _api_error("Incorrect API key provided or missing Authorization header.", "invalid_api_key")
            )
        options: dict[str, Any] = {}
        if not status:
            try:
                options = self.session_options(query)
            except ValueError as exc:
                status, body = _json_response_body(400, _api_error(str(exc), "invalid_value", "fault"))
        sip_call: SipCall | None = None
        if not status and query.get("call_id"):
            sip_call, status, body = self.sip.sideband(query["call_id"][0])
        if status:
            self.refuse(f"{status} {path}")
            if "websocket.http.response" in (scope.get("extensions") or {}):
                await send({"type": "websocket.http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
                await send({"type": "websocket.http.response.body", "body": body})
            else:
                await send({"type": "websocket.close", "code": 1008})
            return
        offered = scope.get("subprotocols") or []
        await send({"type": "websocket.accept", "subprotocol": "realtime" if "realtime" in offered else None})
        live = sum(1 for s in self.sessions if not s.closed)
        if self.max_sessions is not None and live >= self.max_sessions:
            # Refuse the new call rather than slow every call down: the client sees why, then 1013.
            self.refuse(f"capacity {path}")
            error = {
                "type": "error",
                "event_id": new_id("event"),
                "error": {
                    "type": "server_error",
                    "code": "engine_at_capacity",
                    "message": f"The offline engine is carrying its maximum of {self.max_sessions} concurrent sessions; try again later.",
                    "param": None,
                    "event_id": None,
                },
            }
            await send({"type": "websocket.send", "text": json.dumps(error)})
            await send({"type": "websocket.close", "code": 1013, "reason": "engine at capacity"})
            return
        model = (query.get("model") or [self.default_model])[0]
        initial = secret.session if secret is not None else None
        if sip_call is not None and sip_call.accepted_session is not None:
            model, initial = sip_call.accepted_session.get("model") or self.default_model, sip_call.accepted_session
        session = self.create_session(
            _ASGITransport(send, scope), model=model, max_seconds=self.max_session_seconds, initial_session=initial, **options
        )
        if sip_call is not None:
            sip_call.sessions.append(session)
        await self.session_opened(session)
        closed_wait = asyncio.ensure_future(session.closed_event.wait())
        try:
            await session.start()
            while not session.closed:
                recv = asyncio.ensure_future(receive())
                done, _ = await asyncio.wait({recv, closed_wait}, return_when=asyncio.FIRST_COMPLETED)
                if recv not in done:
                    recv.cancel()
                    break
                message = recv.result()
                if message["type"] == "websocket.receive":
                    raw = message.get("text")
                    await session.handle_raw(raw if raw is not None else message.get("bytes") or b"")
                elif message["type"] == "websocket.disconnect":
                    session.disconnected(int(message.get("code", 1000)))
                    break
        finally:
            closed_wait.cancel()
            session.disconnected()
            try:
                await session.shutdown()
            finally:
                self.session_closed(session)

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The request body, or None when it is larger than `MAX_REQUEST_BODY`."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_REQUEST_BODY:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "").rstrip("/")
        method = scope.get("method", "GET")
        status, body = 404, json.dumps(_api_error(f"Unknown path {path}", "not_found")).encode()
        if path == "/healthz" and method == "GET":
            status, body = 200, b'{"status":"ok"}'
        elif "/realtime/calls/" in path and method == "POST":
            status, body = await self._sip_request(scope, receive, path)
        elif path.endswith(("/realtime/client_secrets", "/responses", "/moderations")):
            if method != "POST":
                status, body = _json_response_body(405, _api_error("Method not allowed", "method_not_allowed"))
            elif not self._check_key(self._bearer(scope), allow_ephemeral=False)[0]:
                status, body = _json_response_body(
                    401, _api_error("Incorrect API key provided or missing Authorization header.", "invalid_api_key")
                )
            else:
                status, body = await self._api_request(path, receive)
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    async def _api_request(self, path: str, receive: Receive) -> tuple[int, bytes]:
        raw = await self._read_body(receive)
        if raw is None:
            return _json_response_body(413, _api_error(f"The request body is larger than {MAX_REQUEST_BODY} bytes.", "request_too_large"))
        try:
            payload = json.loads(raw or b"{}")
            if not isinstance(payload, dict):
                raise TypeError("body must be an object")
        except (TypeError, ValueError) as exc:
            return _json_response_body(400, _api_error(f"Invalid JSON body: {exc}", "invalid_json"))
        if path.endswith("/client_secrets"):
            return self._client_secret(payload)
        if path.endswith("/moderations"):
            return self._moderations(payload)
        return await self._responses(payload)

    async def _sip_request(self, scope: Scope, receive: Receive, path: str) -> tuple[int, bytes]:
        if not self._check_key(self._bearer(scope), allow_ephemeral=False)[0]:
            return _json_response_body(
                401, _api_error("Incorrect API key provided or missing Authorization header.", "invalid_api_key"))
        raw = await self._read_body(receive)
        if raw is None:
            return _json_response_body(413, _api_error(f"The request body is larger than {MAX_REQUEST_BODY} bytes.", "request_too_large"))
        try:
            payload = json.loads(raw or b"{}")
        except ValueError as exc:
            return _json_response_body(400, _api_error(f"Invalid JSON body: {exc}", "invalid_json"))
        if not isinstance(payload, dict):
            return _json_response_body(400, _api_error("Invalid JSON body: body must be an object", "invalid_json"))
        return await self.sip.handle_http(path, payload)

    def _client_secret(self, payload: dict[str, Any]) -> tuple[int, bytes]:
        session_req = payload.get("session") or {"type": "realtime"}
        if not isinstance(session_req, dict) or session_req.get("type") != "realtime":
            return _json_response_body(400, _api_error("session.type must be 'realtime'.", "invalid_value", "session.type"))
        try:
            parsed = _adapter(RealtimeSessionCreateRequest).validate_python(session_req, strict=True)
        except ValidationError as exc:
            return _json_response_body(400, _api_error(f"Invalid session: {exc.errors()[0]['msg']}", "invalid_value", "session"))
        extra = unknown_fields(parsed, "session")
        if extra:
            return _json_response_body(400, _api_error(f"Unknown parameter: '{extra[0]}'.", "unknown_parameter", extra[0]))
        ttl = (payload.get("expires_after") or {}).get("seconds", self.client_secret_ttl)
        if not isinstance(ttl, int) or not 1 <= ttl <= 7200:
            return _json_response_body(400, _api_error("expires_after.seconds must be 1..7200.", "invalid_value", "expires_after.seconds"))
        self._purge_secrets()
        if len(self.secrets) >= MAX_CLIENT_SECRETS:
            return _json_response_body(
                429,
                _api_error(f"Too many unexpired client secrets ({MAX_CLIENT_SECRETS}); try again when some expire.",
                           "rate_limit_exceeded", kind="rate_limit_error"),
            )
        now = time.time()
        value = "ek_" + secrets.token_hex(16)
        model = session_req.get("model") or self.default_model
        session = default_session(new_id("sess"), model, int(now + (self.max_session_seconds or 3600)))
        merge_session(session, session_req)
        self.secrets[value] = ClientSecret(value, now + ttl, session_req)
        return _json_response_body(200, {"value": value, "expires_at": int(now + ttl), "session": session})

    def _purge_secrets(self) -> None:
        now = time.time()
        for value in [v for v, secret in self.secrets.items() if secret.expires_at <= now]:
            del self.secrets[value]

    def _moderations(self, payload: dict[str, Any]) -> tuple[int, bytes]:
        self.record_request("moderations", payload)
        try:
            result = self.moderation.create(payload)
        except ModerationRefused as exc:
            return _json_response_body(400, _api_error(exc.message, exc.code, exc.param))
        if self.deps.validate_outgoing:
            self.deps.validation_failures.extend(check_response(result))
        return _json_response_body(200, result)

    async def _responses(self, payload: dict[str, Any]) -> tuple[int, bytes]:
        self.record_request("responses", payload)
        model = payload.get("model")
        if not isinstance(model, str) or not model:
            return _json_response_body(400, _api_error("Missing required parameter: 'model'.", "missing_required_parameter", "model"))
        if payload.get("stream"):
            return _json_response_body(400, _api_error("Streaming is not supported by this server.", "invalid_value", "stream"))
        items = _responses_input_items(payload.get("input"))
        tools = payload.get("tools") or []
        instructions = payload.get("instructions") or ""
        ctx = ResponseContext(
            instructions=instructions,
            tools=tools,
            tool_choice=payload.get("tool_choice", "auto"),
            items=items,
            output_modalities=["text"],
            metadata=payload.get("metadata"),
        )
        plan = await self.text_responder.respond(ctx)
        output: list[dict[str, Any]] = []
        out_tokens = 0
        for out in plan.outputs:
            if isinstance(out, TextOutput):
                output.append(
                    {
                        "type": "message",
                        "id": new_id("msg"),
                        "status": "completed",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": out.text, "annotations": [], "logprobs": []}],
                    }
                )
                out_tokens += text_tokens(out.text)
            elif isinstance(out, FunctionCallOutput):
                output.append(
                    {
                        "type": "function_call",
                        "id": new_id("fc"),
                        "call_id": out.call_id or new_id("call"),
                        "name": out.name,
                        "arguments": out.arguments,
                        "status": "completed",
                    }
                )
                out_tokens += text_tokens(out.name) + text_tokens(out.arguments)
        in_tokens = text_tokens(instructions) + text_tokens(json.dumps(tools)) + text_tokens(json.dumps(items))
        body = {
            "id": new_id("resp"),
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed",
            "model": model,
            "output": output,
            "parallel_tool_calls": bool(payload.get("parallel_tool_calls", True)),
            "tool_choice": payload.get("tool_choice", "auto"),
            "tools": tools,
            "instructions": payload.get("instructions"),
            "metadata": payload.get("metadata") or {},
            "previous_response_id": payload.get("previous_response_id"),
            "temperature": payload.get("temperature", 1.0),
            "top_p": payload.get("top_p", 1.0),
            "error": None,
            "incomplete_details": None,
            "text": {"format": {"type": "text"}},
            "usage": {
                "input_tokens": in_tokens,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": out_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": in_tokens + out_tokens,
            },
        }
        return _json_response_body(200, body)


def _responses_input_items(value: Any) -> list[dict[str, Any]]:
    """Responses API input (a string or items) as Realtime-style items for a `ResponseContext`."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}]
    items: list[dict[str, Any]] = []
    for raw in value or []:
        if not isinstance(raw, dict):
            continue
        kind = raw.get("type", "message")
        if kind == "message":
            role = raw.get("role", "user")
            content = raw.get("content")
            part_type = "output_text" if role == "assistant" else "input_text"
            if isinstance(content, str):
                parts = [{"type": part_type, "text": content}]
            else:
                parts = [{"type": part_type, "text": c.get("text", "")} for c in content or [] if isinstance(c, dict)]
            items.append({"type": "message", "role": role, "content": parts})
        elif kind in ("function_call", "function_call_output"):
            items.append({k: v for k, v in raw.items() if k in ("type", "call_id", "name", "arguments", "output", "id")})
    return items
