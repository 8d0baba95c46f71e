"""The connection's lifecycle: open, retry, failover, deadline, recreation.

The engine alone recreates a call's Realtime session: before the session's maximum length (a
deadline armed on every connect, waiting for a pause between responses when it can), after a
drop or an expiry, on an operator's ask, and on failover to the scenario's offline provider.
A recreation opens a new connection (with retries and backoff), configures the current agent,
restores the context and sends the caller audio kept meanwhile; past the retry budget the call
ends cleanly (escalated to the fallback path).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from realtime import events as ev
from realtime.connection import ConnectionLost, RealtimeConnection, shared_client

from .util import ms_since

if TYPE_CHECKING:
    from .core import CallSession

log = logging.getLogger(__name__)


class ConnectionLifecycle:
    def __init__(self, session: CallSession) -> None:
        self.s = session
        self.conn: RealtimeConnection | None = None
        self.recreating = False
        self.expired = False
        """The server said the session expired: its close is an expiry, not a drop."""
        self._reader: asyncio.Task[None] | None = None
        self._deadline: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._client: Any = None
        self._base_url, self._api_key = session.config.base_url, session.config.api_key

    def tasks(self) -> list[asyncio.Task[Any] | None]:
        return [self._reader, self._deadline]

    def http_client(self) -> Any:
        """The HTTP client at the Realtime base URL (connections, Responses API, moderation): the
        event loop's shared one for this provider (`connection.shared_client`; one per call cost
        several milliseconds of CPU at every call start)."""
        if self._client is None:
            self._client = shared_client(self._base_url, self._api_key)
        return self._client

    def _forget_client(self) -> None:
        """Forget the client (the call ended or failed over): it is the loop's, never closed by a call."""
        self._client = None

    async def release(self) -> None:
        """The call ended: the connection and the client go."""
        conn, self.conn = self.conn, None
        if conn is not None:
            await conn.close()
        self._forget_client()

    # ------------------------------------------------------------ connecting

    async def _open(self) -> RealtimeConnection:
        # The loop's client for this provider: a recreation costs the WebSocket handshake only.
        config = self.s.config
        conn = RealtimeConnection(
            self._base_url, self._api_key, self.s.model,
            connect_timeout_s=config.connect_timeout_s, query=config.connect_query,
            call_id=config.sideband_call_id, client=self.http_client(),
        )
        try:
            await conn.open()
        except BaseException:
            await conn.close()
            raise
        return conn

    async def connect_with_retries(self, restoring: bool = False) -> int:
        """Open and configure a connection; the number of attempts it took, 0 if it failed."""
        s = self.s
        config = s.config
        for attempt in range(1, max(1, config.retry_budget) + 1):
            if s.ended:
                return 0
            try:
                conn = await self._open()
                if s.ended:  # the call ended while the connection was opening
                    await conn.close()
                    return 0
            except Exception as exc:  # noqa: BLE001 — best effort, reported
                await s._emit(ev.Error(code="connect_failed", message=f"{type(exc).__name__}: {exc}", source="engine"))
                if await self._fail_over(f"{type(exc).__name__}: {exc}"):
                    continue
                await asyncio.sleep(min(config.retry_backoff_s * 2 ** (attempt - 1), config.retry_backoff_max_s))
                continue
            self.conn = conn
            s.setup.new_connection()
            self.expired = False
            self._reader = asyncio.create_task(self._read_loop(conn), name=f"realtime-reader-{s.call_id}")
            try:
                await s.setup.configure(restoring)
            except ConnectionLost:
                continue
            self._arm_deadline()
            return attempt
        return 0

    async def _fail_over(self, reason: str) -> bool:
        """Switch to the scenario's failover provider (once per call); False when there is none."""
        s = self.s
        target = s.config.failover_base_url
        if s.sideband:  # the call itself lives at the provider: there is nowhere to fail over to
            return False
        if s.provider != "primary" or s.spec.failover_provider != "offline" or not target:
            return False
        if target.rstrip("/") == self._base_url.rstrip("/"):  # already on it (no key: the offline engine)
            return False
        self._base_url, self._api_key = target, s.config.failover_api_key
        s.provider = s.spec.failover_provider
        # The supervisor's Responses calls and moderation follow (the client is made again on use).
        self._forget_client()
        await s._emit(ev.ProviderFailover(provider=s.provider, reason=reason))
        return True

    def _arm_deadline(self) -> None:
        s = self.s
        if self._deadline is not None and not self._deadline.done() and self._deadline is not asyncio.current_task():
            self._deadline.cancel()
        limit = float(s.spec.limits.max_session_seconds)
        if limit <= 0 or s.sideband:
            return
        margin = min(s.config.recreate_margin_s, limit * 0.2)
        self._deadline = asyncio.create_task(self._deadline_watch(limit - margin))

    async def _deadline_watch(self, after_s: float) -> None:
        s = self.s
        await asyncio.sleep(after_s)
        # Prefer a pause between responses, but never wait past the hard limit's margin.
        waited = 0.0
        while s.responses.active and waited < max(0.0, s.config.recreate_margin_s / 2):
            await asyncio.sleep(0.05)
            waited += 0.05
        s._spawn(self.recreate("max_session_length"))

    async def _read_loop(self, conn: RealtimeConnection) -> None:
        s = self.s
        try:
            while True:
                event = await conn.recv()
                try:
                    await s._on_server_event(event)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.exception("engine failed on %s", event.type)
                    await s._emit(ev.Error(code="engine_error", message=f"{type(exc).__name__}: {exc}", source="engine"))
        except ConnectionLost as exc:
            if s.ended or conn is not self.conn:
                return
            await self._lost(exc)

    async def _lost(self, exc: ConnectionLost) -> None:
        s = self.s
        if self.recreating:  # the new session went while being set up: once this one is done, again
            s._spawn(self.recreate("connection_lost"))
            return
        if s.sideband and exc.code == 1000:
            # The provider closes the sideband cleanly when the SIP call is over.
            s._spawn(s.close("caller_hung_up"))
            return
        if exc.code == 1013:  # "try again later": the provider is at capacity (the offline engine)
            await s._emit(ev.Error(code="engine_at_capacity", message=str(exc), source="connection", fatal=True))
            if await self._fail_over(str(exc)):
                s._spawn(self.recreate("provider_at_capacity"))
            else:
                s._spawn(s.close("engine_at_capacity"))
            return
        reason = "session_expired" if self.expired or exc.code == 1001 else "connection_lost"
        await s._emit(ev.Error(code=reason, message=str(exc), source="connection"))
        s._spawn(self.recreate(reason))

    # ------------------------------------------------------------ recreation

    async def recreate(self, reason: str) -> bool:
        """Open a fresh Realtime session and restore the agent and context. False if given up."""
        if self.s.ended:
            return False
        async with self._lock:
            if self.s.ended:  # the call may have ended while waiting for the lock
                return False
            return await self._recreate(reason)

    async def _recreate(self, reason: str) -> bool:
        s = self.s
        started = time.monotonic()
        s.state = "recreating"
        self.recreating = True
        s._ready.clear()
        old, self.conn = self.conn, None
        current = asyncio.current_task()
        for task in (self._reader, self._deadline):
            if task is not None and task is not current:
                task.cancel()
        if old is not None:
            await old.close()
        had_response = s.responses.active
        await s.context.session_going(s.audio_in.untranscribed)
        carried = s.audio_in.carry_uncommitted()
        s.responses.reset()
        s.context.session_gone()
        s.tool_calls.known_calls.clear()
        s.playback.current_item_id = None
        attempts = await self.connect_with_retries(restoring=True)
        if attempts == 0:
            self.recreating = False
            await self.give_up(f"the Realtime session could not be recreated after {reason}")
            return False
        buffered = await s.audio_in.flush_backlog()
        self.recreating = False
        s.state = "active"
        s._ready.set()
        await s._emit(ev.SessionRecreated(
            gap_ms=ms_since(started), reason=reason, attempts=attempts, buffered_audio_bytes=buffered,
            restored_items=s.context.restored_count, carried_audio_bytes=carried,
        ))
        last = s.transcript[-1] if s.transcript else None
        pending = s.responses.pending
        if had_response or pending is not None or (last is not None and last.role == "user"):
            await s.responses.request(pending)
        return True

    async def give_up(self, why: str) -> None:
        """Past the retry budget: the fallback path, and the call ends cleanly."""
        s = self.s
        await s._emit(ev.Error(code="session_lost", message=why, source="engine", fatal=True))
        await s._emit(ev.Escalation(reason=why, source="engine", agent=s.spec.fallback_agent or s.current_agent))
        await s.close("session_lost")
