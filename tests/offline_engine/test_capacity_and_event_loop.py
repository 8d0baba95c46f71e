"""CPU work stays off the event loop, and past its capacity the engine refuses a new session with
a clear error instead of slowing every call down."""

from __future__ import annotations

import asyncio
import json
import time

from realtime.server import RealtimeServer
from realtime.server.offline import OfflineEngine, offline_server
from realtime.server.testing import TEST_API_KEY, b64, connect_raw, recv_until_json, send_json

from .speech import Caller, frames


async def test_new_session_past_capacity_is_refused(engine: OfflineEngine) -> None:
    server = offline_server(engine=engine, api_key=TEST_API_KEY, validate_outgoing=True, max_sessions=2)
    await server.start("127.0.0.1", 0)
    try:
        async with connect_raw(server) as one, connect_raw(server) as two:
            assert json.loads(await one.recv())["type"] == "session.created"
            assert json.loads(await two.recv())["type"] == "session.created"
            async with connect_raw(server) as three:
                refusal = json.loads(await asyncio.wait_for(three.recv(), 5))
                assert refusal["type"] == "error"
                assert refusal["error"]["code"] == "engine_at_capacity"
                assert "maximum of 2 concurrent sessions" in refusal["error"]["message"]
                await asyncio.wait_for(three.wait_closed(), 5)
                assert three.close_code == 1013
            assert len(server.sessions) == 2
        # a call that ended frees its place
        for _ in range(50):
            if all(s.closed for s in server.sessions):
                break
            await asyncio.sleep(0.05)
        async with connect_raw(server) as again:
            assert json.loads(await again.recv())["type"] == "session.created"
    finally:
        await server.stop()


async def test_event_loop_keeps_turning_during_recognition_and_synthesis(engine: OfflineEngine, caller: Caller) -> None:
    fmt = "audio/pcm"
    text = "Please tell me everything about the return policy for running shoes bought last month."
    speech = caller.utterance(text, fmt, tail_ms=800)  # made here, before the loop is watched
    server = offline_server(engine=engine, server_class=RealtimeServer, api_key=TEST_API_KEY, validate_outgoing=True)
    await server.start("127.0.0.1", 0)
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:  # how late a 10 ms sleep wakes up
        while not stop.is_set():
            t0 = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - t0 - 0.01)

    tick = asyncio.create_task(ticker())
    try:
        async with connect_raw(server) as ws:
            await recv_until_json(ws, "session.created")
            await send_json(ws, {"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 400}}}}})
            for frame in frames(speech, fmt, 100):
                await send_json(ws, {"type": "input_audio_buffer.append", "audio": b64(frame)})
            events = await recv_until_json(ws, "response.done", timeout=30)
        assert any(e["type"] == "response.output_audio.delta" for e in events)
        assert server.sessions[0].items[0].data["content"][0]["transcript"]
    finally:
        stop.set()
        await tick
        await server.stop()
    # recognition (hundreds of ms) and synthesis ran meanwhile; the loop never stalled for long
    assert len(lags) > 20
    assert max(lags) < 0.15, sorted(lags)[-5:]
