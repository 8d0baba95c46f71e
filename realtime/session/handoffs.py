"""Handoffs: a transfer tool moves the call to another agent of the scenario.

The target must be a realtime agent within the handoff depth cap, else the scenario's fallback
agent takes the call (or the transfer is refused and the current agent keeps it). The new agent's
session.update goes first, so the response that follows the tool's output is the new agent's; the
call keeps its voice once the caller has heard it.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from realtime import events as ev
from realtime.spec import AgentSpec, ToolSpec
from realtime.tools import ToolOutcome

from .util import ms_since, new_id

if TYPE_CHECKING:
    from .core import CallSession

_NOT_FIELDS = ("reason", "conversation_summary", "summary")


class Handoffs:
    def __init__(self, session: CallSession) -> None:
        self.s = session

    def _target(self, requested: str | None, from_agent: AgentSpec) -> tuple[str | None, bool]:
        """The agent that takes the call (None: nobody can) and whether it is the fallback."""
        spec = self.s.spec
        if requested in spec.agents and spec.agents[requested].kind == "realtime" \
                and self.s.handoff_depth + 1 <= spec.limits.max_handoff_depth:
            return requested, False
        fb = spec.fallback_agent
        fb_ok = fb is not None and fb in spec.agents and spec.agents[fb].kind == "realtime"
        return (fb, True) if fb_ok and fb != from_agent.slug else (None, True)

    async def transfer(self, tool: ToolSpec, arguments: dict[str, Any], call_id: str, from_agent: AgentSpec) -> None:
        s = self.s
        started = time.monotonic()
        invalid = s.tools.validation_error(tool, arguments)
        requested = tool.transfer_to
        target: str | None = requested
        fallback = False
        if invalid is None:
            target, fallback = self._target(requested, from_agent)
        if from_agent.slug != s.current_agent:
            invalid = f"the {from_agent.name} agent is no longer on the call; transfer refused"
        if invalid is not None or target is None:
            why = invalid or "the transfer is not possible right now; keep helping the caller yourself"
            outcome = ToolOutcome(error=why, duration_ms=ms_since(started))
            await s._emit(ev.ToolFinished(name=tool.name, call_id=call_id, arguments=arguments, agent=from_agent.slug,
                                          error=why, duration_ms=outcome.duration_ms, status="failed"))
            await s.tool_calls.deliver_output(call_id, tool.name, outcome.output_text())
            return
        new_agent = s.spec.agent(target)
        requested_voice = (new_agent.session.get("audio", {}).get("output", {}).get("voice")
                           if new_agent.session else None) or new_agent.voice
        await s._ready.wait()
        setup = s.setup
        session = setup.session_for(new_agent, continuing=True)
        voice_kept = setup.voice if setup.voice_locked and requested_voice and requested_voice != setup.voice else None
        # session.update first, so the response that follows the output is the new agent's.
        update_id = new_id("evt")
        setup.handoff_updates[update_id] = (target, s.handoff_depth + 1)
        await s._send({"type": "session.update", "event_id": update_id, "session": session})
        previous = s.current_agent
        s.current_agent = target
        s.handoff_depth += 1
        s.responses.forced_turns = 0
        await s._emit(ev.AgentChanged(agent=target, previous=previous))
        result = {"status": "transferred", "agent": new_agent.name,
                  "note": f"You are now the {new_agent.name} agent. Continue without greeting again."}
        duration = ms_since(started)
        await s._emit(ev.ToolFinished(name=tool.name, call_id=call_id, arguments=arguments, agent=previous,
                                      result=result, duration_ms=duration))
        await s._emit(ev.Handoff(
            from_agent=previous, to_agent=target, reason=str(arguments.get("reason", "")),
            context=str(arguments.get("conversation_summary", arguments.get("summary", ""))),
            depth=s.handoff_depth, duration_ms=duration, requested_agent=requested, fallback=fallback,
            voice_kept=voice_kept,
            fields={k: v for k, v in arguments.items() if k not in _NOT_FIELDS},
        ))
        await s.tool_calls.deliver_output(call_id, tool.name, json.dumps(result, ensure_ascii=False))
