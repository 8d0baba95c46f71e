"""Retention: remove the caller's words from an old call, keep the audit facts."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from calls.models import (
    Call,
    CallEvent,
    HandoffEvent,
    Summary,
    ToolInvocation,
    TranscriptItem,
)

logger = logging.getLogger(__name__)


REMOVED = "[removed]"


def redact_arguments(arguments: Any, names: list[str]) -> Any:
    """A tool call's arguments with the values of `names` (every value for "*") replaced."""
    if not names:
        return arguments
    if not isinstance(arguments, dict):
        return REMOVED if arguments not in (None, "") else arguments
    if "*" in names:
        return {key: REMOVED for key in arguments}
    return {key: (REMOVED if key in names else value) for key, value in arguments.items()}


def do_remove_words(call_id: int, *, redactions: dict[str, list[str]], default_redaction: list[str]) -> dict[str, int] | None:
    """Retention of an ended call: remove what the caller said and what was written from it (the
    transcript, the summaries' text, what travelled with handoffs, the transcript and summary
    events of its log), and redact tool arguments per tool (`redactions`: tool name -> argument
    names, "*" for all; tools not listed get `default_redaction`). Handoffs, tool calls,
    guardrail trips, escalations, usage and costs stay. Claimed once: a second run changes nothing
    and returns None. Publishes nothing (the call has ended)."""
    now = timezone.now()
    with transaction.atomic():
        claimed = Call.objects.filter(pk=call_id, status=Call.Status.ENDED, words_removed_at__isnull=True).update(
            words_removed_at=now)
        if not claimed:
            return None
        counts = {"transcript": TranscriptItem.objects.filter(call_id=call_id).delete()[0]}
        counts["summaries"] = Summary.objects.filter(call_id=call_id).exclude(text="").update(text="")
        handoffs = 0
        for handoff in HandoffEvent.objects.filter(call_id=call_id).exclude(context={}):
            handoff.context = {key: REMOVED for key in handoff.context}
            handoff.save(update_fields=["context"])
            handoffs += 1
        counts["handoff_contexts"] = handoffs
        tools = 0
        for invocation in ToolInvocation.objects.filter(call_id=call_id):
            names = redactions.get(invocation.name, default_redaction)
            redacted = redact_arguments(invocation.arguments, names)
            if redacted != invocation.arguments:
                invocation.arguments = redacted
                invocation.save(update_fields=["arguments"])
                tools += 1
        counts["tool_arguments"] = tools
        events = 0
        for event in CallEvent.objects.filter(call_id=call_id, type__in=("transcript", "summary", "handoff", "tool")):
            body = dict(event.event)
            if event.type in ("transcript", "summary"):
                body["text"] = ""
            elif event.type == "handoff":
                body["context"] = {key: REMOVED for key in body.get("context") or {}}
            else:
                body["arguments"] = redact_arguments(body.get("arguments"), redactions.get(
                    str(body.get("name", "")), default_redaction))
            if body != event.event:
                event.event = body
                event.save(update_fields=["event"])
                events += 1
        counts["events"] = events
    logger.info("retention: call %s: removed %s", call_id, ", ".join(f"{k}={v}" for k, v in counts.items()))
    return counts

