"""Finding 5: a call token opens one call; a user has a capped number of live calls; typed turns
and push-to-talk presses are rate-limited (a flood does not ask the model for a response each)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.test import AsyncClient

from contactcenter.asgi import application
from realtime.server import response
from tests.calls.conftest import CallClient

pytestmark = pytest.mark.django_db(transaction=True)


async def token_and_cookie(user: Any) -> tuple[str, str]:
    http = AsyncClient()
    await http.aforce_login(user)
    reply = await http.post("/calls/token/", {"scenario": "retail", "codec": "pcm16"})
    assert reply.status_code == 200
    return reply.json()["ws_url"], http.cookies["sessionid"].value


async def open_call(ws_url: str, session: str) -> CallClient:
    communicator = WebsocketCommunicator(application, ws_url, headers=[
        (b"origin", b"http://testserver"), (b"host", b"testserver"), (b"cookie", f"sessionid={session}".encode())])
    await communicator.connect(timeout=10)
    return CallClient(communicator)


async def started(client: CallClient) -> bool:
    try:
        await client.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "call", 5)
    except AssertionError:
        return False
    return True


async def hang_up(client: CallClient) -> None:
    if client.close_code is None:
        await client.communicator.send_json_to({"type": "hangup"})
        await client.wait_closed()


async def test_a_call_token_opens_one_call(live_demo: Any, upstream: Any, operator: Any) -> None:
    ws_url, session = await token_and_cookie(operator)
    first = await open_call(ws_url, session)
    assert await started(first)
    again = await open_call(ws_url, session)
    assert not await started(again)
    assert await again.wait_closed() == 4401
    await hang_up(first)
    # Still refused once the first call is over: used is used.
    later = await open_call(ws_url, session)
    assert await later.wait_closed() == 4401


async def test_a_user_has_a_capped_number_of_live_calls(live_demo: Any, upstream: Any, operator: Any,
                                                        settings: Any) -> None:
    settings.USER_MAX_LIVE_CALLS = 2
    calls = []
    for _ in range(2):
        client = await open_call(*await token_and_cookie(operator))
        assert await started(client)
        calls.append(client)
    third = await open_call(*await token_and_cookie(operator))
    assert await third.wait_closed() == 4429
    await hang_up(calls.pop())
    fourth = await open_call(*await token_and_cookie(operator))
    assert await started(fourth)
    for client in [*calls, fourth]:
        await hang_up(client)


def responses_asked(upstream: Any) -> int:
    return sum(1 for e in upstream.sessions[0].client_events if e.get("type") == "response.create")


async def test_typed_turns_are_rate_limited(live_demo: Any, upstream: Any, operator: Any, settings: Any) -> None:
    settings.CALL_TEXT_TURNS_PER_SECOND = 1
    settings.CALL_TEXT_TURNS_BURST = 3
    upstream.script(*[response("Okay.") for _ in range(120)])
    client = await open_call(*await token_and_cookie(operator))
    assert await started(client)
    await client.wait_event("transcript.done", role="assistant")
    before = responses_asked(upstream)
    for n in range(100):
        await client.communicator.send_json_to({"type": "text", "text": f"turn {n}"})
    await client.drain(1.0)
    asked = responses_asked(upstream) - before
    assert 1 <= asked <= 5, asked
    assert any(e["code"] == "rate_limited" for e in client.events("error"))
    await hang_up(client)


async def test_push_to_talk_is_rate_limited(live_demo: Any, upstream: Any, operator: Any, settings: Any) -> None:
    settings.CALL_PTT_PER_SECOND = 1
    settings.CALL_PTT_BURST = 4
    client = await open_call(*await token_and_cookie(operator))
    assert await started(client)
    await upstream.wait_for_session(timeout=5)
    await asyncio.sleep(0.2)
    before = len(upstream.sessions[0].client_events)
    for n in range(100):
        await client.communicator.send_json_to({"type": "ptt", "state": "down" if n % 2 == 0 else "up"})
    await client.drain(1.0)
    sent = [e.get("type") for e in upstream.sessions[0].client_events[before:]]
    presses = sum(1 for t in sent if t in ("input_audio_buffer.clear", "input_audio_buffer.commit"))
    assert presses <= 6, sent
    assert any(e["code"] == "rate_limited" for e in client.events("error"))
    await hang_up(client)
