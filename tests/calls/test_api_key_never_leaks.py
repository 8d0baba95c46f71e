"""The OpenAI key never reaches a browser: a whole call with a sentinel key, every HTTP response
and every WebSocket frame scanned for it."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import AsyncClient

from realtime.server import function_call, response
from realtime.server.testing import running_server
from tests.calls.conftest import browser_call, speech_frames

pytestmark = pytest.mark.django_db(transaction=True)

SENTINEL = "sk-SENTINEL-d0-not-leak-7f3a9c"


async def test_no_response_or_frame_carries_the_key(live_demo: Any, operator: Any, settings: Any) -> None:
    async with running_server(api_key=SENTINEL, max_session_seconds=60.0) as server:
        settings.OPENAI_BASE_URL = server.base_url
        settings.OPENAI_API_KEY = SENTINEL
        server.script(
            response("Hello, who am I speaking with?"),
            response(function_call("verify_customer", {"phone_number": "+447700900123",
                                                       "date_of_birth": "1985-04-23"})),
            response("Thanks Ada, you're verified."),
        )
        server.add_transcripts("It's Ada")
        http = AsyncClient()
        await http.aforce_login(operator)
        bodies: list[bytes] = []
        for method, path, data in [("get", "/calls/", None), ("post", "/calls/token/", {"scenario": "retail"}),
                                   ("post", "/calls/client-secret/", {"scenario": "retail"}),
                                   ("get", "/admin/", None)]:
            reply = await getattr(http, method)(path, data) if data else await getattr(http, method)(path)
            bodies.append(reply.content + str(reply.headers).encode())

        call = await browser_call(operator)
        await call.wait_event("transcript.done", role="assistant", text="Hello, who am I speaking with?")
        for frame in speech_frames():
            await call.communicator.send_to(bytes_data=frame)
        await call.wait_event("transcript.done", role="assistant", text="Thanks Ada, you're verified.")
        await call.communicator.send_json_to({"type": "hangup"})
        assert await call.wait_closed() == 1000
        assert server.sessions, "the call really used the upstream with the sentinel key"

    assert call.frames and all(bodies)
    for body in bodies:
        assert SENTINEL.encode() not in body
    for frame in call.frames:
        raw = frame if isinstance(frame, bytes) else repr(frame).encode()
        assert SENTINEL.encode() not in raw
