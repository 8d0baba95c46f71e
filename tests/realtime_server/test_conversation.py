"""Text and function-call conversations keep real state: items, order, previous_item_id."""

import json

from realtime.server import RealtimeServer, function_call, response
from realtime.server.testing import connect_raw, recv_json, recv_until, recv_until_json, send_json

USER_HI = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}


async def test_text_only_mode_streams_text_deltas(realtime_server: RealtimeServer, openai_client) -> None:
    realtime_server.script(response("Sure thing, here you go", words_per_delta=2))
    async with openai_client.realtime.connect(model="gpt-realtime-2") as conn:
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        await conn.conversation.item.create(item=USER_HI)
        await conn.response.create()
        events = await recv_until(conn, "response.done")
    types = [e.type for e in events]
    assert "response.output_audio.delta" not in types
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert deltas == ["Sure thing,", " here you", " go"]
    assert next(e for e in events if e.type == "response.output_text.done").text == "Sure thing, here you go"
    done = events[-1].response
    assert done.output[0].content[0].type == "output_text"
    assert done.output[0].content[0].text == "Sure thing, here you go"
    assert done.usage.output_token_details.audio_tokens == 0
    assert done.usage.output_token_details.text_tokens == 6  # ceil(23 / 4)


async def test_items_are_ordered_by_previous_item_id(realtime_server: RealtimeServer) -> None:
    async with connect_raw(realtime_server) as ws:
        await recv_json(ws)
        await send_json(ws, {"type": "conversation.item.create", "item": {**USER_HI, "id": "a"}})
        added = await recv_json(ws)
        assert added["type"] == "conversation.item.added" and added["previous_item_id"] is None
        assert (await recv_json(ws))["type"] == "conversation.item.done"
        await send_json(ws, {"type": "conversation.item.create", "item": {**USER_HI, "id": "c"}})
        assert (await recv_json(ws))["previous_item_id"] == "a"
        await recv_json(ws)
        await send_json(ws, {"type": "conversation.item.create", "previous_item_id": "a", "item": {**USER_HI, "id": "b"}})
        assert (await recv_json(ws))["previous_item_id"] == "a"
        await recv_json(ws)
        await send_json(
            ws,
            {"type": "conversation.item.create", "previous_item_id": "root", "item": {"type": "message", "role": "system", "id": "s", "content": [{"type": "input_text", "text": "sys"}]}},
        )
        assert (await recv_json(ws))["previous_item_id"] is None
        await recv_json(ws)
        await send_json(ws, {"type": "conversation.item.create", "previous_item_id": "nope", "item": USER_HI})
        error = await recv_json(ws)
        assert (error["error"]["code"], error["error"]["param"]) == ("invalid_value", "previous_item_id")
        await send_json(ws, {"type": "conversation.item.create", "item": {**USER_HI, "id": "a"}})
        assert (await recv_json(ws))["error"]["param"] == "item.id"
        await send_json(ws, {"type": "conversation.item.retrieve", "item_id": "b"})
        retrieved = await recv_json(ws)
        assert retrieved["type"] == "conversation.item.retrieved" and retrieved["item"]["id"] == "b"
    assert [i.id for i in realtime_server.sessions[0].items] == ["s", "a", "b", "c"]


async def test_function_call_flow(realtime_server: RealtimeServer, openai_client) -> None:
    realtime_server.script(
        response(function_call("lookup_order", {"order_id": "A-17"}, call_id="call_1")),
        response("Your order ships tomorrow"),
    )
    async with openai_client.realtime.connect(model="gpt-realtime-2") as conn:
        await conn.conversation.item.create(item=USER_HI)
        await conn.response.create()
        events = await recv_until(conn, "response.done")
        args_deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
        done_args = next(e for e in events if e.type == "response.function_call_arguments.done")
        assert json.loads(args_deltas) == {"order_id": "A-17"} == json.loads(done_args.arguments)
        assert (done_args.name, done_args.call_id) == ("lookup_order", "call_1")
        call_item = events[-1].response.output[0]
        assert (call_item.type, call_item.status, call_item.name) == ("function_call", "completed", "lookup_order")
        await conn.conversation.item.create(item={"type": "function_call_output", "call_id": "call_1", "output": '{"eta":"tomorrow"}'})
        await conn.response.create()
        events = await recv_until(conn, "response.done")
        assert next(e for e in events if e.type == "response.output_audio_transcript.done").transcript == "Your order ships tomorrow"
    kinds = [i.data["type"] for i in realtime_server.sessions[0].items]
    assert kinds == ["message", "function_call", "function_call_output", "message"]


async def test_default_responder_echoes_when_no_script(realtime_server: RealtimeServer) -> None:
    async with connect_raw(realtime_server) as ws:
        await recv_json(ws)
        await send_json(ws, {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}})
        await send_json(ws, {"type": "conversation.item.create", "item": USER_HI})
        await send_json(ws, {"type": "response.create"})
        events = await recv_until_json(ws, "response.done")
    assert next(e for e in events if e["type"] == "response.output_text.done")["text"] == "I heard: hi"
