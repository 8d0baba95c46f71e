"""Browser call sockets: bad tokens are refused with a close code; malformed JSON, unknown message
types, oversized frames and wrong audio are ignored with a logged reason while the call goes on."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.test import AsyncClient

from calls import tokens
from contactcenter.asgi import application
from realtime.server import response
from tests.calls.conftest import CallClient, browser_call

pytestmark = pytest.mark.django_db(transaction=True)


async def open_socket(path: str, cookie: str = "") -> CallClient:
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    if cookie:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    await communicator.connect(timeout=10)
    return CallClient(communicator)


async def session_cookie(user: Any) -> str:
    client = AsyncClient()
    await client.aforce_login(user)
    return client.cookies["sessionid"].value


async def test_bad_tokens_are_refused_while_a_call_goes_on(live_demo: Any, upstream: Any, operator: Any,
                                                          django_user_model: Any, settings: Any,
                                                          caplog: Any) -> None:
    upstream.script(response("Hello."), response("Yes, I'm still here."))
    call = await browser_call(operator)
    await call.wait_event("transcript.done", role="assistant", text="Hello.")
    cookie = await session_cookie(operator)
    other = await django_user_model.objects.acreate(username="someone-else")
    good = tokens.browser_token(user_id=operator.pk, scenario="retail", codec="pcm16")

    with caplog.at_level(logging.WARNING, logger="calls.consumers"):
        cases = {
            "/ws/calls/browser/": (4401, "token is missing"),
            "/ws/calls/browser/?token=not-a-token": (4401, "signature is not valid"),
            f"/ws/calls/browser/?token={good[:-2]}xx": (4401, "signature is not valid"),
            "/ws/calls/browser/?token=" + tokens.browser_token(user_id=other.pk, scenario="retail", codec="pcm16"):
                (4403, "another user"),
            "/ws/calls/browser/?token=" + tokens.browser_token(user_id=operator.pk, scenario="nope", codec="pcm16"):
                (4404, "no scenario"),
        }
        for path, (code, reason) in cases.items():
            refused = await open_socket(path, cookie)
            assert await refused.wait_closed() == code, path
            assert reason in caplog.text
        # Anonymous (no session) with a valid token: refused too.
        assert await (await open_socket(f"/ws/calls/browser/?token={good}")).wait_closed() == 4403
        settings.CALL_TOKEN_MAX_AGE_SECONDS = -1
        expired = await open_socket(f"/ws/calls/browser/?token={good}", cookie)
        assert await expired.wait_closed() == 4401
        assert "token has expired" in caplog.text

    await call.communicator.send_json_to({"type": "text", "text": "Are you still there?"})
    await call.wait_event("transcript.done", role="assistant", text="Yes, I'm still here.")


async def test_bad_frames_are_ignored_with_a_reason(live_demo: Any, upstream: Any, operator: Any,
                                                   caplog: Any) -> None:
    upstream.script(response("Hello."), response("Hello."))  # one greeting per call
    call = await browser_call(operator)
    bystander = await browser_call(operator)
    # Both greetings take their scripted line before anything else is asked of the upstream.
    await call.wait_event("transcript.done", role="assistant", text="Hello.")
    await bystander.wait_event("transcript.done", role="assistant", text="Hello.")

    with caplog.at_level(logging.WARNING, logger="calls.consumers"):
        await call.communicator.send_to(text_data="{not json")
        assert (await call.wait_event("error", code="bad_json"))["source"] == "transport"
        await call.communicator.send_to(text_data="[1, 2]")
        await call.wait_event("error", code="bad_message")
        await call.communicator.send_json_to({"type": "dance"})
        await call.wait_event("error", code="unknown_type")
        await call.communicator.send_json_to({"type": "playback", "item_id": "x", "played_ms": "lots"})
        await call.wait_event("error", code="bad_message")
        await call.communicator.send_to(bytes_data=b"\x00" * (64 * 1024 + 2))
        await call.wait_event("error", code="frame_too_large")
        await call.communicator.send_to(text_data="x" * (64 * 1024 + 1))
        assert len(call.events("error")) == 6 or await call.wait_event("error", code="frame_too_large")
        await call.communicator.send_to(bytes_data=b"\x00" * 961)
        await call.wait_event("error", code="bad_audio")
    for reason in ("not JSON", "unknown message type 'dance'", "over the 65536-byte limit", "odd byte count"):
        assert reason in caplog.text
    sent = [e for session in upstream.sessions for e in session.client_events
            if e.get("type") == "input_audio_buffer.append"]
    assert sent == [], "no bad audio reached an upstream session"

    await call.communicator.send_json_to({"type": "text", "text": "Hello again"})
    await call.wait_event("transcript.done", role="assistant", text="I heard: Hello again")
    assert bystander.close_code is None
    for client in (call, bystander):
        await client.communicator.send_json_to({"type": "hangup"})
        assert await client.wait_closed() == 1000
