"""response.done usage: audio/text token estimates, inputs = the conversation, cached prefix."""

from realtime.server import RealtimeServer, response
from realtime.server.testing import connect_raw, recv_json, recv_until_json, send_json


def user(text: str, item_id: str) -> dict:
    return {"type": "conversation.item.create", "item": {"type": "message", "role": "user", "id": item_id, "content": [{"type": "input_text", "text": text}]}}


async def _turn(ws, text: str, item_id: str) -> dict:
    await send_json(ws, user(text, item_id))
    await send_json(ws, {"type": "response.create"})
    events = await recv_until_json(ws, "response.done")
    return events[-1]["response"]["usage"]


async def test_usage_counts_conversation_and_cache(realtime_server: RealtimeServer) -> None:
    realtime_server.script(response("one two", ms_per_word=100), response("three four five", ms_per_word=100), response("ok", ms_per_word=100))
    async with connect_raw(realtime_server) as ws:
        await recv_json(ws)
        await send_json(ws, {"type": "session.update", "session": {"type": "realtime", "instructions": "x" * 400}})
        await recv_json(ws)
        first = await _turn(ws, "a" * 40, "u1")
        # instructions 100 + user 10 text tokens; output: 200 ms of audio (4 tokens) + ceil(7/4)=2 text
        assert first["input_token_details"]["text_tokens"] == 110
        assert first["input_token_details"]["cached_tokens"] == 0
        assert first["output_token_details"] == {"text_tokens": 2, "audio_tokens": 4}
        assert first["output_tokens"] == 6 and first["total_tokens"] == first["input_tokens"] + 6
        second = await _turn(ws, "b" * 40, "u2")
        # previous input (instructions + u1) is the cached prefix; the assistant audio (200 ms) counts 2 input audio tokens
        assert second["input_token_details"]["cached_tokens"] == 110
        assert second["input_token_details"]["audio_tokens"] == 2
        assert second["input_tokens"] > first["input_tokens"]
        # a rolling summary: delete older items, add one short text item -> fewer input tokens, cache busts after instructions
        for item in list(realtime_server.sessions[0].items):
            await send_json(ws, {"type": "conversation.item.delete", "item_id": item.id})
        await send_json(ws, user("sum", "summary"))
        third = await _turn(ws, "c", "u3")
        assert third["input_tokens"] < second["input_tokens"]
        assert third["input_token_details"]["cached_tokens"] == 100
