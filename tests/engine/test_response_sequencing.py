"""Never two responses at once: response.create waits for the active one; server errors such as
response_cancel_not_active are reported without dropping the call."""

from __future__ import annotations

from realtime import events as ev
from realtime.server import RealtimeServer, response

from .factories import make_session


async def test_turns_during_an_active_response_are_queued(server: RealtimeServer) -> None:
    server.script(
        response("Welcome to the store, how may I help you today?", delay_ms=15),
        response("First answer."),
        response("Second answer."),
    )
    session, rec = make_session(server)
    await session.start()
    await rec.wait_type(ev.TranscriptDelta, role="assistant")  # the greeting is streaming
    await session.send_text("first question")
    await session.send_text("second question")
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text == "First answer.", timeout=4)
    await session.send_text("third question")
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text == "Second answer.", timeout=4)
    live = server.sessions[0]
    assert not [e for e in live.errors if e["code"] == "conversation_already_has_active_response"]
    creates = [e for e in live.client_events if e["type"] == "response.create"]
    assert len(creates) == 3  # greeting + one queued for the two early turns + the third
    await session.close()
    texts = [i.text for i in session.transcript]
    assert texts[:3] == ["Welcome to the store, how may I help you today?", "first question", "second question"]
    assert "third question" in texts and "Second answer." in texts


async def test_server_error_events_do_not_drop_the_call(server: RealtimeServer) -> None:
    server.script(response("Hi."), response("Still here."))
    session, rec = make_session(server)
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    live = server.sessions[0]
    await live.inject_error("response_cancel_not_active", "Cancellation failed: no active response found.")
    error = await rec.wait_type(ev.Error, code="response_cancel_not_active")
    assert not error.fatal
    # A real one too: cancelling when nothing is active.
    await session._send({"type": "response.cancel"})
    await rec.wait_for(lambda e: isinstance(e, ev.Error) and e.code == "response_cancel_not_active", after=rec.events.index(error) + 1)
    await session.send_text("are you there?")
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text == "Still here.")
    assert session.state == "active" and not live.closed
    await session.close()
    assert [i.text for i in session.transcript] == ["Hi.", "are you there?", "Still here."]
