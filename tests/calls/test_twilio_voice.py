"""POST /twilio/voice: signed requests get <Connect><Stream> TwiML with a signed stream token."""

from __future__ import annotations

import logging
import re
from typing import Any
from xml.etree import ElementTree

import pytest
from django.test import Client

from calls.models import Call
from calls.tokens import read_twilio_stream_token
from calls.twilio import compute_signature

AUTH_TOKEN = "twilio-test-auth-token"
PARAMS = {"CallSid": "CA" + "1" * 32, "AccountSid": "AC" + "2" * 32, "From": "+15551234567", "To": "+15557654321",
          "CallStatus": "ringing", "Direction": "inbound"}


@pytest.fixture(autouse=True)
def twilio_settings(settings: Any) -> None:
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.PUBLIC_BASE_URL = "https://cc.example.com"


def post(client: Client, path: str, params: dict[str, str], signature: str | None) -> Any:
    headers = {"HTTP_X_TWILIO_SIGNATURE": signature} if signature is not None else {}
    return client.post(path, params, **headers)


def test_signed_request_gets_connect_stream_twiml(client: Client, demo: Any) -> None:
    path = "/twilio/voice?scenario=retail"
    signature = compute_signature(AUTH_TOKEN, "https://cc.example.com" + path, PARAMS.items())
    response = post(client, path, PARAMS, signature)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    root = ElementTree.fromstring(response.content)
    stream = root.find("./Connect/Stream")
    assert stream is not None
    url = stream.get("url", "")
    match = re.fullmatch(r"wss://cc\.example\.com/twilio/media\?token=(.+)", url)
    assert match, url
    parameters = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert parameters["scenario"] == "retail"
    assert parameters["token"] == match.group(1)
    grant = read_twilio_stream_token(match.group(1))
    call = Call.objects.get(pk=grant.call_id)
    assert (call.status, call.channel, call.caller_id, call.external_id) == (
        "ringing", "twilio", "+15551234567", PARAMS["CallSid"])
    assert call.spec["slug"] == "retail" and call.spec_hash == call.spec["hash"]


def test_known_signature_vector() -> None:
    # Twilio's documented example: this URL, these params and token give this signature.
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234", "From": "+12349013030",
              "To": "+18005551212"}
    assert compute_signature("12345", url, params.items()) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


@pytest.mark.parametrize("signature", [None, "", "bm90IGEgc2lnbmF0dXJl", "tampered"])
def test_bad_or_missing_signature_is_refused(client: Client, demo: Any, signature: str | None,
                                             caplog: Any) -> None:
    if signature == "tampered":
        signature = compute_signature(AUTH_TOKEN, "https://cc.example.com/twilio/voice",
                                      {**PARAMS, "From": "+10000000000"}.items())
    with caplog.at_level(logging.WARNING, logger="calls.views"):
        response = post(client, "/twilio/voice", PARAMS, signature)
    assert response.status_code == 403
    assert not Call.objects.exists()
    assert "twilio voice webhook refused" in caplog.text


def test_without_an_auth_token_nothing_is_accepted(client: Client, demo: Any, settings: Any) -> None:
    settings.TWILIO_AUTH_TOKEN = ""
    signature = compute_signature("", "https://cc.example.com/twilio/voice", PARAMS.items())
    assert post(client, "/twilio/voice", PARAMS, signature).status_code == 403


def test_unknown_scenario_says_sorry_and_hangs_up(client: Client, demo: Any) -> None:
    path = "/twilio/voice?scenario=nope"
    signature = compute_signature(AUTH_TOKEN, "https://cc.example.com" + path, PARAMS.items())
    response = post(client, path, PARAMS, signature)
    assert response.status_code == 200
    root = ElementTree.fromstring(response.content)
    assert root.find("./Hangup") is not None and root.find("./Connect") is None
    assert not Call.objects.exists()
