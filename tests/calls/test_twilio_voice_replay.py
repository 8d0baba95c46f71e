"""POST /twilio/voice replayed: a captured signed request never opens a second call (idempotent on
the channel and CallSid), and the webhook is rate-limited per caller number and in all."""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from xml.etree import ElementTree

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client

from calls import actions
from calls.models import Call
from calls.tokens import read_twilio_stream_token
from calls.twilio import compute_signature

AUTH_TOKEN = "twilio-test-auth-token"
BASE = "https://cc.example.com"
PATH = "/twilio/voice?scenario=retail"


@pytest.fixture(autouse=True)
def twilio_settings(settings: Any) -> None:
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.PUBLIC_BASE_URL = BASE


def signed_form(call_sid: str, caller: str = "+15551234567") -> tuple[dict[str, str], str]:
    params = {"CallSid": call_sid, "AccountSid": "AC" + "2" * 32, "From": caller, "To": "+15557654321",
              "CallStatus": "ringing", "Direction": "inbound"}
    return params, compute_signature(AUTH_TOKEN, BASE + PATH, params.items())


def new_sid() -> str:
    return "CA" + secrets.token_hex(16)


def replay(params: dict[str, str], signature: str) -> Any:
    return Client().post(PATH, params, HTTP_X_TWILIO_SIGNATURE=signature)


def streamed_call(response: Any) -> int:
    assert response.status_code == 200, response.content
    stream = ElementTree.fromstring(response.content).find("./Connect/Stream")
    assert stream is not None, response.content
    return read_twilio_stream_token(stream.get("url", "").split("token=", 1)[1]).call_id


def is_sorry(response: Any) -> bool:
    root = ElementTree.fromstring(response.content)
    return response.status_code == 200 and [child.tag for child in root] == ["Say", "Hangup"]


def test_a_replayed_request_never_opens_a_second_call(demo: Any) -> None:
    params, signature = signed_form(new_sid())
    first = streamed_call(replay(params, signature))
    # While it still rings (Twilio has not connected the stream yet), a repeat gets the same call.
    assert streamed_call(replay(params, signature)) == first
    assert Call.objects.count() == 1

    assert actions.do_answer_call(first, consumer_channel="twilio-media")  # the stream connected
    for _ in range(3):
        refused = replay(params, signature)
        assert refused.status_code == 409, refused.content
        assert b"<Stream" not in refused.content and b"token" not in refused.content
    assert Call.objects.count() == 1

    actions.do_end_call(first, reason="caller_hung_up")
    assert replay(params, signature).status_code == 409
    assert Call.objects.count() == 1


def test_a_call_that_rang_too_long_is_not_answered_again(demo: Any, settings: Any) -> None:
    params, signature = signed_form(new_sid())
    first = streamed_call(replay(params, signature))
    Call.objects.filter(pk=first).update(started_at=Call.objects.get(pk=first).started_at.replace(year=2000))
    assert replay(params, signature).status_code == 409
    assert Call.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_replays_open_one_call(demo: Any) -> None:
    params, signature = signed_form(new_sid())

    def post(_: int) -> int:
        try:
            return replay(params, signature).status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(post, range(12)))
    assert Call.objects.filter(external_id=params["CallSid"]).count() == 1
    assert statuses.count(200) >= 1 and set(statuses) <= {200, 409}, statuses


def test_a_request_without_call_sid_is_refused(demo: Any) -> None:
    params, _ = signed_form("")
    signature = compute_signature(AUTH_TOKEN, BASE + PATH, params.items())
    response = replay(params, signature)
    assert response.status_code == 400
    assert not Call.objects.exists()


def test_the_webhook_is_rate_limited_per_caller_number(demo: Any, settings: Any) -> None:
    settings.TWILIO_VOICE_CALLER_RATE_LIMIT = 2
    settings.TWILIO_VOICE_RATE_LIMIT = 1000
    caller, other = f"+1555{secrets.randbelow(10**7):07d}", f"+1556{secrets.randbelow(10**7):07d}"
    cache.delete_many([f"twilio:voice:caller:{caller}", f"twilio:voice:caller:{other}", "twilio:voice:all"])
    try:
        answered = [streamed_call(replay(*signed_form(new_sid(), caller))) for _ in range(2)]
        assert len(set(answered)) == 2
        limited = replay(*signed_form(new_sid(), caller))
        assert is_sorry(limited)
        assert Call.objects.count() == 2
        streamed_call(replay(*signed_form(new_sid(), other)))  # another caller still gets through
        assert Call.objects.count() == 3
    finally:
        cache.delete_many([f"twilio:voice:caller:{caller}", f"twilio:voice:caller:{other}", "twilio:voice:all"])


def test_the_webhook_is_rate_limited_in_all(demo: Any, settings: Any) -> None:
    settings.TWILIO_VOICE_RATE_LIMIT = 3
    cache.delete("twilio:voice:all")
    try:
        for _ in range(3):
            streamed_call(replay(*signed_form(new_sid(), f"+1555{secrets.randbelow(10**7):07d}")))
        assert is_sorry(replay(*signed_form(new_sid(), f"+1555{secrets.randbelow(10**7):07d}")))
        assert Call.objects.count() == 3
    finally:
        cache.delete("twilio:voice:all")


def test_unsigned_requests_do_not_use_up_the_limit(demo: Any, settings: Any) -> None:
    """An outsider's flood of unsigned requests is refused before it counts, so real callers keep
    getting through."""
    settings.TWILIO_VOICE_RATE_LIMIT = 2
    cache.delete("twilio:voice:all")
    try:
        params, _ = signed_form(new_sid())
        for _ in range(5):
            assert replay(params, "forged").status_code == 403
        streamed_call(replay(*signed_form(new_sid())))
    finally:
        cache.delete("twilio:voice:all")
