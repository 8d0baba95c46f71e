"""`python -m realtime.server` serves the protocol on the given port."""

import asyncio
import socket
import subprocess
import sys

from openai import AsyncOpenAI


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_cli_serves_realtime_and_health() -> None:
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "realtime.server", "--host", "127.0.0.1", "--port", str(port), "--api-key", "sk-cli", "--engine", "scripted",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        line = await asyncio.wait_for(proc.stderr.readline(), 20)
        assert f"ws://127.0.0.1:{port}/v1/realtime".encode() in line
        client = AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-cli", max_retries=0)
        async with client.realtime.connect(model="gpt-realtime-2") as conn:
            await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
            await conn.conversation.item.create(item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "ping"}]})
            await conn.response.create()
            text = ""
            async for event in conn:
                if event.type == "response.output_text.done":
                    text = event.text
                if event.type == "response.done":
                    break
        assert text == "I heard: ping"
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "realtime.server", *args], check=False, capture_output=True, text=True, timeout=60)


def test_an_api_key_is_required_beyond_loopback() -> None:
    done = _run_cli("--host", "0.0.0.0", "--port", "0", "--engine", "scripted")
    assert done.returncode == 2
    assert "--api-key" in done.stderr and "loopback" in done.stderr


def test_faults_need_the_test_peer_flag() -> None:
    done = _run_cli("--port", "0", "--engine", "scripted", "--fault", "drop_after:3")
    assert done.returncode == 2
    assert "--test-peer" in done.stderr


async def test_half_sent_requests_are_dropped_after_the_header_timeout() -> None:
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "realtime.server", "--port", str(port), "--engine", "scripted", "--header-timeout", "1",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        await asyncio.wait_for(proc.stderr.readline(), 20)
        # a whole request is answered
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 5)
        assert answer.startswith(b"HTTP/1.1 200") and b'"ok"' in answer
        writer.close()
        # half a request head: the server hangs up once the header timeout has passed
        held = []
        for _ in range(20):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            held.append((reader, writer))
        for reader, writer in held:
            try:
                rest = await asyncio.wait_for(reader.read(), 5)
            except ConnectionResetError:  # dropped without ceremony
                rest = b""
            assert rest == b""
            writer.close()
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


async def test_the_test_peer_flag_serves_faults() -> None:
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "realtime.server", "--port", str(port), "--api-key", "sk-cli", "--engine", "scripted",
        "--test-peer", "--fault", "error_after:1,error_code:rate_limit_exceeded",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        line = await asyncio.wait_for(proc.stderr.readline(), 20)
        assert b"test peer" in line
        client = AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-cli", max_retries=0)
        async with client.realtime.connect(model="gpt-realtime-2") as conn:
            assert (await conn.recv()).type == "session.created"
            injected = await conn.recv()
            assert injected.type == "error" and injected.error.code == "rate_limit_exceeded"
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
