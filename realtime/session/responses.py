"""Response sequencing: one response at a time, the rest queued.

A response asked for while one is active (or while no session is open) waits, merged with any
other waiting ask, and is created when the active one is done. A server-created response (the
VAD's) that wins a race makes ours wait behind it. Forced tool choice is relaxed after too many
forced turns in a row, and a goodbye response (after ``end_call``) ends the call when it is done.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from realtime import events as ev
from realtime import model_events as me
from realtime import takeover

from .util import new_id

if TYPE_CHECKING:
    from .core import CallSession


class ResponseSequencer:
    def __init__(self, session: CallSession) -> None:
        self.s = session
        self.active = False
        self.active_id: str | None = None
        self.pending: dict[str, Any] | None = None
        self._event_ids: set[str] = set()  # our response.create events, for the errors that answer them
        self._agent_of: dict[str, str] = {}  # response id -> the agent it was created for
        self.had_audio = False
        self.forced_turns = 0
        self.end_after_next: str | None = None
        """The end_call builtin's reason: the call ends after the next response (the goodbye)."""
        self._goodbye_id: str | None = None

    async def request(self, params: dict[str, Any] | None = None) -> None:
        """Ask for a response now, or queue it if one is active (never two at once)."""
        s = self.s
        if s.ended or takeover.holds_responses(s):  # people: a person has the call
            return
        if self.active or s.link.recreating or s.link.conn is None:
            merged = dict(self.pending or {})
            merged.update(params or {})
            self.pending = merged
            return
        self.pending = None
        await self._create(params or {})

    async def _create(self, params: dict[str, Any]) -> None:
        s = self.s
        response = dict(params)
        agent = s.agent
        limit = s.config.required_tool_turns_limit
        if limit > 0 and s.setup.tool_choice_is_forced(agent) and self.forced_turns >= limit:
            response["tool_choice"] = "auto"
            await s._emit(ev.ToolChoiceRelaxed(agent=agent.slug, forced_turns=self.forced_turns))
            self.forced_turns = 0
        event_id = new_id("evt")
        self._event_ids.add(event_id)
        self.active = True
        event: dict[str, Any] = {"type": "response.create", "event_id": event_id}
        if response:
            event["response"] = response
        await s._send(event)

    async def flush_pending(self) -> None:
        if self.pending is not None and not self.active and not self.s.link.recreating:
            params, self.pending = self.pending, None
            await self._create(params)

    def reset(self) -> bool:
        """The session went away with whatever response it had; True if one was active."""
        had = self.active
        self.active = False
        self.active_id = None
        self._event_ids.clear()
        return had

    # ------------------------------------------------------------ server events

    async def on_error(self, code: str, event_id: str | None) -> None:
        if event_id not in self._event_ids:
            return
        self._event_ids.discard(event_id)
        if code == "conversation_already_has_active_response":
            # A server-created response (VAD) won the race: ours runs after it.
            self.pending = self.pending or {}
        elif not self.active_id:
            self.active = False
            await self.flush_pending()

    def on_created(self, response_id: str) -> None:
        self.active = True
        self.active_id = response_id
        self.had_audio = False
        self._agent_of[response_id] = self.s.current_agent
        if self.end_after_next and self._goodbye_id is None:
            self._goodbye_id = response_id

    def agent_of(self, response_id: str) -> str:
        """The agent a finished response was created for (forgotten once asked)."""
        return self._agent_of.pop(response_id, self.s.current_agent)

    async def on_done(self, event: me.ResponseDone, agent_slug: str) -> None:
        s = self.s
        if s.setup.tool_choice_is_forced(s.spec.agent(agent_slug)) and event.called_tool:
            self.forced_turns += 1
        elif not event.called_tool:
            self.forced_turns = 0
        self.active = False
        self.active_id = None
        if self._goodbye_id and self._goodbye_id == event.response_id:
            s._spawn(s.close(self.end_after_next or "end_call"))
            return
        await self.flush_pending()
