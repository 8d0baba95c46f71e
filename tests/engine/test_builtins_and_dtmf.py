"""Built-ins escalate and end_call, and keypad digits."""

from __future__ import annotations

from realtime import events as ev
from realtime.server import RealtimeServer, function_call, response

from .factories import make_session


async def test_escalate_emits_an_escalation_and_the_call_goes_on(server: RealtimeServer) -> None:
    server.script(response("Hi."), response(function_call("escalate", {"reason": "angry caller"})), response("A colleague is coming."))
    session, rec = make_session(server)
    await session.start()
    await session.send_text("I want a human")
    escalation = await rec.wait_type(ev.Escalation)
    assert (escalation.reason, escalation.source, escalation.agent) == ("angry caller", "tool", "front")
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text == "A colleague is coming.")
    assert session.state == "active"
    await session.close()


async def test_end_call_ends_after_the_goodbye(server: RealtimeServer) -> None:
    server.script(response("Hi."), response(function_call("end_call", {})), response("Goodbye!"))
    session, rec = make_session(server)
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    await session.send_text("that's all, thanks")
    ended = await rec.wait_type(ev.CallEnded, timeout=4)
    assert ended.reason == "end_call"
    assert [i.text for i in session.transcript] == ["Hi.", "that's all, thanks", "Goodbye!"]
    assert session.ended


async def test_dtmf_digit_is_an_event_and_a_turn(server: RealtimeServer) -> None:
    server.script(response("Hi."), response("You pressed five."))
    session, rec = make_session(server)
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    await session.send_dtmf("5")
    assert (await rec.wait_type(ev.DTMF)).digit == "5"
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text == "You pressed five.")
    assert "pressed 5" in session.transcript[1].text
    await session.close()
