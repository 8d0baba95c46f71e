"""A whole phone call over Twilio Media Streams: real message shapes, mu-law audio both ways,
marks as the playback tracker, DTMF, a tool call and a handoff, all recorded."""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from xml.etree import ElementTree

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import AsyncClient

from calls.models import Call, HandoffEvent, ToolInvocation, TranscriptItem
from calls.scenarios import compile_for_call
from calls.twilio import compute_signature
from contactcenter.asgi import application
from realtime.server import function_call, response
from tests.calls.conftest import CallClient, speech_frames, transfer_arguments

pytestmark = pytest.mark.django_db(transaction=True)

AUTH_TOKEN = "twilio-auth-token-for-tests"
CALL_SID = "CA" + "a" * 32
STREAM_SID = "MZ" + "b" * 32
ACCOUNT_SID = "AC" + "c" * 32


@pytest.fixture
def twilio(settings: Any) -> None:
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.PUBLIC_BASE_URL = "https://cc.example.com"


async def answer_call(scenario: str = "retail") -> str:
    """Twilio's webhook request; returns the media stream path with its token."""
    params = {"CallSid": CALL_SID, "AccountSid": ACCOUNT_SID, "From": "+447700900123", "To": "+15550001111",
              "CallStatus": "ringing", "Direction": "inbound"}
    path = f"/twilio/voice?scenario={scenario}"
    signature = compute_signature(AUTH_TOKEN, "https://cc.example.com" + path, params.items())
    response_ = await AsyncClient().post(path, params, headers={"X-Twilio-Signature": signature})
    assert response_.status_code == 200
    stream = ElementTree.fromstring(response_.content).find("./Connect/Stream")
    assert stream is not None
    return re.sub(r"^wss://cc\.example\.com", "", stream.get("url", ""))


def start_message(token: str = "", sequence: int = 1) -> dict[str, Any]:
    parameters = {"scenario": "retail"} | ({"token": token} if token else {})
    return {
        "event": "start", "sequenceNumber": str(sequence), "streamSid": STREAM_SID,
        "start": {"accountSid": ACCOUNT_SID, "streamSid": STREAM_SID, "callSid": CALL_SID,
                  "tracks": ["inbound"], "customParameters": parameters,
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}},
    }


class TwilioStream:
    """Plays Twilio's side of a Media Stream."""

    def __init__(self, path: str) -> None:
        self.communicator = WebsocketCommunicator(application, path)
        self.client = CallClient(self.communicator)
        self.sequence = 0
        self.chunk = 0

    async def send(self, message: dict[str, Any]) -> None:
        self.sequence += 1
        await self.communicator.send_to(text_data=json.dumps({**message, "sequenceNumber": str(self.sequence)}))

    async def open(self, token_in_start: str = "") -> None:
        connected, _ = await self.communicator.connect(timeout=10)
        assert connected
        await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self.send(start_message(token_in_start))

    async def media(self, payload: bytes) -> None:
        self.chunk += 1
        await self.send({"event": "media", "streamSid": STREAM_SID, "media": {
            "track": "inbound", "chunk": str(self.chunk), "timestamp": str(self.chunk * 20),
            "payload": base64.b64encode(payload).decode()}})

    async def ack_marks(self) -> list[str]:
        names = [f["mark"]["name"] for f in self.client.texts() if f.get("event") == "mark"]
        for name in names:
            await self.send({"event": "mark", "streamSid": STREAM_SID, "mark": {"name": name}})
        return names


async def test_phone_call_runs_through_a_tool_and_a_handoff(live_demo: Any, upstream: Any, twilio: Any) -> None:
    _, spec = await database_sync_to_async(compile_for_call)("retail")
    upstream.script(
        response("Hello, you're through to the store."),
        response(function_call("verify_customer", {"phone_number": "+447700900123", "date_of_birth": "1985-04-23"})),
        response(function_call("transfer_to_returns", transfer_arguments(spec, "authentication", "returns"))),
        response("You're through to returns. Which order is it?"),
        response("Thanks, you pressed one."),
    )
    upstream.add_transcripts("Ada Lovelace, born the twenty third of April eighty five")
    stream = TwilioStream(await answer_call())
    await stream.open()

    media = await stream.client.wait_for(lambda f: isinstance(f, dict) and f.get("event") == "media")
    assert media["streamSid"] == STREAM_SID
    assert len(base64.b64decode(media["media"]["payload"])) > 0
    await stream.client.wait_for(lambda f: isinstance(f, dict) and f.get("event") == "mark")
    await stream.client.drain(0.5)
    assert await stream.ack_marks()

    session = upstream.sessions[0]
    assert session.client_events[0]["session"]["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert session.client_events[0]["session"]["audio"]["output"]["format"] == {"type": "audio/pcmu"}

    for frame in speech_frames(fmt="audio/pcmu"):
        await stream.media(frame)
    call_id = await database_sync_to_async(lambda: Call.objects.get(external_id=CALL_SID).pk)()

    async def wait_rows(predicate: Any, timeout: float = 10.0) -> None:

        for _ in range(int(timeout / 0.1)):
            if await database_sync_to_async(predicate)():
                return
            await stream.client.pump(0.1)
        raise AssertionError("records never appeared")

    await wait_rows(lambda: HandoffEvent.objects.filter(call_id=call_id, to_agent="returns").exists())
    await wait_rows(lambda: TranscriptItem.objects.filter(
        call_id=call_id, text="You're through to returns. Which order is it?").exists())

    await stream.send({"event": "dtmf", "streamSid": STREAM_SID, "dtmf": {"track": "inbound_track", "digit": "1"}})
    await wait_rows(lambda: TranscriptItem.objects.filter(call_id=call_id, text__contains="pressed 1").exists())
    await wait_rows(lambda: TranscriptItem.objects.filter(call_id=call_id, text="Thanks, you pressed one.").exists())

    await stream.send({"event": "stop", "streamSid": STREAM_SID,
                       "stop": {"accountSid": ACCOUNT_SID, "callSid": CALL_SID}})
    assert await stream.client.wait_closed() == 1000

    call = await database_sync_to_async(Call.objects.get)(pk=call_id)
    assert (call.status, call.end_reason, call.channel, call.caller_id, call.codec) == (
        "ended", "caller_hung_up", "twilio", "+447700900123", "pcmu")
    assert call.cost > 0 and "authentication" in call.usage
    tools = await database_sync_to_async(
        lambda: set(ToolInvocation.objects.filter(call_id=call_id).values_list("name", "status")))()
    assert {("verify_customer", "succeeded"), ("transfer_to_returns", "succeeded")} <= tools
    user_text = await database_sync_to_async(lambda: list(
        TranscriptItem.objects.filter(call_id=call_id, role="user").values_list("text", flat=True)))()
    assert "Ada Lovelace, born the twenty third of April eighty five" in user_text
