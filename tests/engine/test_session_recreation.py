"""Session recreation: on a drop mid-response, on session_expired, before the configured maximum,
or on request — a fresh session with the agent and context restored, caller audio buffered and
sent, and past the retry budget a clean end through the fallback path."""

from __future__ import annotations

import asyncio

from realtime import events as ev
from realtime.server import RealtimeServer, function_call, response
from realtime.server.testing import running_server

from .factories import make_session, retail_spec

LONG = "Let me read you the whole list of our store opening hours for every single day of the week"


def _texts(live) -> list[str]:
    return [
        part.get("text", "")
        for item in live.items
        for part in item.data.get("content", [])
        if isinstance(part, dict)
    ]


async def test_drop_mid_response_recreates_and_restores(server: RealtimeServer) -> None:
    server.script(
        response("Hello.", ms_per_word=20),
        response(function_call("transfer_to_billing", {"reason": "r", "conversation_summary": "s"})),
        response(LONG, delay_ms=20, ms_per_word=20),
        response("As I was saying, we open at nine.", ms_per_word=20),
    )
    session, rec = make_session(server, retail_spec(modality="audio"))
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    await session.send_text("what are your opening hours?")
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDelta) and e.role == "assistant" and e.agent == "billing")
    await server.sessions[0].drop()  # TCP abort, mid-response
    recreated = await rec.wait_type(ev.SessionRecreated, timeout=4)
    assert recreated.reason == "connection_lost" and recreated.attempts == 1 and recreated.gap_ms > 0
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text.startswith("As I was saying"), timeout=4)
    assert session.current_agent == "billing"
    fresh = server.sessions[1]
    update = fresh.client_events[0]
    assert update["type"] == "session.update" and "billing agent" in update["session"]["instructions"]
    restored = _texts(fresh)
    assert "what are your opening hours?" in restored and "Hello." in restored
    assert any(t.startswith("Let") and t.endswith("[cut off]") for t in restored)
    assert not fresh.errors
    await session.close()
    texts = [i.text for i in session.transcript]
    assert texts[:2] == ["Hello.", "what are your opening hours?"]
    cut = session.transcript[2]
    assert cut.text.startswith("Let") and cut.interrupted
    assert texts[-1] == "As I was saying, we open at nine."


async def test_caller_audio_during_recreation_is_buffered_and_sent(server: RealtimeServer) -> None:
    server.script(response("Hello."))
    session, rec = make_session(server)
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    task = asyncio.ensure_future(session.recreate("test"))
    await asyncio.sleep(0)
    assert session.state == "recreating"
    frames = [bytes([n]) * 960 for n in range(10)]
    for frame in frames:
        await session.send_audio(frame)
    assert await task
    recreated = await rec.wait_type(ev.SessionRecreated)
    assert recreated.buffered_audio_bytes == 960 * 10
    await asyncio.sleep(0.1)
    appends = [e for e in server.sessions[1].client_events if e["type"] == "input_audio_buffer.append"]
    assert len(appends) == 10
    await session.close()


async def test_session_expired_at_the_maximum_length() -> None:
    async with running_server(max_session_seconds=0.6) as server:
        server.script(response("Hello."))
        session, rec = make_session(server)
        await session.start()
        await rec.wait_type(ev.TranscriptDone, role="assistant")
        await session.send_text("my name is Ada")
        await rec.wait_type(ev.TranscriptDone, role="assistant", after=2)
        expired = await rec.wait_type(ev.Error, code="session_expired", timeout=3)
        assert expired.source == "server"
        recreated = await rec.wait_type(ev.SessionRecreated, timeout=3)
        assert recreated.reason == "session_expired"
        assert server.sessions[0].close_code == 1001
        server.script(response("Yes Ada, still here."))
        await session.send_text("still there?")
        await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text == "Yes Ada, still here.", timeout=3)
        assert "my name is Ada" in _texts(server.sessions[1])
        await session.close()
        assert [i.text for i in session.transcript][:2] == ["Hello.", "my name is Ada"]


async def test_recreated_before_the_configured_maximum(server: RealtimeServer) -> None:
    server.script(response("Hello."))
    session, rec = make_session(server, retail_spec(max_session_seconds=1), recreate_margin_s=0.5)
    await session.start()
    recreated = await rec.wait_type(ev.SessionRecreated, timeout=3)
    assert recreated.reason == "max_session_length"
    assert not rec.of(ev.Error)  # proactive: no expiry, no drop
    assert server.sessions[0].closed
    await session.close()


async def test_past_the_retry_budget_the_call_ends_cleanly() -> None:
    async with running_server() as server:
        server.script(response("Hello."))
        session, rec = make_session(server, retry_budget=2)
        await session.start()
        await rec.wait_type(ev.TranscriptDone, role="assistant")
    # The server is gone: every reconnect fails.
    ended = await rec.wait_type(ev.CallEnded, timeout=4)
    assert ended.reason == "session_lost"
    assert len([e for e in rec.of(ev.Error) if e.code == "connect_failed"]) == 2
    escalation = rec.of(ev.Escalation)[-1]
    assert escalation.source == "engine" and escalation.agent == "human_escalation"
    assert session.ended and session.transcript[0].text == "Hello."
