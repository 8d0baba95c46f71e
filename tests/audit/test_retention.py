"""Retention removes exactly the caller's words of calls past RETENTION_DAYS and keeps the audit
metadata; it is idempotent, logged, run by the beat task and by a management command."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from audit.retention import apply_retention
from calls import actions
from calls.models import (
    Call,
    CallEvent,
    Escalation,
    GuardrailEvent,
    HandoffEvent,
    Summary,
    ToolInvocation,
    TranscriptItem,
)
from tests.agents.conftest import make_tool

SPEC = {"slug": "shop", "root_agent": "front", "hash": "c" * 64, "limits": {"max_handoff_depth": 6}, "agents": {}}


def full_call(caller: str, *, ended_days_ago: float | None) -> Call:
    """A call with everything a call records, through the actions."""
    call = actions.do_start_call(channel=Call.Channel.BROWSER, spec=SPEC, caller_id=caller)
    actions.do_record_transcript(call.pk, item_id="u1", role="user", text=f"My phone is {caller}", agent="front")
    actions.do_record_transcript(call.pk, item_id="a1", role="assistant", text="Thanks, one moment.", agent="front")
    actions.do_record_tool(call.pk, tool_call_id="t1", name="verify_customer", status="succeeded", agent="front",
                           arguments={"phone": caller, "date_of_birth": "1985-04-23", "channel": "voice"},
                           result={"verified": True})
    actions.do_record_tool(call.pk, tool_call_id="t2", name="lookup_orders", status="succeeded", agent="front",
                           arguments={"order": "ORD-12345"}, result={"orders": 1})
    actions.do_record_tool(call.pk, tool_call_id="t3", name="transfer_to_billing", status="succeeded", agent="front",
                           arguments={"reason": "bill", "conversation_summary": f"{caller} wants a refund"})
    actions.do_record_tool(call.pk, tool_call_id="t4", name="retired_tool", status="failed", agent="front",
                           arguments={"note": "x"})
    actions.do_record_handoff(call.pk, from_agent="front", to_agent="billing", reason="refund request", depth=1,
                              context={"summary": f"{caller} wants a refund", "fields": {"order_id": "ORD-12345"}})
    actions.do_record_guardrail(call.pk, category="blocked_phrase", text="we guarantee", action="withdrawn",
                                agent="billing")
    actions.do_escalate(call.pk, reason="caller asked for a manager", source="caller", agent="billing")
    actions.do_record_usage(call.pk, agent="front", usage={"input_tokens": 10}, cost=Decimal("0.25"))
    actions.do_record_summary(call.pk, kind="rolling", text=f"{caller} asked for a refund")
    if ended_days_ago is not None:
        actions.do_end_call(call.pk, "caller_hung_up")
        actions.do_record_summary(call.pk, kind="post_call", text=f"{caller} got a refund", disposition="refund")
        Call.objects.filter(pk=call.pk).update(ended_at=timezone.now() - dt.timedelta(days=ended_days_ago))
    return call


@pytest.fixture
def calls(db: Any) -> dict[str, Call]:
    make_tool("verify_customer", redact_arguments=["phone", "date_of_birth"])
    make_tool("lookup_orders")  # keeps its arguments
    return {"old": full_call("+447700900123", ended_days_ago=40), "recent": full_call("+447700900456", ended_days_ago=10),
            "live": full_call("+447700900789", ended_days_ago=None)}


def snapshot(call: Call) -> dict[str, Any]:
    return {
        "transcript": list(TranscriptItem.objects.filter(call=call).values_list("text", flat=True)),
        "summaries": list(Summary.objects.filter(call=call).values_list("text", "disposition")),
        "tools": {t.name: t.arguments for t in ToolInvocation.objects.filter(call=call)},
        "results": {t.name: t.result for t in ToolInvocation.objects.filter(call=call)},
        "handoffs": list(HandoffEvent.objects.filter(call=call).values("from_agent", "to_agent", "reason", "depth",
                                                                       "context")),
        "guardrails": list(GuardrailEvent.objects.filter(call=call).values_list("category", "text", "action")),
        "escalations": list(Escalation.objects.filter(call=call).values_list("reason", "source")),
        "events": list(CallEvent.objects.filter(call=call).order_by("seq").values_list("seq", "type", "event")),
        "call": Call.objects.filter(pk=call.pk).values("cost", "usage", "caller_id", "status", "end_reason").get(),
    }


def test_retention_removes_exactly_the_callers_words(calls: dict[str, Call], caplog: Any) -> None:
    before = {name: snapshot(call) for name, call in calls.items()}
    with caplog.at_level(logging.INFO, logger="audit.retention"):
        totals = apply_retention(days=30)
    assert totals["calls"] == 1 and totals["transcript"] == 2
    assert "retention: 1 calls ended before" in caplog.text

    # The recent and the live call are untouched.
    assert snapshot(calls["recent"]) == before["recent"] and snapshot(calls["live"]) == before["live"]

    old, was = snapshot(calls["old"]), before["old"]
    assert old["transcript"] == []
    assert old["summaries"] == [("", ""), ("", "refund")]  # rolling, post-call: the wrap-up code stays
    assert old["tools"] == {
        "verify_customer": {"phone": "[removed]", "date_of_birth": "[removed]", "channel": "voice"},  # per its setting
        "lookup_orders": {"order": "ORD-12345"},  # its setting keeps them
        "transfer_to_billing": {"reason": "[removed]", "conversation_summary": "[removed]"},  # not a tool row: all
        "retired_tool": {"note": "[removed]"},  # gone from the configuration: all
    }
    assert old["results"] == was["results"]
    assert old["handoffs"] == [{**was["handoffs"][0], "context": {"summary": "[removed]", "fields": "[removed]"}}]
    assert old["guardrails"] == was["guardrails"] and old["escalations"] == was["escalations"]
    assert old["call"] == was["call"] and old["call"]["cost"] == Decimal("0.25")
    # The event log keeps every event in sequence, without the words.
    assert [(s, t) for s, t, _ in old["events"]] == [(s, t) for s, t, _ in was["events"]]
    for (_, kind, event), (_, _, earlier) in zip(old["events"], was["events"], strict=True):
        if kind in ("transcript", "summary"):
            assert event["text"] == "" and earlier["text"]
        elif kind == "handoff":
            assert set(event["context"].values()) == {"[removed]"} and event["reason"] == earlier["reason"]
        elif kind == "tool":
            assert event["arguments"] == old["tools"][event["name"]]
        else:
            assert event == earlier
    assert "+447700900123" not in str(old["transcript"]) + str(old["tools"]) + str(old["handoffs"]) + str(
        [e for _, _, e in old["events"] if e["type"] != "call_started"])
    assert Call.objects.get(pk=calls["old"].pk).words_removed_at is not None


def test_retention_is_idempotent(calls: dict[str, Call]) -> None:
    apply_retention(days=30)
    after_first = {name: snapshot(call) for name, call in calls.items()}
    assert apply_retention(days=30)["calls"] == 0
    assert {name: snapshot(call) for name, call in calls.items()} == after_first
    assert actions.do_remove_words(calls["old"].pk, redactions={}, default_redaction=["*"]) is None


def test_retention_off_removes_nothing(calls: dict[str, Call], settings: Any) -> None:
    settings.RETENTION_DAYS = 0
    before = {name: snapshot(call) for name, call in calls.items()}
    assert apply_retention()["calls"] == 0
    assert {name: snapshot(call) for name, call in calls.items()} == before


def test_the_beat_task_uses_the_setting(calls: dict[str, Call], settings: Any) -> None:
    from audit import tasks

    assert settings.CELERY_BEAT_SCHEDULE["apply-retention"]["task"] == "audit.tasks.apply_retention"
    settings.RETENTION_DAYS = 5
    result = tasks.apply_retention.apply().get()
    assert result["calls"] == 2  # 40 and 10 days ago; the live call stays
    assert TranscriptItem.objects.filter(call=calls["live"]).count() == 2


def test_the_command_runs_it_on_demand(calls: dict[str, Call], settings: Any, capsys: Any) -> None:
    settings.RETENTION_DAYS = 0
    with pytest.raises(CommandError, match="Retention is off"):
        call_command("applyretention")
    call_command("applyretention", "--days", "30", "--batch", "1")
    assert "removed the words of 1 calls" in capsys.readouterr().out
    assert not TranscriptItem.objects.filter(call=calls["old"]).exists()
    assert TranscriptItem.objects.filter(call=calls["recent"]).count() == 2
