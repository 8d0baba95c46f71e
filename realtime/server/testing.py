"""Helpers and pytest fixtures for tests that talk to the protocol server.

In a conftest.py: ``from realtime.server.testing import realtime_server, openai_client  # noqa: F401``
(or call `running_server` yourself). The fixture validates every server event and fails the test
if any did not validate against the `openai` package's types."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from realtime import audio

from .peer import RealtimeServer

TEST_API_KEY = "sk-test-realtime-server"


@asynccontextmanager
async def running_server(**kwargs: Any) -> AsyncIterator[RealtimeServer]:
    """Start the test peer (`peer.RealtimeServer`) on an ephemeral port of 127.0.0.1 and stop it afterwards."""
    kwargs.setdefault("api_key", TEST_API_KEY)
    kwargs.setdefault("validate_outgoing", True)
    server = RealtimeServer(**kwargs)
    await server.start("127.0.0.1", 0)
    try:
        yield server
    finally:
        await server.stop()


def openai_client_for(server: RealtimeServer, api_key: str | None = None) -> Any:
    """An `openai.AsyncOpenAI` pointed at the server."""
    from openai import AsyncOpenAI

    return AsyncOpenAI(base_url=server.base_url, api_key=api_key or server.api_key or TEST_API_KEY, max_retries=0)


async def recv_until(connection: Any, event_type: str, timeout: float = 5.0) -> list[Any]:
    """Receive events from an openai realtime connection until one of ``event_type``; return all."""
    events: list[Any] = []

    async def loop() -> None:
        while True:
            event = await connection.recv()
            events.append(event)
            if event.type == event_type:
                return

    await asyncio.wait_for(loop(), timeout)
    return events


def signed_webhook(
    event: dict[str, Any], secret: str, *, webhook_id: str | None = None, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """A webhook body and its Standard Webhooks headers, signed the way OpenAI signs its webhooks:
    HMAC-SHA256 over ``"{webhook-id}.{webhook-timestamp}.{body}"`` with the secret (a ``whsec_``
    secret is base64 after the prefix), sent as ``webhook-signature: v1,<base64>``."""
    import hashlib
    import hmac
    import time
    import uuid

    body = json.dumps(event, separators=(",", ":")).encode()
    webhook_id = webhook_id or f"wh_{uuid.uuid4().hex}"
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    key = base64.b64decode(secret[6:]) if secret.startswith("whsec_") else secret.encode()
    digest = hmac.new(key, f"{webhook_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    headers = {"webhook-id": webhook_id, "webhook-timestamp": stamp,
               "webhook-signature": "v1," + base64.b64encode(digest).decode()}
    return body, headers


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def speech_then_silence(speech_ms: int, silence_ms: int, fmt: str = audio.PCM, lead_ms: int = 0) -> bytes:
    """Loud tone (the energy VAD hears speech) between optional leading and trailing silence."""
    return audio.silence(lead_ms, fmt) + audio.tone(speech_ms, fmt, amplitude=0.3) + audio.silence(silence_ms, fmt)


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def dump(event: Any) -> dict[str, Any]:
    """An openai event model as the JSON dict it came from."""
    return json.loads(event.to_json()) if hasattr(event, "to_json") else dict(event)


@asynccontextmanager
async def connect_raw(
    server: RealtimeServer, query: str = "model=gpt-realtime-2", api_key: str | None = None
) -> AsyncIterator[Any]:
    """A plain `websockets` client connection (for close codes and raw JSON)."""
    from websockets.asyncio.client import connect

    key = api_key or server.api_key or TEST_API_KEY
    async with connect(f"{server.url}?{query}", additional_headers={"Authorization": f"Bearer {key}"}, max_size=None, max_queue=None) as ws:
        yield ws


async def send_json(ws: Any, event: dict[str, Any]) -> None:
    await ws.send(json.dumps(event))


async def recv_json(ws: Any, timeout: float = 5.0) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return data


async def recv_until_json(ws: Any, event_type: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Raw JSON events up to and including the first of ``event_type``."""
    events: list[dict[str, Any]] = []

    async def loop() -> None:
        while True:
            events.append(json.loads(await ws.recv()))
            if events[-1]["type"] == event_type:
                return

    await asyncio.wait_for(loop(), timeout)
    return events


try:  # fixtures, only when pytest is around
    import pytest
    import pytest_asyncio

    @pytest_asyncio.fixture
    async def realtime_server() -> AsyncIterator[RealtimeServer]:
        async with running_server(max_session_seconds=60.0) as server:
            yield server
            assert not server.validation_failures, server.validation_failures

    @pytest.fixture
    def openai_client(realtime_server: RealtimeServer) -> Any:
        return openai_client_for(realtime_server)

except ImportError:  # pragma: no cover - production installs without pytest
    pass
