"""The production server apart from the test peer: it never imports the peer, reads no faults,
keeps no event logs unless asked, drops closed sessions, caps the input buffer and purges
expired client secrets."""

import asyncio
import base64
import json
import subprocess
import sys

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from realtime import audio as fmt
from realtime.server import ProtocolServer
from realtime.server.session import MAX_INPUT_BUFFER_BYTES
from realtime.server.testing import TEST_API_KEY, connect_raw, recv_json, recv_until_json, send_json


def test_production_code_never_imports_the_test_peer() -> None:
    code = (
        "import sys, realtime.server, realtime.server.__main__, realtime.server.offline, realtime.server.app;"
        "loaded = [m for m in ('realtime.server.peer', 'realtime.server.faults', 'realtime.server.testing') if m in sys.modules];"
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


async def _production(**kwargs: object) -> ProtocolServer:
    server = ProtocolServer(api_key=TEST_API_KEY, validate_outgoing=True, **kwargs)  # type: ignore[arg-type]
    await server.start("127.0.0.1", 0)
    return server


async def test_closed_sessions_are_dropped_and_no_event_log_is_kept() -> None:
    server = await _production()
    try:
        for _ in range(3):
            async with connect_raw(server, query="model=gpt-realtime-2&fault=drop_after:2") as ws:
                await recv_json(ws)
                await send_json(ws, {"type": "conversation.item.create", "item": {"type": "message", "role": "user",
                                                                                   "content": [{"type": "input_text", "text": "hi"}]}})
                await send_json(ws, {"type": "response.create"})
                # the fault query means nothing here: the whole response arrives
                events = await recv_until_json(ws, "response.done")
                assert events[-1]["response"]["status"] == "completed"
                live = server.sessions[0]
                assert live.server_events == [] and live.client_events == [] and live.responses == []
        for _ in range(50):
            if not server.sessions:
                break
            await asyncio.sleep(0.02)
        assert server.sessions == []
        assert not server.validation_failures
    finally:
        await server.stop()


async def test_debug_keeps_the_event_logs() -> None:
    server = await _production(debug=True)
    try:
        async with connect_raw(server) as ws:
            await recv_json(ws)
            assert [e["type"] for e in server.sessions[0].server_events] == ["session.created"]
    finally:
        await server.stop()


def _append(chunk: bytes) -> dict[str, str]:
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(chunk).decode()}


async def test_input_buffer_capped_at_15_mib_without_turn_detection() -> None:
    server = await _production()
    try:
        async with connect_raw(server) as ws:
            await recv_json(ws)
            await send_json(ws, {"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}}})
            await recv_json(ws)
            half = bytes(MAX_INPUT_BUFFER_BYTES // 2 + 2)
            await send_json(ws, _append(half))
            await send_json(ws, _append(half))  # past the cap: refused whole
            error = await recv_json(ws, timeout=20)
            assert error["type"] == "error" and error["error"]["code"] == "input_audio_buffer_full"
            assert "commit" in error["error"]["message"] and error["error"]["param"] == "audio"
            session = server.sessions[0]
            assert len(session.input_buffer) == len(half)  # what was there is kept
            await send_json(ws, {"type": "input_audio_buffer.commit"})
            committed = await recv_until_json(ws, "input_audio_buffer.committed", timeout=20)
            item = session.item(committed[-1]["item_id"])
            assert item is not None and len(item.audio[0]) == len(half)
    finally:
        await server.stop()


async def test_input_buffer_keeps_the_newest_15_mib_with_turn_detection() -> None:
    server = await _production()
    try:
        async with connect_raw(server) as ws:
            await recv_json(ws)
            silence = fmt.silence(60_000, fmt.PCM)  # a minute of 24 kHz silence: 2.88 MB
            for _ in range(6):
                await send_json(ws, _append(silence))
            await send_json(ws, {"type": "conversation.item.create", "item": {"type": "message", "role": "user",
                                                                               "content": [{"type": "input_text", "text": "sync"}]}})
            await recv_until_json(ws, "conversation.item.done", timeout=20)
            session = server.sessions[0]
            assert len(session.input_buffer) <= MAX_INPUT_BUFFER_BYTES
            assert session.audio_clock_ms == 6 * 60_000
            # the buffer's position on the audio clock moved with what was dropped
            assert session.buffer_start_ms + len(session.input_buffer) / fmt.bytes_per_ms(fmt.PCM) == session.audio_clock_ms
    finally:
        await server.stop()


async def test_expired_client_secrets_are_purged() -> None:
    server = await _production()
    try:
        async with httpx.AsyncClient(base_url=server.base_url, headers={"Authorization": f"Bearer {TEST_API_KEY}"}) as http:
            first = await http.post("/realtime/client_secrets", json={"expires_after": {"anchor": "created_at", "seconds": 1}})
            assert first.status_code == 200
            assert len(server.secrets) == 1
            await asyncio.sleep(1.1)
            second = await http.post("/realtime/client_secrets", json={})
            assert second.status_code == 200
            assert list(server.secrets) == [second.json()["value"]]
        # the expired one no longer opens a session
        with pytest.raises(InvalidStatus) as refused:
            async with connect_raw(server, api_key=first.json()["value"]):
                pass
        assert refused.value.response.status_code == 401
    finally:
        await server.stop()


async def test_oversized_request_body_is_refused() -> None:
    server = await _production()
    try:
        async with httpx.AsyncClient(base_url=server.base_url, headers={"Authorization": f"Bearer {TEST_API_KEY}"}) as http:
            big = json.dumps({"model": "m", "input": "x" * (9 * 1024 * 1024)})
            answer = await http.post("/responses", content=big, headers={"content-type": "application/json"})
            assert answer.status_code == 413
            assert answer.json()["error"]["code"] == "request_too_large"
    finally:
        await server.stop()
