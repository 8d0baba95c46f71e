"""Every action writes its record and publishes exactly one schema-checked, sequence-numbered event."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from calls import actions
from calls.events import EVENT_MODELS, EventSchemaError, check_event
from calls.models import Call, Escalation, HandoffEvent, SessionSegment, Summary, ToolInvocation, TranscriptItem

SPEC = {"slug": "retail", "root_agent": "authentication", "hash": "a" * 64, "limits": {}, "agents": {}}


@pytest.fixture
def call(db: Any) -> Call:
    return actions.do_start_call(channel=Call.Channel.BROWSER, spec=SPEC, caller_id="operator")


def run(capture: Any, do: Any, *args: Any, **kwargs: Any) -> Any:
    with capture(execute=True):
        return do(*args, **kwargs)


def events_of(messages: list[dict[str, Any]]) -> list[str]:
    for message in messages:
        check_event(message)
    return [m["event"]["type"] for m in messages]


def test_each_action_emits_one_event_with_the_next_sequence_number(
    call: Call, listen: Any, django_capture_on_commit_callbacks: Any
) -> None:
    listener = listen(call.pk)
    capture = django_capture_on_commit_callbacks
    run(capture, actions.do_open_session, call.pk, model="gpt-realtime-1.5", agent="authentication")
    run(capture, actions.do_record_transcript, call.pk, item_id="item_1", role="user", text="Hi", agent="authentication")
    run(capture, actions.do_record_tool, call.pk, tool_call_id="fc_1", name="verify_customer", status="started",
        agent="authentication", arguments={"phone_number": "+15551234567"})
    run(capture, actions.do_record_tool, call.pk, tool_call_id="fc_1", name="verify_customer", status="succeeded",
        agent="authentication", result={"verified": True}, duration_ms=12)
    run(capture, actions.do_record_handoff, call.pk, from_agent="authentication", to_agent="returns",
        reason="wants a return", context={"summary": "verified"}, depth=1, duration_ms=40)
    run(capture, actions.do_record_guardrail, call.pk, category="blocked_phrase", text="guaranteed", action="cancelled")
    run(capture, actions.do_record_usage, call.pk, agent="returns",
        usage={"input_tokens": 10, "output_token_details": {"audio_tokens": 5}}, cost=Decimal("0.0012"))
    run(capture, actions.do_record_usage, call.pk, agent="returns",
        usage={"input_tokens": 4, "output_token_details": {"audio_tokens": 1}}, cost=Decimal("0.0003"))
    run(capture, actions.do_record_latency, call.pk, voice_to_voice_ms=700)
    run(capture, actions.do_escalate, call.pk, reason="asked for a person", source="caller")
    run(capture, actions.do_end_call, call.pk, "hangup")

    messages = listener.drain()
    assert events_of(messages) == [
        "session", "transcript", "tool", "tool", "handoff", "guardrail", "usage", "usage", "latency",
        "escalation", "call_ended",
    ]
    # call_started was seq 1 (before the listener joined); then one per action, in order, no gaps.
    assert [m["seq"] for m in messages] == list(range(2, 13))
    assert {m["call_id"] for m in messages} == {call.pk}

    call.refresh_from_db()
    assert call.last_seq == 12
    assert call.status == Call.Status.ENDED and call.end_reason == "hangup"
    assert call.current_agent == "returns"
    assert call.cost == Decimal("0.0015")
    assert call.usage == {"returns": {"input_tokens": 14, "output_token_details": {"audio_tokens": 6}}}
    assert (call.latency_p50_ms, call.latency_p95_ms) == (700, 700)
    tool = ToolInvocation.objects.get(call=call)
    assert (tool.status, tool.arguments, tool.result, tool.duration_ms) == (
        "succeeded", {"phone_number": "+15551234567"}, {"verified": True}, 12)
    assert TranscriptItem.objects.get(call=call).text == "Hi"
    assert HandoffEvent.objects.get(call=call).context == {"summary": "verified"}
    assert SessionSegment.objects.get(call=call).end_reason == "hangup"
    assert Escalation.objects.get(call=call).webhook_status == "none"


def test_ending_twice_publishes_once(call: Call, listen: Any, django_capture_on_commit_callbacks: Any) -> None:
    listener = listen(call.pk)
    assert run(django_capture_on_commit_callbacks, actions.do_end_call, call.pk, "hangup") is True
    assert run(django_capture_on_commit_callbacks, actions.do_end_call, call.pk, "lost") is False
    # Nobody spoke: the post-call summary is written with the end, once, with no task queued.
    assert events_of(listener.drain()) == ["call_ended", "summary"]
    call.refresh_from_db()
    assert call.end_reason == "hangup"
    summary = Summary.objects.get(call=call, kind=Summary.Kind.POST_CALL)
    assert (summary.text, summary.disposition) == (actions.NO_CONVERSATION, "no_conversation")


def test_nothing_is_published_when_the_transaction_rolls_back(call: Call, listen: Any) -> None:
    from django.db import transaction

    listener = listen(call.pk)
    with pytest.raises(RuntimeError), transaction.atomic():
        actions.do_record_transcript(call.pk, item_id="item_x", role="user", text="lost", agent="a")
        raise RuntimeError("rollback")
    assert listener.drain() == []
    assert not TranscriptItem.objects.filter(call=call).exists()


def test_latency_percentiles_follow_the_samples(call: Call) -> None:
    for ms in [100, 200, 300, 400, 1000]:
        p50, p95 = actions.do_record_latency(call.pk, voice_to_voice_ms=ms)
    assert p50 == 300
    assert 880 <= p95 <= 1000


@pytest.mark.parametrize(
    ("envelope", "error"),
    [
        ({"type": "call.event", "call_id": 1, "seq": 1, "event": {"type": "nope", "at": "x"}}, "unknown event type"),
        ({"type": "call.event", "call_id": 1, "seq": 1,
          "event": {"type": "call_ended", "at": "x", "reason": "hangup", "cost": "0"}}, "missing duration_ms"),
        ({"type": "call.event", "call_id": 1, "seq": True,
          "event": {"type": "call_answered", "at": "x", "channel": "twilio"}}, "seq is a bool"),
        ({"type": "call.event", "call_id": 1, "seq": 1,
          "event": {"type": "call_answered", "at": "x", "channel": "twilio", "secret": 1}}, "unexpected secret"),
    ],
)
def test_the_schema_refuses_malformed_events(envelope: dict[str, Any], error: str) -> None:
    with pytest.raises(EventSchemaError, match=error):
        check_event(envelope)


def test_every_event_type_has_a_schema() -> None:
    assert set(EVENT_MODELS) >= {"transcript", "handoff", "tool", "usage", "guardrail", "escalation", "call_ended"}


def test_a_handoff_is_marked_applied_once_and_a_refusal_is_kept(
    call: Call, listen: Any, django_capture_on_commit_callbacks: Any
) -> None:
    capture = django_capture_on_commit_callbacks
    run(capture, actions.do_record_handoff, call.pk, from_agent="authentication", to_agent="returns", depth=1)
    run(capture, actions.do_record_handoff, call.pk, from_agent="returns", to_agent="sales", depth=2)
    listener = listen(call.pk)
    first = run(capture, actions.do_mark_handoff_applied, call.pk, to_agent="returns", depth=1, applied=True,
                applied_ms=35)
    again = run(capture, actions.do_mark_handoff_applied, call.pk, to_agent="returns", depth=1, applied=True,
                applied_ms=50)
    refused = run(capture, actions.do_mark_handoff_applied, call.pk, to_agent="sales", depth=2, applied=False,
                  applied_ms=12, error="cannot_update_voice: no")
    assert first is not None and again is None and refused is not None
    messages = listener.drain()
    assert events_of(messages) == ["handoff_applied", "handoff_applied"]
    assert [m["event"]["applied"] for m in messages] == [True, False]
    rows = list(HandoffEvent.objects.filter(call=call).values_list("to_agent", "applied", "applied_ms", "apply_error"))
    assert rows == [("returns", True, 35, ""), ("sales", False, 12, "cannot_update_voice: no")]
