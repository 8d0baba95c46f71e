"""Audio input: server VAD from generated tones, manual commit, G.711 formats, barge-in."""

from realtime import audio as fmt
from realtime.server import RealtimeServer, response
from realtime.server.testing import b64, chunks, connect_raw, recv_json, recv_until_json, send_json, speech_then_silence


async def _append(ws, data: bytes, ms_per_chunk: int, bytes_per_ms: int) -> None:
    for chunk in chunks(data, ms_per_chunk * bytes_per_ms):
        await send_json(ws, {"type": "input_audio_buffer.append", "audio": b64(chunk)})


async def test_server_vad_speech_events_commit_transcript_and_response(realtime_server: RealtimeServer) -> None:
    realtime_server.add_transcripts("where is my parcel")
    realtime_server.script(response("It is on its way"))
    async with connect_raw(realtime_server) as ws:
        await recv_json(ws)
        await send_json(
            ws,
            {"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"transcription": {"model": "gpt-4o-mini-transcribe"}, "turn_detection": {"type": "server_vad", "silence_duration_ms": 400, "prefix_padding_ms": 200}}}}},
        )
        await recv_json(ws)
        await _append(ws, speech_then_silence(600, 700, lead_ms=1000), 100, 48)
        events = await recv_until_json(ws, "response.done")
    types = [e["type"] for e in events]
    started = next(e for e in events if e["type"] == "input_audio_buffer.speech_started")
    stopped = next(e for e in events if e["type"] == "input_audio_buffer.speech_stopped")
    assert started["audio_start_ms"] == 1000 - 200
    assert stopped["audio_end_ms"] == 1600
    assert started["item_id"] == stopped["item_id"]
    committed = next(e for e in events if e["type"] == "input_audio_buffer.committed")
    assert committed["item_id"] == started["item_id"]
    assert types.index("input_audio_buffer.speech_stopped") < types.index("input_audio_buffer.committed") < types.index("response.created")
    completed = next(e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed")
    assert completed["transcript"] == "where is my parcel"
    assert events[-1]["response"]["status"] == "completed"
    session = realtime_server.sessions[0]
    user = session.item(started["item_id"])
    assert user is not None and user.data["content"][0]["transcript"] == "where is my parcel"
    assert user.audio_ms(0) == 2000  # everything buffered up to the stop: 1000 + 600 + 400
    # input audio tokens: 2000 ms / 100
    assert events[-1]["response"]["usage"]["input_token_details"]["audio_tokens"] == 20


async def test_silence_alone_never_starts_speech(realtime_server: RealtimeServer) -> None:
    async with connect_raw(realtime_server) as ws:
        await recv_json(ws)
        await _append(ws, fmt.silence(1500, fmt.PCM), 100, 48)
        await send_json(ws, {"type": "input_audio_buffer.clear"})
        assert (await recv_json(ws))["type"] == "input_audio_buffer.cleared"
    assert not any(e["type"].startswith("input_audio_buffer.speech") for e in realtime_server.sessions[0].server_events)


async def test_manual_commit_with_turn_detection_off_in_pcmu(realtime_server: RealtimeServer) -> None:
    async with connect_raw(realtime_server) as ws:
        await recv_json(ws)
        await send_json(
            ws, {"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcmu"}, "turn_detection": None}}}}
        )
        await recv_json(ws)
        await send_json(ws, {"type": "input_audio_buffer.append", "audio": b64(fmt.tone(50, fmt.PCMU, amplitude=0.3))})
        await send_json(ws, {"type": "input_audio_buffer.commit", "event_id": "c"})
        error = await recv_json(ws)
        assert (error["error"]["code"], error["error"]["event_id"]) == ("input_audio_buffer_commit_empty", "c")
        await send_json(ws, {"type": "input_audio_buffer.append", "audio": b64(fmt.tone(750, fmt.PCMU, amplitude=0.3))})
        await send_json(ws, {"type": "input_audio_buffer.commit"})
        committed = await recv_json(ws)
        assert committed["type"] == "input_audio_buffer.committed"
        added = await recv_json(ws)
        assert added["type"] == "conversation.item.added" and added["item"]["content"] == [{"type": "input_audio", "transcript": None}]
    session = realtime_server.sessions[0]
    assert session.items[0].audio_ms(0) == 800
    assert not any(e["type"] == "response.created" for e in session.server_events)  # the client decides


async def test_g711_round_trip_keeps_tone_loud() -> None:
    for kind in (fmt.PCMU, fmt.PCMA):
        data = fmt.tone(100, kind, amplitude=0.3)
        assert len(data) == 800
        level = fmt.rms(fmt.decode_float(data, kind))
        assert 0.19 < level < 0.23, (kind, level)
    assert fmt.rms(fmt.decode_float(fmt.silence(100, fmt.PCMA), fmt.PCMA)) < 0.001


async def test_barge_in_cancels_the_active_response(realtime_server: RealtimeServer) -> None:
    realtime_server.script(response("one two three four five six seven eight nine ten", delay_ms=40))
    async with connect_raw(realtime_server) as ws:
        await recv_json(ws)
        await send_json(ws, {"type": "response.create"})
        await recv_until_json(ws, "response.output_audio.delta")
        await _append(ws, speech_then_silence(300, 0), 100, 48)
        events = await recv_until_json(ws, "response.done")
        started = next(e for e in events if e["type"] == "input_audio_buffer.speech_started")
        assert started["audio_start_ms"] == 0
        done = events[-1]["response"]
        assert done["status"] == "cancelled"
        assert done["status_details"]["reason"] == "turn_detected"
        item_id = done["output"][0]["id"]
        heard = sum(1 for e in realtime_server.sessions[0].server_events if e["type"] == "response.output_audio.delta")
        await send_json(ws, {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": 100})
        assert (await recv_json(ws))["type"] == "conversation.item.truncated"
    assert 0 < heard < 10
