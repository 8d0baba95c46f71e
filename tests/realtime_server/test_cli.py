"""`python -m realtime.server` serves the protocol on the given port."""

import asyncio
import socket
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
