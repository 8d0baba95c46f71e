"""Admission control: past the worker's call capacity a new call is refused at once, with a reason
the caller hears or sees, and recorded as refused; the calls already running are untouched."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

import pytest
from channels.db import database_sync_to_async

from calls.live import LIVE
from calls.models import Call
from realtime.server import response
from tests.calls.conftest import browser_call
from tests.calls.test_calls_always_end import answer_call, twilio_webhook
from tests.calls.test_twilio_call import AUTH_TOKEN, STREAM_SID, TwilioStream

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def twilio(settings: Any) -> None:
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.PUBLIC_BASE_URL = "https://cc.example.com"


async def last_call() -> Call:
    return await database_sync_to_async(lambda: Call.objects.order_by("-pk").first())()


async def one_live_call(upstream: Any) -> TwilioStream:
    upstream.script(response("Hello caller."))
    stream = TwilioStream(await answer_call())
    await stream.open()
    await stream.client.wait_for(lambda f: isinstance(f, dict) and f.get("event") == "media")
    assert len(LIVE) == 1
    return stream


async def hang_up(stream: TwilioStream) -> None:
    await stream.send({"event": "stop", "streamSid": STREAM_SID, "stop": {}})
    assert await stream.client.wait_closed() == 1000


async def test_a_phone_call_past_capacity_hears_sorry_or_goes_to_overflow(
        live_demo: Any, upstream: Any, twilio: Any, settings: Any) -> None:
    settings.CALL_CAPACITY_PER_WORKER = 1
    running = await one_live_call(upstream)

    twiml = ElementTree.fromstring(await twilio_webhook())
    assert twiml.find("./Connect") is None
    assert "lines are busy" in (twiml.findtext("./Say") or "")
    assert twiml.find("./Hangup") is not None
    refused = await last_call()
    assert (refused.status, refused.end_reason, refused.channel) == (Call.Status.ENDED, "refused_at_capacity",
                                                                       Call.Channel.TWILIO)

    settings.TWILIO_OVERFLOW_NUMBER = "+15550100999"
    twiml = ElementTree.fromstring(await twilio_webhook())
    assert twiml.findtext("./Dial") == "+15550100999"
    assert (await last_call()).end_reason == "refused_at_capacity"

    # The running call did not notice.
    assert running.client.close_code is None and len(LIVE) == 1
    await hang_up(running)
    assert "<Connect>" in await twilio_webhook()  # room again


async def test_a_media_stream_past_capacity_is_closed_and_recorded(
        live_demo: Any, upstream: Any, twilio: Any, settings: Any) -> None:
    """The webhook may run on a worker with room while the stream lands on a full one."""
    late_path = await answer_call()
    late_call = await last_call()
    settings.CALL_CAPACITY_PER_WORKER = 1
    running = await one_live_call(upstream)
    late = TwilioStream(late_path)
    await late.open()
    assert await late.client.wait_closed() == 4503
    refused = await database_sync_to_async(Call.objects.get)(pk=late_call.pk)
    assert (refused.status, refused.end_reason) == (Call.Status.ENDED, "refused_at_capacity")
    assert len(upstream.sessions) == 1  # no upstream session was opened for it
    assert running.client.close_code is None
    await hang_up(running)
    assert len(LIVE) == 0


async def test_a_browser_call_past_capacity_gets_a_message(
        live_demo: Any, upstream: Any, twilio: Any, operator: Any, settings: Any) -> None:
    settings.CALL_CAPACITY_PER_WORKER = 1
    running = await one_live_call(upstream)
    call = await browser_call(operator)
    refused_frame = await call.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "refused")
    assert refused_frame["reason"] == "refused_at_capacity"
    assert "lines are busy" in refused_frame["message"]
    assert await call.wait_closed() == 4503
    refused = await last_call()
    assert (refused.status, refused.end_reason, refused.channel) == (Call.Status.ENDED, "refused_at_capacity",
                                                                       Call.Channel.BROWSER)
    assert refused.user_id == operator.pk
    assert len(upstream.sessions) == 1
    await hang_up(running)
