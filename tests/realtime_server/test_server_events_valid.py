"""Every server event the server emits validates against the openai package's server event union."""

import pytest
from openai.types.realtime import RealtimeServerEvent
from pydantic import TypeAdapter

from realtime.server import RealtimeServer, function_call, response
from realtime.server.testing import b64, chunks, connect_raw, recv_json, recv_until_json, send_json, speech_then_silence
from realtime.server.validation import ServerEventInvalid, check_server_event

ADAPTER: TypeAdapter = TypeAdapter(RealtimeServerEvent)


async def test_a_broad_session_emits_only_valid_events(realtime_server: RealtimeServer) -> None:
    realtime_server.add_transcripts("hello")
    realtime_server.script(
        response("Hi there", function_call("lookup", {"x": 1})),
        response("Text reply"),
        response("never finished", delay_ms=50),
    )
    async with connect_raw(realtime_server) as ws:
        await recv_json(ws)
        await send_json(
            ws, {"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"transcription": {"model": "whisper-1"}}}}}
        )
        for chunk in chunks(speech_then_silence(400, 600), 4800):
            await send_json(ws, {"type": "input_audio_buffer.append", "audio": b64(chunk)})
        await recv_until_json(ws, "response.done")
        await send_json(ws, {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}})
        await send_json(ws, {"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "c", "output": "{}"}})
        await send_json(ws, {"type": "response.create", "response": {"conversation": "none", "metadata": {"k": "v"}}})
        await recv_until_json(ws, "response.done")
        await send_json(ws, {"type": "response.create"})
        await recv_until_json(ws, "response.output_text.delta")
        await send_json(ws, {"type": "response.cancel"})
        await recv_until_json(ws, "response.done")
        first_item = realtime_server.sessions[0].items[0].id
        await send_json(ws, {"type": "conversation.item.retrieve", "item_id": first_item})
        await send_json(ws, {"type": "conversation.item.delete", "item_id": first_item})
        await send_json(ws, {"type": "input_audio_buffer.clear"})
        await send_json(ws, {"type": "response.cancel"})
        await recv_until_json(ws, "error")
    events = realtime_server.sessions[0].server_events
    kinds = {e["type"] for e in events}
    assert len(kinds) >= 25, sorted(kinds)
    for event in events:
        parsed = ADAPTER.validate_python(event)
        assert parsed.type == event["type"]
        check_server_event(event)  # strict: no unknown keys anywhere
    assert realtime_server.validation_failures == []


def test_the_strict_check_rejects_bad_events() -> None:
    good = {"type": "conversation.item.deleted", "event_id": "e", "item_id": "i"}
    check_server_event(good)
    for bad in (
        {**good, "surprise": 1},
        {"type": "conversation.item.deleted", "event_id": "e"},
        {"type": "conversation.item.created.v2", "event_id": "e"},
        {"type": "session.created", "event_id": "e", "session": {"type": "realtime", "id": "s", "object": "realtime.session", "bogus": 1}},
    ):
        with pytest.raises(ServerEventInvalid):
            check_server_event(bad)
