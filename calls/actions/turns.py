"""What happens in a turn: transcript items, handoffs, tool invocations, guardrail trips."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from calls.models import (
    Call,
    GuardrailEvent,
    HandoffEvent,
    ToolInvocation,
    TranscriptItem,
)
from calls.publish import publish_event

logger = logging.getLogger(__name__)


def do_record_transcript(
    call_id: int, *, item_id: str, role: str, text: str, agent: str = "", truncated: bool = False
) -> TranscriptItem:
    """Write a finished turn (or its truncated text after a barge-in). Idempotent per item id."""
    with transaction.atomic():
        item, _ = TranscriptItem.objects.update_or_create(
            call_id=call_id, item_id=item_id,
            defaults={"role": role, "text": text, "agent": agent, "truncated": truncated},
        )
        publish_event(call_id, "transcript", {
            "item_id": item_id, "role": role, "text": text, "agent": agent, "truncated": truncated,
        })
    return item


def do_record_handoff(
    call_id: int,
    *,
    from_agent: str,
    to_agent: str,
    reason: str = "",
    context: dict[str, Any] | None = None,
    depth: int = 0,
    duration_ms: int | None = None,
    voice_kept: bool = False,
    fallback: bool = False,
) -> HandoffEvent:
    with transaction.atomic():
        handoff = HandoffEvent.objects.create(
            call_id=call_id, from_agent=from_agent, to_agent=to_agent, reason=reason, context=context or {},
            depth=depth, duration_ms=duration_ms, voice_kept=voice_kept, fallback=fallback,
        )
        Call.objects.filter(pk=call_id).update(current_agent=to_agent)
        publish_event(call_id, "handoff", {
            "from_agent": from_agent, "to_agent": to_agent, "reason": reason, "context": handoff.context,
            "depth": depth, "duration_ms": duration_ms, "voice_kept": voice_kept, "fallback": fallback,
        })
    return handoff


def do_mark_handoff_applied(
    call_id: int, *, to_agent: str, depth: int, applied: bool, applied_ms: int, error: str = "",
) -> HandoffEvent | None:
    """The Realtime server answered a handoff's session.update: from now on the new agent's
    instructions and tools are in force (``applied``), or it refused them (``error``)."""
    with transaction.atomic():
        handoff = (HandoffEvent.objects.select_for_update()
                   .filter(call_id=call_id, to_agent=to_agent, depth=depth, applied__isnull=True)
                   .order_by("-created_at", "-id").first())
        if handoff is None:
            return None
        handoff.applied, handoff.applied_ms, handoff.apply_error = applied, applied_ms, error
        handoff.save(update_fields=["applied", "applied_ms", "apply_error"])
        publish_event(call_id, "handoff_applied", {
            "to_agent": to_agent, "depth": depth, "applied": applied, "applied_ms": applied_ms, "error": error,
        })
    return handoff


def do_set_current_agent(call_id: int, agent: str) -> bool:
    """Keep Call.current_agent right when the agent changes without a recorded handoff (a recreated
    session restoring its agent). No event: the engine's own event is forwarded to the socket."""
    return bool(Call.objects.filter(pk=call_id).exclude(current_agent=agent).update(current_agent=agent))


def do_record_tool(
    call_id: int,
    *,
    tool_call_id: str,
    name: str,
    status: str,
    agent: str = "",
    arguments: Any = None,
    result: Any = None,
    error: str = "",
    duration_ms: int | None = None,
    approved_by: str = "",
) -> ToolInvocation:
    """Record a tool call when it starts and again when it ends (one row per function call id)."""
    fields: dict[str, Any] = {"name": name, "status": status, "agent": agent}
    if arguments is not None:
        fields["arguments"] = arguments
    if status != ToolInvocation.Status.STARTED:
        fields.update(result=result, error=error, duration_ms=duration_ms)
    if approved_by:
        fields["approved_by"] = approved_by
    with transaction.atomic():
        if tool_call_id:
            invocation, _ = ToolInvocation.objects.update_or_create(
                call_id=call_id, call_id_ref=tool_call_id, defaults=fields
            )
        else:
            invocation = ToolInvocation.objects.create(call_id=call_id, **fields)
        publish_event(call_id, "tool", {
            "tool_call_id": tool_call_id, "name": name, "agent": invocation.agent, "status": status,
            "arguments": invocation.arguments, "result": invocation.result, "error": invocation.error,
            "duration_ms": invocation.duration_ms, "approved_by": invocation.approved_by,
        })
    return invocation


def do_record_guardrail(call_id: int, *, category: str, text: str, action: str, agent: str = "",
                        item_id: str = "") -> GuardrailEvent:
    with transaction.atomic():
        trip = GuardrailEvent.objects.create(
            call_id=call_id, category=category, text=text, action=action, agent=agent, item_id=item_id
        )
        publish_event(call_id, "guardrail", {"category": category, "text": text, "action": action, "agent": agent})
    return trip

