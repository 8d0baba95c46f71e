"""OpenAI SIP calls are routed by the number dialled: the `To` header of the signed
`realtime.call.incoming` webhook (as the protocol server's incoming call carries it) picks the
scenario whose inbound numbers hold it, after the trunk's scenario header and before
SIP_DEFAULT_SCENARIO; a number that reaches nothing is rejected with the reason logged."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from channels.db import database_sync_to_async

from calls import sip
from calls.models import Call
from demo.loader import CARRIER_NUMBER, RETAIL_NUMBER
from realtime.server import response
from realtime.server.testing import signed_webhook

from .conftest import CALLER, SECRET, post_webhook
from .test_sip_call import finish

pytestmark = pytest.mark.django_db(transaction=True)

UNKNOWN_NUMBER = "+12025550199"


@pytest.fixture
def webhook_secret(settings: Any) -> str:
    settings.OPENAI_WEBHOOK_SECRET = SECRET
    settings.SIP_DEFAULT_SCENARIO = ""
    settings.TWILIO_DEFAULT_SCENARIO = ""
    return SECRET


async def answered_scenario(upstream: Any, sip_call: Any) -> str:
    """Post the call's signed webhook; the scenario of the accepted call (the call then ends)."""
    answer = await post_webhook(*signed_webhook(sip_call.webhook_event(), SECRET))
    assert answer.status_code == 200 and answer.json()["status"] == "accepted", answer.content
    call = await database_sync_to_async(Call.objects.get)(pk=answer.json()["call"])
    assert sip_call.state == "accepted" and call.external_id == sip_call.call_id
    await sip_call.wait_sideband()
    await sip_call.hang_up()
    await finish()
    return str(call.spec["slug"])


def to_header(sip_call: Any) -> str:
    return next(h["value"] for h in sip_call.webhook_event()["data"]["sip_headers"] if h["name"] == "To")


@pytest.mark.parametrize(("to", "slug"), [(RETAIL_NUMBER, "retail"), (CARRIER_NUMBER, "carrier")])
async def test_the_dialled_number_picks_the_scenario(live_demo: Any, upstream: Any, webhook_secret: str,
                                                     to: str, slug: str) -> None:
    upstream.script(response("Hello."))
    sip_call = upstream.incoming_sip_call(from_=CALLER, to=to)
    assert to_header(sip_call) == f"<sip:{to}@sip.api.openai.com>"  # the number as a SIP URI, as OpenAI posts it
    assert await answered_scenario(upstream, sip_call) == slug


async def test_the_scenario_header_beats_the_number(live_demo: Any, upstream: Any, webhook_secret: str,
                                                    settings: Any) -> None:
    settings.SIP_DEFAULT_SCENARIO = "retail"
    upstream.script(response("Hello."))
    sip_call = upstream.incoming_sip_call(from_=CALLER, to=RETAIL_NUMBER, headers={"X-Scenario": "carrier"})
    assert await answered_scenario(upstream, sip_call) == "carrier"


async def test_the_number_beats_the_default(live_demo: Any, upstream: Any, webhook_secret: str,
                                            settings: Any) -> None:
    settings.SIP_DEFAULT_SCENARIO = "retail"
    upstream.script(response("Hello."))
    sip_call = upstream.incoming_sip_call(from_=CALLER, to=CARRIER_NUMBER)
    assert await answered_scenario(upstream, sip_call) == "carrier"


async def test_an_unknown_number_goes_to_the_default(live_demo: Any, upstream: Any, webhook_secret: str,
                                                     settings: Any) -> None:
    settings.SIP_DEFAULT_SCENARIO = "carrier"
    upstream.script(response("Hello."))
    sip_call = upstream.incoming_sip_call(from_=CALLER, to=UNKNOWN_NUMBER)
    assert await answered_scenario(upstream, sip_call) == "carrier"


async def test_an_unknown_number_without_a_default_is_rejected(live_demo: Any, upstream: Any, webhook_secret: str,
                                                               caplog: Any) -> None:
    sip_call = upstream.incoming_sip_call(from_=CALLER, to=UNKNOWN_NUMBER)
    with caplog.at_level(logging.WARNING, logger="calls.sip"):
        answer = await post_webhook(*signed_webhook(sip_call.webhook_event(), SECRET))
    assert answer.status_code == 200 and answer.json()["status"] == "not_accepted"
    assert (sip_call.state, sip_call.reject_status) == ("rejected", sip.SIP_NOT_FOUND)
    assert [action for action, _ in sip_call.requests] == ["reject"]
    assert f"the dialled number {UNKNOWN_NUMBER} reaches no scenario and no default scenario is set" in caplog.text
    assert not await database_sync_to_async(Call.objects.exists)()
    assert not sip.RUNNING


def test_scenario_for_reads_the_to_header(live_demo: Any, settings: Any) -> None:
    settings.SIP_DEFAULT_SCENARIO = ""
    settings.TWILIO_DEFAULT_SCENARIO = ""
    headers = [("From", f"<sip:{CALLER}@pstn.example.net>"), ("to", f"<sip:{CARRIER_NUMBER}@sip.example.com>")]
    assert sip.scenario_for(headers).slug == "carrier"
    assert sip.scenario_for([*headers, ("X-Scenario", "retail")]).slug == "retail"
    assert sip.scenario_for([("To", "<sip:proj_abc@sip.api.openai.com>")]).slug == ""
