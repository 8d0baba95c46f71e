"""session.update: accepted, refused with the real error shape without closing the session."""

import asyncio

from realtime.server import RealtimeServer, response
from realtime.server.testing import connect_raw, recv_json, recv_until_json, send_json


async def test_update_merges_and_reports_full_config(realtime_server: RealtimeServer) -> None:
    async with connect_raw(realtime_server) as ws:
        created = await recv_json(ws)
        assert created["session"]["audio"]["input"]["turn_detection"]["type"] == "server_vad"
        await send_json(
            ws,
            {
                "type": "session.update",
                "session": {
                    "type": "realtime",
                    "instructions": "Be terse.",
                    "audio": {"input": {"format": {"type": "audio/pcmu"}, "turn_detection": None}, "output": {"voice": "marin"}},
                    "tools": [{"type": "function", "name": "lookup", "description": "d", "parameters": {"type": "object"}}],
                },
            },
        )
        updated = await recv_json(ws)
        assert updated["type"] == "session.updated"
        session = updated["session"]
        assert session["instructions"] == "Be terse."
        assert session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
        assert session["audio"]["input"]["turn_detection"] is None
        assert session["audio"]["output"]["voice"] == "marin"
        assert session["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}  # untouched
        assert session["tools"][0]["name"] == "lookup"


async def test_unknown_field_is_refused_and_session_stays_open(realtime_server: RealtimeServer) -> None:
    async with connect_raw(realtime_server) as ws:
        await recv_json(ws)
        await send_json(ws, {"type": "session.update", "event_id": "evt_1", "session": {"type": "realtime", "voicee": "x"}})
        error = await recv_json(ws)
        assert error["type"] == "error"
        assert error["error"] == {
            "type": "invalid_request_error",
            "code": "unknown_parameter",
            "message": "Unknown parameter: 'session.voicee'.",
            "param": "session.voicee",
            "event_id": "evt_1",
        }
        await send_json(
            ws, {"type": "session.update", "event_id": "evt_2", "session": {"type": "realtime", "audio": {"output": {"speed": "fast"}}}}
        )
        error = await recv_json(ws)
        assert (error["error"]["code"], error["error"]["param"], error["error"]["event_id"]) == (
            "invalid_type",
            "session.audio.output.speed",
            "evt_2",
        )
        await send_json(ws, {"type": "session.update", "session": {"type": "transcription"}})
        error = await recv_json(ws)
        assert (error["error"]["code"], error["error"]["param"]) == ("invalid_value", "session.type")
        await ws.send("{not json")
        error = await recv_json(ws)
        assert error["error"]["code"] == "invalid_json"
        await send_json(ws, {"type": "no.such.event"})
        error = await recv_json(ws)
        assert (error["error"]["code"], error["error"]["param"]) == ("invalid_value", "type")
        # still open and working
        await send_json(ws, {"type": "session.update", "session": {"type": "realtime", "instructions": "ok"}})
        assert (await recv_json(ws))["type"] == "session.updated"
    assert realtime_server.sessions[0].close_code is None or realtime_server.sessions[0].close_code == 1000


async def test_voice_is_locked_once_audio_was_produced(realtime_server: RealtimeServer) -> None:
    realtime_server.script(response("One two"))
    async with connect_raw(realtime_server) as ws:
        await recv_json(ws)
        await send_json(ws, {"type": "session.update", "session": {"type": "realtime", "audio": {"output": {"voice": "cedar"}}}})
        assert (await recv_json(ws))["session"]["audio"]["output"]["voice"] == "cedar"  # no audio yet: allowed
        await send_json(ws, {"type": "response.create"})
        await recv_until_json(ws, "response.done")
        await send_json(
            ws, {"type": "session.update", "event_id": "v", "session": {"type": "realtime", "audio": {"output": {"voice": "marin"}}}}
        )
        error = await recv_json(ws)
        assert (error["error"]["code"], error["error"]["param"], error["error"]["event_id"]) == (
            "cannot_update_voice",
            "session.audio.output.voice",
            "v",
        )
        # the same voice, or other fields, are still fine
        await send_json(
            ws, {"type": "session.update", "session": {"type": "realtime", "instructions": "x", "audio": {"output": {"voice": "cedar"}}}}
        )
        assert (await recv_json(ws))["type"] == "session.updated"
        await asyncio.sleep(0)
    assert realtime_server.sessions[0].config["audio"]["output"]["voice"] == "cedar"
