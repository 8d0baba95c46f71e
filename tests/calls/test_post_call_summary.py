"""Every ended call gets one post-call summary and disposition, made by a real Celery worker."""

from __future__ import annotations

import json
from typing import Any

import pytest

from calls import actions
from calls.models import Call, Summary
from realtime.server import response
from tests.calls.conftest import wait_for

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]

SPEC = {"slug": "retail", "root_agent": "authentication", "hash": "b" * 64, "limits": {}, "agents": {}}


def test_ended_call_is_summarized_once_by_the_worker(celery_worker: Any, threaded_realtime_server: Any) -> None:
    server = threaded_realtime_server.server
    threaded_realtime_server.script_text(response(json.dumps(
        {"summary": "Jane returned order 1001; the return was started.", "disposition": "resolved"})))
    requests_before = len(server.responses_requests)
    call = actions.do_start_call(channel=Call.Channel.BROWSER, spec=SPEC)
    actions.do_record_transcript(call.pk, item_id="u1", role="user", text="I want to return order 1001",
                                 agent="returns")
    actions.do_record_transcript(call.pk, item_id="a1", role="assistant", text="Your return is started.",
                                 agent="returns")
    actions.do_end_call(call.pk, "hangup")

    summary = wait_for(lambda: Summary.objects.filter(call=call, kind="post_call").first())
    assert summary is not None, "the worker wrote no summary"
    assert summary.text == "Jane returned order 1001; the return was started."
    assert summary.disposition == "resolved"
    request = server.responses_requests[requests_before]
    assert "I want to return order 1001" in json.dumps(request)
    assert request["text"]["format"]["type"] == "json_schema"

    # Queued again (a duplicate message, a second worker): nothing more is written or asked.
    from calls.tasks import summarize_call

    assert summarize_call.apply_async((call.pk,), ignore_result=False).get(timeout=10) == "exists"
    assert Summary.objects.filter(call=call).count() == 1
    assert len(server.responses_requests) == requests_before + 1


def test_a_call_with_no_words_gets_a_summary_without_the_model(celery_worker: Any,
                                                               threaded_realtime_server: Any) -> None:
    asked = len(threaded_realtime_server.server.responses_requests)
    call = actions.do_start_call(channel=Call.Channel.TWILIO, spec=SPEC)
    actions.do_end_call(call.pk, "caller_hung_up")
    summary = wait_for(lambda: Summary.objects.filter(call=call, kind="post_call").first())
    assert summary is not None and summary.disposition == "no_conversation"
    assert len(threaded_realtime_server.server.responses_requests) == asked


def test_a_summary_claimed_by_another_task_is_left_alone(celery_worker: Any) -> None:
    from calls.tasks import summarize_call

    call = actions.do_start_call(channel=Call.Channel.BROWSER, spec=SPEC)
    actions.do_record_transcript(call.pk, item_id="u1", role="user", text="hello", agent="a")
    Call.objects.filter(pk=call.pk).update(status=Call.Status.ENDED, summary_task_id="another-task")
    assert summarize_call.apply_async((call.pk,), ignore_result=False).get(timeout=10) == "claimed elsewhere"
    assert not Summary.objects.filter(call=call).exists()


def test_unparseable_model_output_is_kept_as_text_with_disposition_other() -> None:
    from calls.tasks import _parse_summary

    assert _parse_summary("The caller asked about stores.") == ("The caller asked about stores.", "other")
    assert _parse_summary('{"summary": "x", "disposition": "made-up"}') == ("x", "other")
