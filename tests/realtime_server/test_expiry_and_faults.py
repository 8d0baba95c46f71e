"""session_expired at the maximum length (1001) and injected faults."""

import asyncio
import time

import pytest
from websockets.exceptions import ConnectionClosed

from realtime.server import Faults, RealtimeServer, response
from realtime.server.testing import connect_raw, recv_json, recv_until_json, running_server, send_json


async def test_session_expires_with_1001_and_session_expired_error() -> None:
    async with running_server(max_session_seconds=0.3) as server:
        async with connect_raw(server) as ws:
            started = time.monotonic()
            assert (await recv_json(ws))["type"] == "session.created"
            error = await recv_json(ws, timeout=2)
            assert error["type"] == "error" and error["error"]["code"] == "session_expired"
            with pytest.raises(ConnectionClosed):
                await recv_json(ws, timeout=2)
            assert 0.25 < time.monotonic() - started < 1.5
            assert ws.close_code == 1001
        assert server.sessions[0].close_code == 1001
        assert not server.validation_failures


async def test_drop_after_n_events_via_query(realtime_server: RealtimeServer) -> None:
    realtime_server.script(response("a b c d e f g h"))
    async with connect_raw(realtime_server, query="model=gpt-realtime-2&fault=drop_after:6") as ws:
        await recv_json(ws)
        await send_json(ws, {"type": "response.create"})
        received = 1
        with pytest.raises(ConnectionClosed):
            while True:
                await recv_json(ws)
                received += 1
        assert received == 6
        assert ws.close_code == 1006  # no close frame: a network drop
    assert realtime_server.sessions[0].close_code == 1006


async def test_drop_mid_response_after_k_audio_deltas(realtime_server: RealtimeServer) -> None:
    realtime_server.script(response("one two three four five six"))
    realtime_server.faults = Faults(drop_after_audio_deltas=2)
    async with connect_raw(realtime_server) as ws:
        await recv_json(ws)
        await send_json(ws, {"type": "response.create"})
        events = []
        with pytest.raises(ConnectionClosed):
            while True:
                events.append(await recv_json(ws))
    assert [e["type"] for e in events].count("response.output_audio.delta") == 2
    assert "response.done" not in [e["type"] for e in events]


async def test_delay_every_event(realtime_server: RealtimeServer) -> None:
    realtime_server.script(response("a b c"))
    async with connect_raw(realtime_server, query="fault=delay_ms:30") as ws:
        started = time.monotonic()
        await recv_json(ws)
        await send_json(ws, {"type": "response.create"})
        events = await recv_until_json(ws, "response.done")
        elapsed = time.monotonic() - started
    assert elapsed >= 0.03 * (len(events) + 1) * 0.9


async def test_injected_errors_keep_the_session_open(realtime_server: RealtimeServer) -> None:
    async with connect_raw(realtime_server, query="fault=error_after:1,error_code:rate_limit_exceeded") as ws:
        await recv_json(ws)
        error = await recv_json(ws)
        assert (error["type"], error["error"]["code"]) == ("error", "rate_limit_exceeded")
        session = realtime_server.sessions[0]
        await session.inject_error("server_error", "boom")
        error = await recv_json(ws)
        assert (error["error"]["code"], error["error"]["message"]) == ("server_error", "boom")
        await send_json(ws, {"type": "session.update", "session": {"type": "realtime"}})
        assert (await recv_json(ws))["type"] == "session.updated"


async def test_unknown_fault_is_refused(realtime_server: RealtimeServer) -> None:
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus) as info:
        async with connect_raw(realtime_server, query="fault=explode:1"):
            pass
    assert info.value.response.status_code == 400


async def test_session_drop_api(realtime_server: RealtimeServer) -> None:
    async with connect_raw(realtime_server) as ws:
        await recv_json(ws)
        session = await realtime_server.wait_for_session()
        await session.drop()
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 2)
        assert ws.close_code == 1006
