"""A supervisor's "say to the caller" through the offline engine: the agent is stopped and its next
response is the supervisor's words exactly, spoken by piper; then the conversation carries on with
the agent's own policy."""

from __future__ import annotations

from realtime import events as ev
from realtime.server import RealtimeServer

from .retail import settle, start_retail_call

FMT = "audio/pcmu"
LINE = "Hello, this is Sam, a supervisor. I have waived the \"restocking\" fee for you."


async def test_the_supervisors_words_are_said_exactly_then_the_agent_carries_on(server: RealtimeServer) -> None:
    call = await start_retail_call(server, FMT)
    rec, session, upstream, busy = call.rec, call.session, call.upstream, call.busy
    await settle(rec, busy)
    greeting = [e for e in rec.events if isinstance(e, ev.TranscriptDone) and e.role == "assistant"]
    assert greeting and greeting[0].text != LINE

    mark = len(rec.events)
    await session.say(LINE, by="sam")
    await settle(rec, busy)
    said = [e for e in rec.events[mark:] if isinstance(e, ev.TranscriptDone) and e.role == "assistant"]
    assert [e.text for e in said] == [LINE]
    audio = [e for e in rec.events[mark:] if isinstance(e, ev.AudioOut)]
    assert sum(len(e.audio) for e in audio) > 8000  # over a second of mu-law speech, voiced by piper
    create = [e for e in upstream.client_events if e["type"] == "response.create"][-1]
    assert create["response"]["tool_choice"] == "none"

    # The agent's own policy answers the next turn, not the supervisor's line again.
    mark = len(rec.events)
    await session.send_text("I want to return an order.")
    await settle(rec, busy)
    after = [e for e in rec.events[mark:] if isinstance(e, ev.TranscriptDone) and e.role == "assistant"]
    assert after and all(e.text != LINE for e in after)
    await session.close("hangup")
