"""The GA ``session`` an agent runs with, the call's voice, and the server's answers to updates.

An agent's compiled session gets the transport's audio format (a SIP sideband keeps the codec
the provider negotiated), the call's voice (locked once the caller has heard it: a handoff never
changes the voice mid-call) and, for an agent taking over, a note not to greet again. Every
session.update is answered in order by session.updated or an error; a handoff's answer is when
the new agent's instructions and tools are in force (``HandoffApplied``).
"""

from __future__ import annotations

import collections
import copy
from typing import TYPE_CHECKING, Any

from realtime import events as ev
from realtime import takeover
from realtime.spec import AgentSpec

from .util import ms_since

if TYPE_CHECKING:
    from .core import CallSession

HANDOFF_NOTE = (
    "\n\n(You are taking over a call already in progress: do not greet the caller again; "
    "continue from where the conversation is.)"
)
_NOT_FORCED = ("auto", "none", "")


class SessionSetup:
    def __init__(self, session: CallSession) -> None:
        self.s = session
        self.session: dict[str, Any] = {}
        """The GA session last sent (or to be sent)."""
        self.voice = ""
        self.voice_locked = False
        # session.update events awaiting the server's answer (answered in order):
        # (event_id, monotonic time sent); and the handoff (to_agent, depth) of those that are one's.
        self.pending_updates: collections.deque[tuple[str, float]] = collections.deque()
        self.handoff_updates: dict[str, tuple[str, int]] = {}

    def new_connection(self) -> None:
        """A new session: earlier updates will never be answered."""
        self.pending_updates.clear()
        self.handoff_updates.clear()

    def _audio_format(self) -> dict[str, Any]:
        fmt = self.s.config.audio_format
        return {"type": "audio/pcm", "rate": 24000} if fmt == "audio/pcm" else {"type": fmt}

    def session_for(self, agent: AgentSpec, *, continuing: bool) -> dict[str, Any]:
        """The GA ``session`` for ``agent``: the compiled one, with the transport's audio format,
        the call's locked voice and, for an agent taking over, the no-greeting note."""
        session = copy.deepcopy(agent.session) if agent.session else {}
        session["type"] = "realtime"
        session.pop("model", None)
        session.setdefault("instructions", agent.instructions)
        if "tools" not in session:
            session["tools"] = [t.function_tool() for t in agent.tools]
        if "tool_choice" not in session and agent.tool_choice:
            choice = agent.tool_choice
            session["tool_choice"] = choice if choice in ("auto", "none", "required") else {"type": "function", "name": choice}
        if continuing:
            session["instructions"] = (session.get("instructions") or "") + HANDOFF_NOTE
        audio = session.setdefault("audio", {})
        audio_in = audio.setdefault("input", {})
        audio_out = audio.setdefault("output", {})
        if self.s.sideband:  # the SIP leg negotiated its codec with the provider
            audio_in.pop("format", None)
            audio_out.pop("format", None)
        else:
            audio_in["format"] = self._audio_format()
            audio_out["format"] = self._audio_format()
        wanted = audio_out.get("voice") or agent.voice
        if self.voice_locked and self.voice:
            audio_out["voice"] = self.voice
        elif wanted:
            audio_out["voice"] = wanted
            self.voice = wanted
        self.session = session
        return session

    def turn_detection(self) -> dict[str, Any]:
        td = self.session.get("audio", {}).get("input", {}).get("turn_detection")
        return td if isinstance(td, dict) else {}

    def tool_choice_is_forced(self, agent: AgentSpec) -> bool:
        choice = self.session.get("tool_choice", agent.tool_choice)
        if isinstance(choice, dict):
            return True
        return choice not in _NOT_FORCED

    async def configure(self, restoring: bool) -> None:
        """The current agent's session into a freshly opened connection (and, on recreation, the
        call's context)."""
        s = self.s
        await s._send({"type": "session.update", "session": self.session_for(s.agent, continuing=restoring)})
        await takeover.reapply(s)  # people: a person has the call
        if restoring and not s.sideband:  # a sideband rejoins the same conversation
            await s.context.restore()

    # ------------------------------------------------------------ server events

    async def on_updated(self) -> None:
        if self.pending_updates:
            await self._answered(self.pending_updates.popleft())

    async def on_error(self, event_id: str | None, error: str) -> None:
        """An error event; when it answers a session.update, that update was refused."""
        for pending in self.pending_updates:
            if event_id and pending[0] == event_id:
                self.pending_updates.remove(pending)
                await self._answered(pending, error=error)
                break

    async def _answered(self, pending: tuple[str, float], error: str = "") -> None:
        event_id, sent_at = pending
        handoff = self.handoff_updates.pop(event_id, None)
        if handoff is None:
            return
        to_agent, depth = handoff
        await self.s._emit(ev.HandoffApplied(to_agent=to_agent, depth=depth, ms=ms_since(sent_at),
                                             applied=not error, error=error))
