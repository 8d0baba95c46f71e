"""The voice engine: runs one call against any Realtime-protocol endpoint. No Django here.

Public API (stable; `calls/` builds its Channels consumers on it)::

    from realtime import CallSession, EngineConfig, ToolRunner
    from realtime import events as ev

    session = CallSession(
        spec,                                   # realtime.spec.ScenarioSpec
        EngineConfig(base_url=..., api_key=..., # endpoint is configuration
                     model=None,                # override; else the root agent's, else default
                     audio_format="audio/pcmu", # transport format: audio/pcm (24k) | pcmu | pcma
                     tool_timeout_s=10, approval_timeout_s=60, supervisor_timeout_s=8,
                     prices=settings.REALTIME_PRICES, required_tool_turns_limit=3,
                     recreate_margin_s=60, retry_budget=4, ...),
        tools=ToolRunner(python_handler,        # async (handler_key, arguments) -> dict
                         secrets={"NAME": ToolSecret.bound("...", ["crm.example.com"])}),  # by name, bound to hosts
        emit=on_event,                          # async (ev.EngineEvent) -> None
        summarizer=None,                        # async (turns, previous_summary) -> str
        classifier=None,                        # guardrail classifier; default from spec.guardrails
    )
    await session.start()                       # connects; the root agent greets (response.create)
    await session.send_audio(frame)             # caller audio in the call's audio format
    await session.send_text("...")              # a typed user message
    await session.interrupt(reason)             # caller cut in without speaking: truncate + cancel
    await session.push_to_talk(pressed)         # down: stop agent, clear buffer; up: commit + answer
    await session.report_playback(item_id, played_ms)   # transport: how much was heard
    session.playback.mark_sent(name); session.playback.mark_played(name)  # Twilio marks
    await session.resolve_approval(call_id, approved=True, by="alice")
    await session.send_dtmf("5")
    await session.apply_summary(text, up_to_item_id=None)  # replace older items by a summary
    await session.recreate("reason")            # open a fresh Realtime session, context restored
    await session.close("hangup")               # ends the call; emits CallEnded
    await session.wait_closed()                 # returns when the call ended (any reason)
    session.current_agent       # slug of the agent now speaking
    session.usage               # realtime.usage.UsageMeter (totals, per agent, cost, cost/min)
    session.transcript          # list[realtime.context.TranscriptItem], the whole call, in order
    session.ended               # bool

Events (``realtime.events``; each has ``type``, ``at`` and JSON-safe ``to_dict()``):
TranscriptDelta / TranscriptDone (role user|assistant, item_id, text, agent), AudioOut (item_id,
audio bytes), ClearPlayback (item_id, audio_end_ms, reason), AgentChanged (agent, previous),
ToolStarted / ToolFinished (name, call_id, arguments, result, error, duration_ms, approved_by,
source realtime|supervisor), ApprovalRequested (name, call_id, arguments, timeout_s), Handoff
(from_agent, to_agent, reason, context, depth, duration_ms, requested_agent, fallback,
voice_kept), GuardrailTripped (category, text, item_id, matched), Escalation (reason, source),
Usage (per response tokens + cost, running totals, cost per minute), Latency (kind
voice_to_voice|first_transcript|user_transcript|tool|supervisor, ms, turn), Error (code, message,
fatal), SessionRecreated (gap_ms, reason, attempts), ProviderFailover (provider, reason),
CallEnded (reason), ProtocolEvent (direction
client|server, payload with audio elided), DTMF (digit), ToolChoiceRelaxed, ContextSummarized.

Modules: connection (the Realtime WebSocket through the official ``openai`` package), session
(``CallSession``), events, tools (``ToolRunner``), supervisor (chat-supervisor over the Responses
API), guardrails, usage (tokens and cost), playback (what the caller heard), context (transcript,
rolling summaries). ``realtime.server`` is the local protocol server (test peer, offline engine).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from realtime.config import EngineConfig

if TYPE_CHECKING:
    from realtime.session import CallSession
    from realtime.tools import ToolRunner

__all__ = ["CallSession", "EngineConfig", "ToolRunner"]


def __getattr__(name: str) -> Any:
    # Lazy: `realtime.spec` and `realtime.server` must not pull the engine (and openai) in.
    found: Any
    if name == "CallSession":
        from realtime.session import CallSession

        found = CallSession
    elif name == "ToolRunner":
        from realtime.tools import ToolRunner

        found = ToolRunner
    else:
        raise AttributeError(name)
    globals()[name] = found  # imported once: later look-ups skip this function
    return found
