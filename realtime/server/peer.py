"""The test peer: the production server and session wrapped with recording, scripts and faults.

``RealtimeServer`` (the name tests have always used; also ``realtime.server.RealtimeServer``) is a
`ProtocolServer` that

- keeps every session, closed ones too, with its event logs (``client_events``,
  ``server_events``, ``event_times``, ``errors``, ``responses``), and the HTTP requests it
  answered (``responses_requests``, ``moderation_requests``, ``refused``);
- answers from scripts first: ``server.script(...)`` / ``session.script(...)`` for Realtime
  responses, ``server.script_text(...)`` for ``/v1/responses``, ``add_transcripts(...)`` for
  committed audio; the pluggable responder, transcriber and text responder after them;
- injects faults (`faults.Faults`): ``RealtimeServer(faults=...)``, ``server.faults``, the
  ``?fault=`` query of the WebSocket URL, ``session.inject_error()``, ``session.drop()``.

Production code never imports this module: ``python -m realtime.server`` loads it only when
started with ``--test-peer``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from .app import ProtocolServer
from .faults import Faults, parse_faults
from .responders import (
    ChainTranscriber,
    DefaultResponder,
    Responder,
    ScriptedResponder,
    ScriptedTranscriber,
    ScriptQueue,
    Transcriber,
)
from .session import RealtimeSession, SessionDeps, Transport
from .state import new_id


class PeerSession(RealtimeSession):
    """A `RealtimeSession` with per-session scripts, faults and (through ``debug``) event logs."""

    def __init__(self, transport: Transport, deps: SessionDeps, *, global_queue: ScriptQueue, faults: Faults, **kwargs: Any) -> None:
        super().__init__(transport, deps, **kwargs)
        self.faults = faults
        self.queue = ScriptQueue()
        self.global_queue = global_queue
        self.transcripts = ScriptedTranscriber()
        self.responder: Responder = ScriptedResponder(self.queue, global_queue, fallback=deps.responder)
        self.transcriber: Transcriber = ChainTranscriber(self.transcripts, deps.transcriber)
        self._sent = 0
        self._audio_deltas = 0
        self._error_injected = False

    # ------------------------------------------------------------------ test control
    def script(self, *responses: Any) -> None:
        """Queue scripted responses for this session only (see `responders.response`)."""
        self.queue.extend(responses)

    def add_transcripts(self, *texts: str) -> None:
        """Queue transcripts for the next committed audio buffers of this session."""
        self.transcripts.extend(texts)

    async def inject_error(self, code: str = "server_error", message: str = "Injected error") -> None:
        await self.emit(
            {"type": "error", "error": {"type": "server_error", "code": code, "message": message, "param": None, "event_id": None}}
        )

    async def drop(self) -> None:
        """Abort the connection as a network failure would (client sees 1006)."""
        if self.closed:
            return
        self._mark_closed(1006, "dropped")
        await self.transport.abort()

    # ------------------------------------------------------------------ hooks
    def scripted_transcripts_pending(self) -> bool:
        return bool(self.transcripts.queue)

    def scripted_responses_pending(self) -> bool:
        return bool(len(self.queue) or len(self.global_queue))

    async def before_send(self, event: dict[str, Any]) -> None:
        if self.faults.delay_ms > 0:
            await asyncio.sleep(self.faults.delay_ms / 1000)

    async def after_send(self, event: dict[str, Any]) -> None:
        self._sent += 1
        if event["type"] == "response.output_audio.delta":
            self._audio_deltas += 1
        f = self.faults
        if f.drop_after_events is not None and self._sent >= f.drop_after_events:
            await self.drop()
            return
        if f.drop_after_audio_deltas is not None and self._audio_deltas >= f.drop_after_audio_deltas:
            await self.drop()
            return
        if f.close_after_events is not None and self._sent >= f.close_after_events:
            await self.close(1011, "injected close")
            return
        if f.error_after_events is not None and not self._error_injected and self._sent >= f.error_after_events:
            self._error_injected = True
            injected = {
                "type": "error",
                "event_id": new_id("event"),
                "error": {"type": "server_error", "code": f.error_code, "message": "Injected error", "param": None, "event_id": None},
            }
            self.server_events.append(injected)
            self.event_times.append(time.perf_counter())
            await self.transport.send_text(json.dumps(injected))
            self._sent += 1


class RealtimeServer(ProtocolServer):
    """The test peer (see the module docstring). Same options as `ProtocolServer`, plus ``faults``
    (defaults for new sessions); event logs are always kept."""

    def __init__(self, *, faults: Faults | None = None, **kwargs: Any) -> None:
        kwargs["debug"] = True
        transcriber = kwargs.pop("transcriber", None)
        text_responder = kwargs.pop("text_responder", None)
        super().__init__(**kwargs)
        self.faults = faults or Faults()
        self.queue = ScriptQueue()
        self.text_queue = ScriptQueue()
        self.transcripts = ScriptedTranscriber()
        self.deps.transcriber = transcriber or self.transcripts
        self.text_responder = ScriptedResponder(self.text_queue, fallback=text_responder or DefaultResponder())
        self.responses_requests: list[dict[str, Any]] = []
        self.moderation_requests: list[dict[str, Any]] = []
        self.refused: list[str] = []
        self.sessions: list[PeerSession] = []  # type: ignore[assignment]
        """Every session, live and closed."""
        self._new_session = asyncio.Condition()

    # ------------------------------------------------------------------ control
    def script(self, *responses: Any) -> None:
        """Queue Realtime responses for any session (after that session's own queue)."""
        self.queue.extend(responses)

    def script_text(self, *responses: Any) -> None:
        """Queue outputs for ``POST /v1/responses`` (text and function calls)."""
        self.text_queue.extend(responses)

    def add_transcripts(self, *texts: str) -> None:
        """Queue transcripts for committed user audio (any session, after its own queue)."""
        self.transcripts.extend(texts)

    async def wait_for_session(self, count: int = 1, timeout: float = 5.0) -> PeerSession:
        """Wait until ``count`` sessions have connected; return the ``count``-th."""
        async with self._new_session:
            await asyncio.wait_for(self._new_session.wait_for(lambda: len(self.sessions) >= count), timeout)
        return self.sessions[count - 1]

    # ------------------------------------------------------------------ hooks
    def create_session(self, transport: Any, **kwargs: Any) -> RealtimeSession:
        kwargs.setdefault("faults", self.faults.copy())
        return PeerSession(transport, self.deps, global_queue=self.queue, **kwargs)

    def session_options(self, query: dict[str, list[str]]) -> dict[str, Any]:
        return {"faults": parse_faults(query.get("fault", []), self.faults)}

    async def session_opened(self, session: RealtimeSession) -> None:
        assert isinstance(session, PeerSession)
        async with self._new_session:
            self.sessions.append(session)
            self._new_session.notify_all()

    def session_closed(self, session: RealtimeSession) -> None:
        """Closed sessions stay, for the test to inspect."""

    def record_request(self, kind: str, payload: dict[str, Any]) -> None:
        (self.responses_requests if kind == "responses" else self.moderation_requests).append(payload)

    def refuse(self, reason: str) -> None:
        self.refused.append(reason)
