"""Twilio media sockets: a missing, bad, expired or reused stream token is refused; malformed
JSON, unknown events and bad media are ignored with a logged reason while the call goes on."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from calls.models import Call
from contactcenter.asgi import application
from realtime.server import response
from tests.calls.conftest import CallClient
from tests.calls.test_twilio_call import STREAM_SID, TwilioStream, answer_call, start_message

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def twilio(settings: Any) -> None:
    settings.TWILIO_AUTH_TOKEN = "twilio-auth-token-for-tests"
    settings.PUBLIC_BASE_URL = "https://cc.example.com"


async def refused_code(path: str, start_token: str = "") -> int | None:
    communicator = WebsocketCommunicator(application, path)
    await communicator.connect(timeout=10)
    client = CallClient(communicator)
    if client.close_code is None:
        await communicator.send_json_to(start_message(start_token))
    return await client.wait_closed(5)


async def test_stream_tokens_are_checked(live_demo: Any, upstream: Any, twilio: Any, settings: Any,
                                         caplog: Any) -> None:
    upstream.script(response("Hello caller."))
    path = await answer_call()
    token = path.split("token=", 1)[1]
    with caplog.at_level(logging.WARNING, logger="calls.consumers"):
        assert await refused_code("/twilio/media") == 4401  # no token in the URL nor in the start
        assert "token is missing" in caplog.text
        assert await refused_code("/twilio/media?token=forged") == 4401
        assert await refused_code("/twilio/media", start_token="forged") == 4401
        settings.CALL_TOKEN_MAX_AGE_SECONDS = -1
        assert await refused_code(path) == 4401
        assert "token has expired" in caplog.text
        settings.CALL_TOKEN_MAX_AGE_SECONDS = 60

        # The token only in the start message's custom parameters (Twilio may drop query strings).
        stream = TwilioStream("/twilio/media")
        await stream.open(token_in_start=token)
        await stream.client.wait_for(lambda f: isinstance(f, dict) and f.get("event") == "media")
        # The same token again: that call is no longer ringing.
        assert await refused_code(path) == 4403
        assert "is not ringing" in caplog.text
    await stream.send({"event": "stop", "streamSid": STREAM_SID, "stop": {}})
    assert await stream.client.wait_closed() == 1000


async def test_bad_twilio_frames_are_ignored(live_demo: Any, upstream: Any, twilio: Any, caplog: Any) -> None:
    upstream.script(response("Hello caller."), response("You pressed five."))
    stream = TwilioStream(await answer_call())
    await stream.open()
    await stream.client.wait_for(lambda f: isinstance(f, dict) and f.get("event") == "media")
    with caplog.at_level(logging.WARNING, logger="calls.consumers"):
        await stream.communicator.send_to(text_data="{oops")
        await stream.communicator.send_to(text_data='"just a string"')
        await stream.send({"event": "teleport", "streamSid": STREAM_SID})
        await stream.send({"event": "media", "streamSid": STREAM_SID,
                           "media": {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": "%%%"}})
        await stream.communicator.send_to(bytes_data=b"\xff" * 160)
        await stream.communicator.send_to(text_data="x" * (64 * 1024 + 1))
        await stream.send({"event": "dtmf", "streamSid": STREAM_SID, "dtmf": {"track": "inbound_track", "digit": "5"}})
        await stream.client.wait_for(lambda f: "You pressed five." in str(upstream.sessions[0].server_events[-40:]))
    for reason in ("not JSON", "not a JSON object", "unknown event 'teleport'", "bad base64 payload",
                   "binary frame", "over the 65536-byte limit"):
        assert reason in caplog.text
    assert stream.client.close_code is None
    await stream.send({"event": "stop", "streamSid": STREAM_SID, "stop": {}})
    assert await stream.client.wait_closed() == 1000
    # The bad frames did not leave the record behind: the stream's stop ended the call, once.
    call = await database_sync_to_async(lambda: Call.objects.latest("pk"))()
    assert call.status == "ended" and call.ended_at is not None and call.end_reason
