"""POST /openai/webhook with validly signed but malformed events: each is refused with a 400 and
its reason, and its webhook-id is released, so OpenAI's retry of that delivery is processed. The
trunk's scenario header can be limited to an allow-list."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
from channels.db import database_sync_to_async

from calls import sip
from calls.models import Call
from realtime.server import response
from realtime.server.testing import signed_webhook

from .conftest import CALLER, post_webhook

pytestmark = pytest.mark.django_db(transaction=True)

def malformed(event: dict[str, Any], case: str) -> dict[str, Any]:
    bad = copy.deepcopy(event)
    if case == "no_data":
        del bad["data"]
    elif case == "data_not_object":
        bad["data"] = ["call"]
    elif case == "no_call_id":
        del bad["data"]["call_id"]
    elif case == "call_id_not_text":
        bad["data"]["call_id"] = {"id": 1}
    elif case == "call_id_path":
        bad["data"]["call_id"] = "../../calls/other/hangup"
    elif case == "headers_not_list":
        bad["data"]["sip_headers"] = "From: +1555"
    elif case == "header_not_object":
        bad["data"]["sip_headers"] = [["From", CALLER]]
    elif case == "header_value_not_text":
        bad["data"]["sip_headers"] = [{"name": "From", "value": 5}]
    elif case == "too_many_headers":
        bad["data"]["sip_headers"] = [{"name": "X-Pad", "value": "x"}] * 1000
    return bad


@pytest.mark.parametrize("case", ["no_data", "data_not_object", "no_call_id", "call_id_not_text", "call_id_path",
                                  "headers_not_list", "header_not_object", "header_value_not_text",
                                  "too_many_headers"])
async def test_a_malformed_event_is_refused_each_time(live_demo: Any, upstream: Any, webhook_secret: str,
                                                      caplog: Any, case: str) -> None:
    sip_call = upstream.incoming_sip_call(from_=CALLER)
    body, headers = signed_webhook(malformed(sip_call.webhook_event(), case), webhook_secret)
    with caplog.at_level(logging.WARNING, logger="calls.sip_views"):
        refused = await post_webhook(body, headers)
        again = await post_webhook(body, headers)  # the same delivery retried: refused again, not "duplicate"
    assert (refused.status_code, again.status_code) == (400, 400), (refused.content, again.content)
    assert "refused (400)" in caplog.text
    assert sip_call.requests == [] and not await database_sync_to_async(Call.objects.exists)()


async def test_a_refused_delivery_is_released_for_its_retry(live_demo: Any, upstream: Any,
                                                            webhook_secret: str) -> None:
    upstream.script(response("Hello."))
    sip_call = upstream.incoming_sip_call(from_=CALLER)
    good = sip_call.webhook_event()
    body, headers = signed_webhook(malformed(good, "headers_not_list"), webhook_secret)
    assert (await post_webhook(body, headers)).status_code == 400
    # The webhook-id was released: a good delivery under the same id is processed.
    body, headers = signed_webhook(good, webhook_secret, webhook_id=headers["webhook-id"])
    accepted = await post_webhook(body, headers)
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted", accepted.content
    await sip_call.wait_sideband()
    await sip_call.hang_up()
    await sip.wait_for_calls(10)


async def test_other_event_types_are_ignored_once(live_demo: Any, upstream: Any, webhook_secret: str) -> None:
    event = {"id": "evt_x", "object": "event", "created_at": 0, "type": "batch.completed", "data": {"id": "b"}}
    body, headers = signed_webhook(event, webhook_secret)
    assert (await post_webhook(body, headers)).json()["status"] == "ignored"
    assert (await post_webhook(body, headers)).json()["status"] == "duplicate"


async def test_the_scenario_header_is_limited_to_the_allow_list(live_demo: Any, upstream: Any, webhook_secret: str,
                                                                settings: Any, caplog: Any) -> None:
    settings.SIP_SCENARIO_HEADER_ALLOWED = ["retail"]
    forged = upstream.incoming_sip_call(from_=CALLER, headers={"X-Scenario": "carrier"})
    with caplog.at_level(logging.WARNING, logger="calls.sip"):
        answer = await post_webhook(*signed_webhook(forged.webhook_event(), webhook_secret))
    assert answer.json()["status"] == "not_accepted"
    assert (forged.state, forged.reject_status) == ("rejected", 404)
    assert "X-Scenario header names 'carrier', which SIP_SCENARIO_HEADER_ALLOWED does not list" in caplog.text
    assert not await database_sync_to_async(Call.objects.exists)()

    upstream.script(response("Hello."))
    listed = upstream.incoming_sip_call(from_=CALLER, headers={"X-Scenario": "retail"})
    answer = await post_webhook(*signed_webhook(listed.webhook_event(), webhook_secret))
    assert answer.json()["status"] == "accepted"
    call = await database_sync_to_async(Call.objects.get)()
    assert call.scenario_slug == "retail"
    await listed.wait_sideband()
    await listed.hang_up()
    await sip.wait_for_calls(10)
