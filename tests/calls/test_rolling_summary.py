"""A live call's rolling context summary is made by the worker and delivered to the call's group."""

from __future__ import annotations

from typing import Any

import pytest

from calls import actions
from calls.models import Call, Summary
from calls.tasks import SUMMARY_MESSAGE, summarize_context
from realtime.server import response

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]

SPEC = {"slug": "retail", "root_agent": "authentication", "hash": "d" * 64, "limits": {}, "agents": {}}


def test_summary_reaches_the_call_through_the_channel_layer(celery_worker: Any, threaded_realtime_server: Any,
                                                           listen: Any) -> None:
    threaded_realtime_server.script_text(response("Verified caller Jane; wants to return order 1001."))
    call = actions.do_start_call(channel=Call.Channel.BROWSER, spec=SPEC)
    listener = listen(call.pk)
    turns = [{"role": "user", "text": "It's Jane, order 1001", "agent": "authentication"},
             {"role": "assistant", "text": "Thanks Jane, you're verified.", "agent": "authentication"}]
    summarize_context.delay(call.pk, "req-7", turns, "")

    messages = listener.drain(wait_s=10, until=SUMMARY_MESSAGE)
    deliveries = [m for m in messages if m["type"] == SUMMARY_MESSAGE]
    assert deliveries == [{"type": SUMMARY_MESSAGE, "request_id": "req-7",
                           "text": "Verified caller Jane; wants to return order 1001."}]
    assert Summary.objects.get(call=call, kind="rolling").text.startswith("Verified caller Jane")
    request = threaded_realtime_server.server.responses_requests[-1]
    assert "order 1001" in str(request["input"])
