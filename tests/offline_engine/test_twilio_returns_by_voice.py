"""The demo's retail returns by phone: Twilio Media Streams (real message shapes, mu-law 8 kHz
frames) into the platform, the offline engine upstream, the demo scenario and records as loaddemo
creates them. Greeting -> phone number and date of birth asked and verified -> transfer to returns
-> orders looked up -> return policy checked -> confirmed -> return started. Twice, identically."""

from __future__ import annotations

import re
from typing import Any
from xml.etree import ElementTree

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import AsyncClient

from calls.models import Call
from calls.twilio import compute_signature
from contactcenter.asgi import application
from realtime.server import RealtimeServer
from tests.calls.conftest import CallClient

from .demo_calls import ADA_DETAILS, ADA_PHONE, STREAM_SID, VoiceCall, recorded, server_event_types
from .speech import Caller

pytestmark = pytest.mark.django_db(transaction=True)

AUTH_TOKEN = "twilio-auth-token-offline-tests"
ACCOUNT_SID = "AC" + "e" * 32
UTTERANCES = [
    "Hi, I'd like to return something.",
    ADA_DETAILS,
    "The headphones. They stopped working.",
    "Yes, please.",
]


async def _phone_call(server: RealtimeServer, caller: Caller, call_sid: str) -> tuple[int, list[str]]:
    params = {"CallSid": call_sid, "AccountSid": ACCOUNT_SID, "From": ADA_PHONE, "To": "+15550001111",
              "CallStatus": "ringing", "Direction": "inbound"}
    path = "/twilio/voice?scenario=retail"
    signature = compute_signature(AUTH_TOKEN, "https://cc.example.com" + path, params.items())
    answer = await AsyncClient().post(path, params, headers={"X-Twilio-Signature": signature})
    stream = ElementTree.fromstring(answer.content).find("./Connect/Stream")
    assert stream is not None
    communicator = WebsocketCommunicator(application, re.sub(r"^wss://cc\.example\.com", "", stream.get("url", "")))
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    call = VoiceCall(CallClient(communicator), server, caller, "audio/pcmu", twilio=True)
    await call.send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    await call.send_json({"event": "start", "streamSid": STREAM_SID, "start": {
        "accountSid": ACCOUNT_SID, "streamSid": STREAM_SID, "callSid": call_sid, "tracks": ["inbound"],
        "customParameters": {"scenario": "retail"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
    await call.settle()
    for text in UTTERANCES:
        await call.say(text)
    types = server_event_types(server)
    await call.send_json({"event": "stop", "streamSid": STREAM_SID,
                          "stop": {"accountSid": ACCOUNT_SID, "callSid": call_sid}})
    assert await call.client.wait_closed() == 1000
    call_id = await database_sync_to_async(lambda: Call.objects.get(external_id=call_sid).pk)()
    return call_id, types


async def test_retail_return_by_phone_twice_identically(demo_db: Any, offline_upstream: RealtimeServer,
                                                        caller: Caller, settings: Any) -> None:
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.PUBLIC_BASE_URL = "https://cc.example.com"
    call_id, types = await _phone_call(offline_upstream, caller, "CA" + "1" * 32)
    story = await recorded(call_id)

    tools = [(name, agent, args) for name, agent, args, status in story["tools"] if status == "succeeded"]
    names = [t[0] for t in tools]
    assert tools[0] == ("verify_customer", "authentication", {"phone_number": ADA_PHONE, "date_of_birth": "1985-04-23"})
    assert names[:5] == ["verify_customer", "transfer_to_returns", "lookup_orders", "check_return_policy",
                         "start_return"], story
    assert tools[3][2] == {"order_id": "ORD-10231"}  # the headphones, found from the caller's words
    assert tools[4][2]["order_id"] == "ORD-10231"
    assert names.count("check_return_policy") == 1, "the task ends once the return is started"
    assert story["handoffs"] == [("authentication", "returns", 1)]
    transcript = story["transcript"]
    assert transcript[0][:2] == ("assistant", "authentication")
    assert transcript[0][2].startswith("Hello, thank you for calling Northwind Home.")
    assert "verify your identity" in transcript[2][2] and "date of birth" in transcript[2][2]
    user_lines = [text for role, _, text in transcript if role == "user"]
    assert "return" in user_lines[0].lower() and "headphones" in user_lines[2].lower()
    said = " ".join(text for role, _, text in transcript if role == "assistant")
    assert "Shall I start the return for ORD-10231?" in said
    assert re.search(r"return reference: RMA-[0-9A-F]{8}", said)
    assert story["call"] == [("ended", "caller_hung_up", "returns")]

    # the same audio again (the order is back to delivered): the same calls, words and events
    from demo.models import Order

    await database_sync_to_async(lambda: Order.objects.filter(number="ORD-10231").update(status="delivered"))()
    again_id, types_again = await _phone_call(offline_upstream, caller, "CA" + "2" * 32)
    again = await recorded(again_id)
    strip = lambda s: re.sub(r"RMA-[0-9A-F]{8}", "RMA-?", s)  # noqa: E731 — a fresh reference each time
    assert [(r, a, strip(t)) for r, a, t in again["transcript"]] == [(r, a, strip(t)) for r, a, t in transcript]
    assert [t[:2] for t in again["tools"]] == [t[:2] for t in story["tools"]]
    assert again["handoffs"] == story["handoffs"]
    assert types_again == types
