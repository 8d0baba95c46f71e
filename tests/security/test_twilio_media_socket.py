"""Finding 8: the Twilio media socket closes with 4xxx codes, refuses malformed start/dtmf/mark
messages without crashing, times out a socket that sends no valid start, caps pending sockets,
and the ringing call it was meant to carry ends."""

from __future__ import annotations

import asyncio
import json
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


async def open_socket(path: str = "/twilio/media") -> CallClient:
    communicator = WebsocketCommunicator(application, path)
    await communicator.connect(timeout=10)
    return CallClient(communicator)


async def closed_with(client: CallClient, timeout: float = 5) -> int | None:
    code = await client.wait_closed(timeout)
    # The consumer ended cleanly: a crash would surface here as the exception it raised.
    if client.communicator.future.done() and not client.communicator.future.cancelled():
        client.communicator.future.result()
    return code


def call_status(call_id: int) -> str:
    return Call.objects.get(pk=call_id).status


async def ringing_call() -> tuple[str, int]:
    path = await answer_call()
    call_id = await database_sync_to_async(lambda: Call.objects.latest("pk").pk)()
    return path, call_id


@pytest.mark.parametrize("media_format", [
    {"encoding": "audio/x-mulaw", "sampleRate": "eight thousand", "channels": 1},
    {"encoding": "audio/x-mulaw", "sampleRate": [8000], "channels": 1},
    {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": {"n": 1}},
    "audio/x-mulaw",
    [1, 2, 3],
    {"encoding": "audio/x-alaw", "sampleRate": 8000, "channels": 1},
])
async def test_a_bad_media_format_closes_with_4xxx_and_ends_the_call(
        live_demo: Any, upstream: Any, twilio: Any, media_format: Any) -> None:
    path, call_id = await ringing_call()
    client = await open_socket(path)
    start = start_message()
    start["start"]["mediaFormat"] = media_format
    await client.communicator.send_to(text_data=json.dumps(start))
    code = await closed_with(client)
    assert code is not None and 4000 <= code <= 4999, code
    assert await database_sync_to_async(call_status)(call_id) == Call.Status.ENDED


@pytest.mark.parametrize("start", [{"event": "start"}, {"event": "start", "start": "x"},
                                   {"event": "start", "start": [1]}])
async def test_a_start_without_a_start_object_closes_with_4xxx(live_demo: Any, twilio: Any, start: Any) -> None:
    client = await open_socket()
    await client.communicator.send_to(text_data=json.dumps(start))
    code = await closed_with(client)
    assert code is not None and 4000 <= code <= 4999, code


async def test_dtmf_and_mark_of_the_wrong_type_are_ignored(live_demo: Any, upstream: Any, twilio: Any) -> None:
    upstream.script(response("Hello caller."))
    stream = TwilioStream(await answer_call())
    await stream.open()
    await stream.client.wait_for(lambda f: isinstance(f, dict) and f.get("event") == "media")
    for message in ({"event": "dtmf", "dtmf": "5"}, {"event": "dtmf", "dtmf": [5]}, {"event": "mark", "mark": "m"},
                    {"event": "mark", "mark": ["m"]}, {"event": "media", "media": {"track": ["x"], "payload": 1}},
                    {"event": ["start"]}, {"event": "dtmf", "dtmf": {"digit": {"d": 5}}}):
        await stream.send({**message, "streamSid": STREAM_SID})
    await stream.client.drain(0.3)
    assert stream.client.close_code is None
    assert not stream.communicator.future.done()
    await stream.send({"event": "stop", "streamSid": STREAM_SID, "stop": {}})
    assert await stream.client.wait_closed() == 1000


async def test_a_socket_without_a_valid_start_is_closed(live_demo: Any, twilio: Any, settings: Any) -> None:
    settings.TWILIO_START_TIMEOUT_SECONDS = 0.3
    silent = await open_socket()
    chatty = await open_socket()
    await chatty.communicator.send_to(text_data=json.dumps({"event": "connected", "protocol": "Call"}))
    await chatty.communicator.send_to(text_data=json.dumps({"event": "media", "media": {"payload": ""}}))
    assert await closed_with(silent, 3) == 4408
    assert await closed_with(chatty, 3) == 4408


async def test_the_ringing_call_ends_when_its_stream_never_starts(live_demo: Any, upstream: Any, twilio: Any,
                                                                  settings: Any) -> None:
    settings.TWILIO_START_TIMEOUT_SECONDS = 0.3
    path, call_id = await ringing_call()
    client = await open_socket(path)
    assert await closed_with(client, 3) == 4408
    assert await database_sync_to_async(call_status)(call_id) == Call.Status.ENDED


async def test_pending_sockets_are_capped(live_demo: Any, twilio: Any, settings: Any) -> None:
    settings.TWILIO_MAX_PENDING_STREAMS = 3
    settings.TWILIO_START_TIMEOUT_SECONDS = 30
    held = [await open_socket() for _ in range(3)]
    for client in held:
        assert client.close_code is None
    refused = await open_socket()
    assert await closed_with(refused, 3) == 4429
    # One pending socket goes away: a new one is accepted again.
    await held[0].communicator.disconnect()
    await asyncio.sleep(0.05)
    again = await open_socket()
    await again.drain(0.2)
    assert again.close_code is None
    for client in [*held[1:], again]:
        await client.communicator.disconnect()
