"""The real rules: one active response, cancel-not-active, truncate and delete checks."""

from realtime.server import RealtimeServer, response
from realtime.server.testing import connect_raw, recv_json, recv_until_json, send_json

USER_HI = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}


async def test_one_active_response_at_a_time(realtime_server: RealtimeServer) -> None:
    realtime_server.script(response("a b c d e f", delay_ms=30))
    async with connect_raw(realtime_server) as ws:
        await recv_json(ws)
        await send_json(ws, {"type": "response.create"})
        created = await recv_json(ws)
        assert created["type"] == "response.created"
        await send_json(ws, {"type": "response.create", "event_id": "second"})
        events = await recv_until_json(ws, "error")
        error = events[-1]["error"]
        assert error["code"] == "conversation_already_has_active_response"
        assert error["event_id"] == "second"
        assert created["response"]["id"] in error["message"]
        events = await recv_until_json(ws, "response.done")
        assert events[-1]["response"]["status"] == "completed"
        await send_json(ws, {"type": "response.create"})  # allowed again after response.done
        assert (await recv_json(ws))["type"] == "response.created"


async def test_cancel_without_active_response_is_an_error(realtime_server: RealtimeServer) -> None:
    async with connect_raw(realtime_server) as ws:
        await recv_json(ws)
        await send_json(ws, {"type": "response.cancel", "event_id": "c1"})
        error = await recv_json(ws)
        assert (error["error"]["code"], error["error"]["event_id"]) == ("response_cancel_not_active", "c1")


async def test_cancel_active_response(realtime_server: RealtimeServer) -> None:
    realtime_server.script(response("one two three four five six seven eight", delay_ms=40))
    async with connect_raw(realtime_server) as ws:
        await recv_json(ws)
        await send_json(ws, {"type": "response.create"})
        await recv_until_json(ws, "response.output_audio.delta")
        await send_json(ws, {"type": "response.cancel"})
        events = await recv_until_json(ws, "response.done")
    done = events[-1]["response"]
    assert done["status"] == "cancelled"
    assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert done["output"][0]["status"] == "incomplete"
    transcript = next(e for e in events if e["type"] == "response.output_audio_transcript.done")["transcript"]
    assert 0 < len(transcript.split()) < 8


async def test_truncate_rules(realtime_server: RealtimeServer) -> None:
    realtime_server.script(response("one two three", ms_per_word=200))
    async with connect_raw(realtime_server) as ws:
        await recv_json(ws)
        await send_json(ws, {"type": "conversation.item.create", "item": {**USER_HI, "id": "u1"}})
        await send_json(ws, {"type": "response.create"})
        events = await recv_until_json(ws, "response.done")
        assistant_id = events[-1]["response"]["output"][0]["id"]
        for bad, code, param in [
            ({"item_id": "u1", "content_index": 0, "audio_end_ms": 10}, "item_truncate_invalid_item_id", "item_id"),
            ({"item_id": "missing", "content_index": 0, "audio_end_ms": 10}, "item_truncate_invalid_item_id", "item_id"),
            ({"item_id": assistant_id, "content_index": 0, "audio_end_ms": 601}, "invalid_value", "audio_end_ms"),
            ({"item_id": assistant_id, "content_index": 3, "audio_end_ms": 10}, "invalid_value", "content_index"),
        ]:
            await send_json(ws, {"type": "conversation.item.truncate", **bad})
            error = await recv_json(ws)
            assert (error["type"], error["error"]["code"], error["error"]["param"]) == ("error", code, param), bad
        await send_json(ws, {"type": "conversation.item.truncate", "item_id": assistant_id, "content_index": 0, "audio_end_ms": 250})
        truncated = await recv_json(ws)
        assert truncated == {**truncated, "type": "conversation.item.truncated", "item_id": assistant_id, "audio_end_ms": 250}
    item = realtime_server.sessions[0].item(assistant_id)
    assert item is not None and item.audio_ms(0) == 250
    # the caller heard "one" (0-200 ms) and part of "two": the transcript keeps what was heard whole
    assert item.data["content"][0]["transcript"] == "one"


async def test_delete_items(realtime_server: RealtimeServer) -> None:
    async with connect_raw(realtime_server) as ws:
        await recv_json(ws)
        await send_json(ws, {"type": "conversation.item.create", "item": {**USER_HI, "id": "u1"}})
        await recv_json(ws)
        await recv_json(ws)
        await send_json(ws, {"type": "conversation.item.delete", "item_id": "u1"})
        assert await recv_json(ws) == {"type": "conversation.item.deleted", "event_id": realtime_server.sessions[0].server_events[-1]["event_id"], "item_id": "u1"}
        await send_json(ws, {"type": "conversation.item.delete", "item_id": "u1", "event_id": "d2"})
        error = await recv_json(ws)
        assert (error["error"]["code"], error["error"]["param"], error["error"]["event_id"]) == ("item_delete_invalid_item_id", "item_id", "d2")
    assert realtime_server.sessions[0].items == []
