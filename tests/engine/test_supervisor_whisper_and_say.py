"""A supervisor reaches a live call: a whisper is a system item the agent sees and the caller does
not hear; "say" stops the agent and has it voice the supervisor's words."""

from __future__ import annotations

from realtime import events as ev
from realtime.server import RealtimeServer, response
from realtime.session import SAY_INSTRUCTIONS

from .factories import make_session, retail_spec


def _texts(item: dict) -> list[str]:
    return [part.get("text", "") for part in item.get("content", [])]


async def test_whisper_adds_a_system_item_and_asks_for_no_response(server: RealtimeServer) -> None:
    server.script(response("Hello, how can I help?", ms_per_word=20))
    session, rec = make_session(server, retail_spec())
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    await rec.wait_for(lambda e: isinstance(e, ev.Usage))
    live = server.sessions[0]
    responses_before = sum(e["type"] == "response.create" for e in live.client_events)

    item_id = await session.whisper("Offer the caller free shipping.", by="sam")
    assert item_id is not None
    await server_has_item(live, item_id)
    item = next(i for i in live.items if i.id == item_id).data
    assert item["role"] == "system"
    text = " ".join(_texts(item))
    assert "Offer the caller free shipping." in text and "sam" in text
    assert sum(e["type"] == "response.create" for e in live.client_events) == responses_before
    assert [i.role for i in session.transcript] == ["assistant"], "a whisper is not part of the caller's transcript"
    await session.close()
    assert await session.whisper("too late") is None


async def server_has_item(live: object, item_id: str) -> None:
    import asyncio

    for _ in range(100):
        if any(getattr(i, "id", None) == item_id for i in live.items):  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"item {item_id} never reached the server")


async def test_say_asks_for_the_supervisors_words_without_tools(server: RealtimeServer) -> None:
    server.script(response("Hello, how can I help?", ms_per_word=20),
                  response("I am sorry for the wait, a refund is on its way.", ms_per_word=20))
    session, rec = make_session(server, retail_spec())
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    await rec.wait_for(lambda e: isinstance(e, ev.Usage))

    await session.say("I am sorry for the wait, a refund is on its way.", by="sam")
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.role == "assistant"
                       and e.text.startswith("I am sorry"), timeout=5)
    creates = [e for e in server.sessions[0].client_events if e["type"] == "response.create"]
    last = creates[-1]["response"]
    assert last["tool_choice"] == "none"
    assert last["instructions"] == SAY_INSTRUCTIONS + '"I am sorry for the wait, a refund is on its way."'
    await session.close()
