"""The root agent greets first; a typed turn gets an answer; every transcript item is kept."""

from __future__ import annotations

from realtime import events as ev
from realtime.server import RealtimeServer, response

from .factories import make_session


async def test_root_agent_greets_then_answers(server: RealtimeServer) -> None:
    server.script(response("Welcome to Retail, how can I help?"), response("Your order has shipped."))
    session, rec = make_session(server)
    await session.start()
    greeting = await rec.wait_type(ev.TranscriptDone, role="assistant")
    assert greeting.text == "Welcome to Retail, how can I help?"
    assert greeting.agent == "front"
    await session.send_text("Where is my order?")
    answer = await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text == "Your order has shipped.")
    assert answer.role == "assistant"
    await session.close("hangup")
    assert [(i.role, i.text) for i in session.transcript] == [
        ("assistant", "Welcome to Retail, how can I help?"),
        ("user", "Where is my order?"),
        ("assistant", "Your order has shipped."),
    ]
    assert rec.of(ev.CallEnded)[-1].reason == "hangup"
    # The first client event configures the agent; the greeting is a response.create.
    sent = [e.payload["type"] for e in rec.of(ev.ProtocolEvent) if e.direction == "client"]
    assert sent[:2] == ["session.update", "response.create"]
    live = server.sessions[0]
    assert not live.errors
