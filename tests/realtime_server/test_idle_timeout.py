"""server_vad ``idle_timeout_ms``: counted on the caller's audio clock from the end of the last
response's playback (response.done + the audio it produced), reset by speech, suspended by a
response; wall-clock fallback when no audio arrives. Every server event is validated by the
``realtime_server`` fixture against the openai package's union."""

import asyncio

from realtime import audio as fmt
from realtime.server import RealtimeServer, response
from realtime.server.testing import (
    b64,
    chunks,
    connect_raw,
    openai_client_for,
    recv_json,
    recv_until,
    recv_until_json,
    send_json,
    speech_then_silence,
)

PCM_BYTES_PER_MS = 48


def _vad(**td: object) -> dict[str, object]:
    return {"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad", **td}}}}}


async def _append(ws, data: bytes, ms_per_chunk: int = 20) -> None:
    for chunk in chunks(data, ms_per_chunk * PCM_BYTES_PER_MS):
        await send_json(ws, {"type": "input_audio_buffer.append", "audio": b64(chunk)})


async def test_silence_after_the_response_audio_triggers_commit_and_a_response(realtime_server: RealtimeServer) -> None:
    # "Hello there": two words of 200 ms tone = 400 ms of assistant audio
    realtime_server.script(response("Hello there"), response("Are you still there?"))
    client = openai_client_for(realtime_server)
    async with client.realtime.connect(model="gpt-realtime-2") as conn:
        await recv_until(conn, "session.created")
        await conn.session.update(session={"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad", "idle_timeout_ms": 1000}}}})
        updated = await recv_until(conn, "session.updated")
        assert updated[-1].session.audio.input.turn_detection.idle_timeout_ms == 1000
        await conn.response.create()
        await recv_until(conn, "response.done")
        for chunk in chunks(fmt.silence(2000, fmt.PCM), 20 * PCM_BYTES_PER_MS):
            await conn.input_audio_buffer.append(audio=b64(chunk))
        events = await recv_until(conn, "response.done")
    types = [e.type for e in events]
    assert types.count("input_audio_buffer.timeout_triggered") == 1
    trig = next(e for e in events if e.type == "input_audio_buffer.timeout_triggered")
    # the count starts where the 400 ms of audio finished playing (no caller audio before
    # response.done) and fires after 1000 ms more of caller audio
    assert (trig.audio_start_ms, trig.audio_end_ms) == (400, 1400)
    committed = next(e for e in events if e.type == "input_audio_buffer.committed")
    assert committed.item_id == trig.item_id
    added = next(e for e in events if e.type == "conversation.item.added" and e.item.id == trig.item_id)
    assert added.item.role == "user" and added.item.content[0].type == "input_audio"
    assert types.index("input_audio_buffer.timeout_triggered") < types.index("input_audio_buffer.committed") < types.index("response.created")
    assert events[-1].response.status == "completed"
    session = realtime_server.sessions[0]
    user = session.item(trig.item_id)
    assert user is not None and user.audio_ms(0) == 1400  # the silent buffer up to the trigger
    assert user.data["content"][0]["transcript"] == ""
    assert not any(e["type"] == "input_audio_buffer.speech_started" for e in session.server_events)


async def test_speech_before_the_timeout_resets_it_and_create_response_is_honoured(realtime_server: RealtimeServer) -> None:
    realtime_server.script(response("Hello there"))
    async with connect_raw(realtime_server) as ws:
        await recv_json(ws)
        await send_json(ws, _vad(idle_timeout_ms=1000, create_response=False, silence_duration_ms=400, prefix_padding_ms=0))
        await recv_until_json(ws, "session.updated")
        await send_json(ws, {"type": "response.create"})
        await recv_until_json(ws, "response.done")
        # 900 ms of silence (the count would end at 400 + 1000), then speech from 900 to 1200
        await _append(ws, speech_then_silence(300, 1500, lead_ms=900))
        events = await recv_until_json(ws, "input_audio_buffer.timeout_triggered")
        # total 2700 ms written; nothing more may come
        await asyncio.sleep(0.2)
    types = [e["type"] for e in events]
    assert types.index("input_audio_buffer.speech_started") < types.index("input_audio_buffer.timeout_triggered")
    stopped = next(e for e in events if e["type"] == "input_audio_buffer.speech_stopped")
    assert stopped["audio_end_ms"] == 1200
    trig = events[-1]
    # counted again from the end of speech
    assert (trig["audio_start_ms"], trig["audio_end_ms"]) == (1200, 2200)
    session = realtime_server.sessions[0]
    sent = [e["type"] for e in session.server_events]
    assert sent.count("input_audio_buffer.timeout_triggered") == 1
    assert sent.count("response.created") == 1  # create_response false: no response to either commit
    assert sent.count("input_audio_buffer.committed") == 2


async def test_speech_answered_before_the_timeout_never_triggers(realtime_server: RealtimeServer) -> None:
    realtime_server.add_transcripts("hello")
    realtime_server.script(response("Hello there"), response("Hi again"))
    async with connect_raw(realtime_server) as ws:
        await recv_json(ws)
        await send_json(ws, _vad(idle_timeout_ms=1000, silence_duration_ms=400, prefix_padding_ms=0))
        await recv_until_json(ws, "session.updated")
        await send_json(ws, {"type": "response.create"})
        await recv_until_json(ws, "response.done")
        await _append(ws, speech_then_silence(300, 500, lead_ms=900))  # speech stops at 1200
        events = await recv_until_json(ws, "response.done")
    assert not any(e["type"] == "input_audio_buffer.timeout_triggered" for e in events)
    assert events[-1]["response"]["status"] == "completed"


async def test_an_active_response_suspends_the_count(realtime_server: RealtimeServer) -> None:
    # a slow response: 5 words x 200 ms delay; silence written while it runs does not count
    realtime_server.script(response("Hello there"), response("one two three four five", delay_ms=200))
    async with connect_raw(realtime_server) as ws:
        await recv_json(ws)
        await send_json(ws, _vad(idle_timeout_ms=3000))
        await recv_until_json(ws, "session.updated")
        await send_json(ws, {"type": "response.create"})
        await recv_until_json(ws, "response.done")
        await send_json(ws, {"type": "response.create"})
        await recv_until_json(ws, "response.created")
        await _append(ws, fmt.silence(4000, fmt.PCM))  # all while the second response is active
        events = await recv_until_json(ws, "response.done")
    assert not any(e["type"] == "input_audio_buffer.timeout_triggered" for e in events)
    session = realtime_server.sessions[0]
    assert session.idle_from_ms == 4000 + 1000  # 4000 ms written, then 5 words x 200 ms to play


async def test_no_idle_timeout_configured_never_triggers(realtime_server: RealtimeServer) -> None:
    realtime_server.script(response("Hello there"))
    async with connect_raw(realtime_server) as ws:
        await recv_json(ws)
        await send_json(ws, _vad(silence_duration_ms=400))
        await recv_until_json(ws, "session.updated")
        await send_json(ws, {"type": "response.create"})
        await recv_until_json(ws, "response.done")
        await _append(ws, fmt.silence(5000, fmt.PCM))
        await send_json(ws, {"type": "input_audio_buffer.clear"})
        await recv_until_json(ws, "input_audio_buffer.cleared")
    sent = [e["type"] for e in realtime_server.sessions[0].server_events]
    assert "input_audio_buffer.timeout_triggered" not in sent
    assert "input_audio_buffer.committed" not in sent


async def test_semantic_vad_ignores_idle_timeout(realtime_server: RealtimeServer) -> None:
    realtime_server.script(response("Hello there"))
    async with connect_raw(realtime_server) as ws:
        await recv_json(ws)
        await send_json(
            ws, {"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}}}
        )
        await recv_until_json(ws, "session.updated")
        session = realtime_server.sessions[0]
        session.config["audio"]["input"]["turn_detection"]["idle_timeout_ms"] = 1000  # even if set
        await send_json(ws, {"type": "response.create"})
        await recv_until_json(ws, "response.done")
        await _append(ws, fmt.silence(3000, fmt.PCM))
        await send_json(ws, {"type": "input_audio_buffer.clear"})
        await recv_until_json(ws, "input_audio_buffer.cleared")
    assert not any(e["type"] == "input_audio_buffer.timeout_triggered" for e in session.server_events)


async def test_wall_clock_fallback_when_no_audio_arrives(realtime_server: RealtimeServer) -> None:
    realtime_server.script(response("Hi"), response("Are you still there?"))
    async with connect_raw(realtime_server) as ws:
        await recv_json(ws)
        await send_json(ws, _vad(idle_timeout_ms=300))
        await recv_until_json(ws, "session.updated")
        await send_json(ws, {"type": "response.create"})
        await recv_until_json(ws, "response.done")
        loop = asyncio.get_running_loop()
        done_at = loop.time()
        events = await recv_until_json(ws, "response.done", timeout=5.0)
        elapsed = loop.time() - done_at
    trig = next(e for e in events if e["type"] == "input_audio_buffer.timeout_triggered")
    # 200 ms of playback + 300 ms; no caller audio was written, so both offsets are 0
    assert elapsed >= 0.45
    assert (trig["audio_start_ms"], trig["audio_end_ms"]) == (0, 0)
    committed = next(e for e in events if e["type"] == "input_audio_buffer.committed")
    assert committed["item_id"] == trig["item_id"]
    assert events[-1]["response"]["status"] == "completed"
