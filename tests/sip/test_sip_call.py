"""OpenAI SIP calls end to end: a signed `realtime.call.incoming` webhook is verified, the call is
accepted on the protocol server with the compiled session, and the engine runs on the sideband
(by call_id, no audio) through a tool call and a handoff, all recorded; bad signatures, replays and
unknown scenarios are refused or rejected with a logged reason."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from calls import sip
from calls.models import Call, HandoffEvent, SessionSegment, ToolInvocation, TranscriptItem, call_group
from calls.scenarios import compile_for_call
from realtime.server import function_call, response
from realtime.server.testing import signed_webhook, speech_then_silence
from tests.calls.conftest import transfer_arguments

from .conftest import CALLER, post_webhook

pytestmark = pytest.mark.django_db(transaction=True)

async def rows(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await database_sync_to_async(predicate)()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


async def finish(timeout: float = 10.0) -> None:
    """Wait for every SIP call of this process to end (its records written)."""
    await sip.wait_for_calls(timeout)
    assert not sip.RUNNING


async def test_sip_call_runs_a_tool_and_a_handoff_on_the_sideband(live_demo: Any, upstream: Any,
                                                                   webhook_secret: str) -> None:
    _, spec = await database_sync_to_async(compile_for_call)("retail")
    upstream.script(
        response("Hello, the store."),
        response(function_call("verify_customer", {"phone_number": CALLER, "date_of_birth": "1985-04-23"})),
        response(function_call("transfer_to_returns", transfer_arguments(spec, "authentication", "returns"))),
        response("Returns here. Which order?"),
    )
    upstream.add_transcripts("Ada Lovelace, born the twenty third of April eighty five")
    sip_call = upstream.incoming_sip_call(from_=CALLER)

    answer = await post_webhook(*signed_webhook(sip_call.webhook_event(), webhook_secret))
    assert answer.status_code == 200, answer.content
    assert answer.json()["status"] == "accepted"
    call_pk = answer.json()["call"]

    # Accepted with the root agent's compiled session; the audio formats are the provider's.
    assert sip_call.state == "accepted"
    accepted = sip_call.accepted_session
    assert accepted is not None
    assert accepted["model"] == (spec.root.model or settings.REALTIME_DEFAULT_MODEL)
    assert accepted["instructions"].startswith(spec.root.instructions[:40])
    assert {t["name"] for t in accepted["tools"]} >= {"verify_customer", "transfer_to_returns"}
    assert "format" not in accepted["audio"]["input"] and "format" not in accepted["audio"]["output"]

    session = await sip_call.wait_sideband()
    await rows(lambda: TranscriptItem.objects.filter(call_id=call_pk, text="Hello, the store.").exists())
    await sip_call.caller_audio(speech_then_silence(400, 700))  # the phone leg's audio, straight to the provider

    assert await rows(lambda: HandoffEvent.objects.filter(call_id=call_pk, to_agent="returns").exists())
    assert await rows(lambda: TranscriptItem.objects.filter(call_id=call_pk, text="Returns here. Which order?").exists())
    sent = [e["type"] for e in session.client_events]
    assert "input_audio_buffer.append" not in sent  # the sideband carries no audio
    assert "function_call_output" in json.dumps(session.client_events)
    assert all("format" not in (e["session"].get("audio") or {}).get("input", {})
               for e in session.client_events if e["type"] == "session.update")

    await sip_call.hang_up()
    await finish()
    assert sip_call.ended_by == "caller"  # nothing hung up a call the caller already left

    call = await database_sync_to_async(Call.objects.get)(pk=call_pk)
    assert (call.channel, call.caller_id, call.external_id, call.status, call.end_reason) == (
        "sip", CALLER, sip_call.call_id, "ended", "caller_hung_up")
    assert call.current_agent == "returns" and call.cost > 0
    tools = await database_sync_to_async(
        lambda: set(ToolInvocation.objects.filter(call_id=call_pk).values_list("name", "status")))()
    assert {("verify_customer", "succeeded"), ("transfer_to_returns", "succeeded")} <= tools
    user_text = await database_sync_to_async(lambda: list(
        TranscriptItem.objects.filter(call_id=call_pk, role="user").values_list("text", flat=True)))()
    assert user_text == ["Ada Lovelace, born the twenty third of April eighty five"]
    assert await database_sync_to_async(SessionSegment.objects.filter(call_id=call_pk).count)() == 1


async def test_a_hangup_through_the_channel_group_ends_the_phone_call(live_demo: Any, upstream: Any,
                                                                       webhook_secret: str) -> None:
    upstream.script(response("Hello."))
    sip_call = upstream.incoming_sip_call(from_=CALLER)
    answer = await post_webhook(*signed_webhook(sip_call.webhook_event(), webhook_secret))
    call_pk = answer.json()["call"]
    await sip_call.wait_sideband()
    await rows(lambda: Call.objects.filter(pk=call_pk).exclude(consumer_channel="").exists())

    await get_channel_layer().group_send(call_group(call_pk), {"type": "call.hangup", "reason": "ended_by_supervisor"})
    await finish()
    await sip_call.wait_state("ended")
    assert sip_call.ended_by == "api" and sip_call.requests[-1][0] == "hangup"
    call = await database_sync_to_async(Call.objects.get)(pk=call_pk)
    assert (call.status, call.end_reason) == ("ended", "ended_by_supervisor")


@pytest.mark.parametrize("case", ["tampered", "wrong_secret", "no_headers", "stale", "future", "no_secret"])
async def test_a_bad_signature_is_refused_and_nothing_happens(live_demo: Any, upstream: Any, webhook_secret: str,
                                                              settings: Any, caplog: Any, case: str) -> None:
    sip_call = upstream.incoming_sip_call(from_=CALLER)
    event = sip_call.webhook_event()
    now = int(time.time())
    body, headers = signed_webhook(event, webhook_secret,
                                   timestamp={"stale": now - 600, "future": now + 600}.get(case))
    expected = 401
    if case == "tampered":
        body = body.replace(CALLER.encode(), b"+15550000000")
    elif case == "wrong_secret":
        body, headers = signed_webhook(event, "whsec_" + "d3Jvbmctc2VjcmV0")
    elif case == "no_headers":
        headers, expected = {}, 400
    elif case == "no_secret":
        settings.OPENAI_WEBHOOK_SECRET, expected = "", 503
    with caplog.at_level(logging.WARNING, logger="calls.sip_views"):
        answer = await post_webhook(body, headers)
    assert answer.status_code == expected
    assert "OpenAI webhook refused" in caplog.text
    assert webhook_secret not in caplog.text and webhook_secret not in answer.content.decode()
    assert sip_call.state == "incoming" and sip_call.requests == []
    assert not await database_sync_to_async(Call.objects.exists)()


async def test_a_replayed_webhook_id_is_processed_once(live_demo: Any, upstream: Any, webhook_secret: str) -> None:
    upstream.script(response("Hello."))
    sip_call = upstream.incoming_sip_call(from_=CALLER)
    body, headers = signed_webhook(sip_call.webhook_event(), webhook_secret)
    first = await post_webhook(body, headers)
    again = await post_webhook(body, headers)
    assert (first.json()["status"], again.json()["status"]) == ("accepted", "duplicate")
    assert [action for action, _ in sip_call.requests] == ["accept"]
    assert await database_sync_to_async(Call.objects.count)() == 1
    await sip_call.wait_sideband()
    await sip_call.hang_up()
    await finish()


async def test_an_unknown_scenario_rejects_the_call(live_demo: Any, upstream: Any, webhook_secret: str,
                                                     caplog: Any) -> None:
    sip_call = upstream.incoming_sip_call(from_=CALLER, headers={"X-Scenario": "no-such-line"})
    with caplog.at_level(logging.WARNING, logger="calls.sip"):
        answer = await post_webhook(*signed_webhook(sip_call.webhook_event(), webhook_secret))
    assert answer.status_code == 200 and answer.json()["status"] == "not_accepted"
    assert (sip_call.state, sip_call.reject_status) == ("rejected", 404)
    assert "no scenario 'no-such-line'" in caplog.text
    assert not await database_sync_to_async(Call.objects.exists)()
    assert not sip.RUNNING


def test_caller_number_from_the_from_header() -> None:
    assert sip.caller_number('"Ada" <sip:+447700900123@pstn.example.net>;tag=abc') == "+447700900123"
    assert sip.caller_number("<tel:+15551234567>") == "+15551234567"
    assert sip.caller_number("sip:alice@example.com") == "alice"


async def test_a_dropped_sideband_rejoins_the_same_call(live_demo: Any, upstream: Any, webhook_secret: str) -> None:
    upstream.script(response("Hello."), response("Still here."))
    sip_call = upstream.incoming_sip_call(from_=CALLER)
    answer = await post_webhook(*signed_webhook(sip_call.webhook_event(), webhook_secret))
    call_pk = answer.json()["call"]
    first = await sip_call.wait_sideband()
    await rows(lambda: TranscriptItem.objects.filter(call_id=call_pk, text="Hello.").exists())

    await first.drop()  # a network failure, not a hang-up: the engine joins the call again by call_id
    assert await rows(lambda: SessionSegment.objects.filter(call_id=call_pk).count() == 2)
    assert len(sip_call.sessions) == 2 and sip_call.state == "accepted"
    upstream.add_transcripts("Are you still there?")
    await sip_call.caller_audio(speech_then_silence(400, 700))
    assert await rows(lambda: TranscriptItem.objects.filter(call_id=call_pk, text="Still here.").exists())

    await sip_call.hang_up()
    await finish()
    call = await database_sync_to_async(Call.objects.get)(pk=call_pk)
    assert (call.status, call.end_reason) == ("ended", "caller_hung_up")


async def test_a_call_gone_before_accept_ends_its_record(live_demo: Any, upstream: Any, webhook_secret: str,
                                                          caplog: Any) -> None:
    sip_call = upstream.incoming_sip_call(from_=CALLER)
    await sip_call._end("caller")  # the caller hung up while the webhook was on its way
    with caplog.at_level(logging.WARNING, logger="calls.sip"):
        answer = await post_webhook(*signed_webhook(sip_call.webhook_event(), webhook_secret))
    assert answer.status_code == 200 and answer.json()["status"] == "not_accepted"
    assert "accept failed: BadRequestError" in caplog.text
    call = await database_sync_to_async(Call.objects.get)(external_id=sip_call.call_id)
    assert (call.channel, call.status, call.end_reason) == ("sip", "ended", "accept_failed")
    assert not sip.RUNNING
