"""The only place call records are written and call events published.

Each `do_*` function writes its rows in one transaction, bumps the call's sequence number with an
atomic F() increment, and publishes exactly one event (or none, when nothing changed) to the call's
channel group after commit. The functions are synchronous: consumers call them through
`database_sync_to_async`, Celery tasks call them directly. Inside the ASGI server the publish
after commit does not wait for the channel layer (see `Publisher`).
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
import statistics
import weakref
from decimal import Decimal
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from calls.events import (
    CALL_EVENT,
    CALL_SUPERVISOR,
    DASHBOARD_CALL,
    DASHBOARD_CHANGES,
    DASHBOARD_GROUP,
    check_event,
)
from calls.models import (
    Call,
    CallEvent,
    Escalation,
    GuardrailEvent,
    HandoffEvent,
    SessionSegment,
    Summary,
    SupervisorAction,
    ToolInvocation,
    TranscriptItem,
    call_group,
)
from contactcenter.celery import app as celery_app

logger = logging.getLogger(__name__)

LATENCY_SAMPLES_KEPT = 500


def _publish(call_id: int, event_type: str, fields: dict[str, Any]) -> int:
    """Give the event the call's next sequence number, log it (CallEvent) and send it to the call's
    group after commit; a change of the call's row also goes to the dashboard-wide group.

    Must run inside the caller's transaction, after the caller's own writes: the row lock taken by
    the increment orders the sequence numbers of concurrent writers by commit.
    """
    Call.objects.filter(pk=call_id).update(last_seq=F("last_seq") + 1)
    seq = Call.objects.filter(pk=call_id).values_list("last_seq", flat=True).get()
    envelope = {
        "type": CALL_EVENT,
        "call_id": call_id,
        "seq": seq,
        "event": {"type": event_type, "at": timezone.now().isoformat(), **fields},
    }
    check_event(envelope)
    CallEvent.objects.create(call_id=call_id, seq=seq, type=event_type, event=envelope["event"])
    transaction.on_commit(lambda: _send_to_group(call_group(call_id), envelope))
    if event_type in DASHBOARD_CHANGES:
        change = {"type": DASHBOARD_CALL, "call_id": call_id, "seq": seq, "change": event_type,
                  "call": Call.objects.get(pk=call_id).dashboard_row()}
        transaction.on_commit(lambda: _send_to_group(DASHBOARD_GROUP, change))
    return seq


def _send_to_group(group: str, message: dict[str, Any]) -> None:
    """Publish after commit. Inside the ASGI server (a thread launched from its event loop) the
    message is handed to that loop's publisher and this returns at once: a stalled channel layer
    must not hold the thread that the server's consumers share for the ORM (Channels runs
    ``close_old_connections`` there before every frame it dispatches). Elsewhere (Celery, commands)
    it is sent before returning."""
    layer = get_channel_layer()
    if layer is None:
        return
    loop = _server_loop()
    if loop is not None:
        PUBLISHER.submit(loop, layer, group, message)
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:  # a channel-layer outage must not undo or break a committed write
        logger.exception("could not publish %s to %s", message.get("type"), group)


#: The event loop of the ASGI server this code runs under, set by the application on every
#: connection (contactcenter.asgi, contactcenter.routing). sync_to_async copies context variables
#: into the thread it runs a function on, so the records and views a connection runs see it too.
_SERVER_LOOP: contextvars.ContextVar[asyncio.AbstractEventLoop | None] = contextvars.ContextVar(
    "server_loop", default=None)


def bind_server_loop() -> None:
    """Called on the server's loop, at the start of each ASGI connection: work launched from it
    publishes through that loop's ordered sender."""
    _SERVER_LOOP.set(asyncio.get_running_loop())


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """The running server loop whose connection launched this thread, if any."""
    try:
        asyncio.get_running_loop()
        return None  # called on a loop itself (not the case for actions, which are synchronous)
    except RuntimeError:
        pass
    loop = _SERVER_LOOP.get()
    if loop is None or loop.is_closed() or not loop.is_running():
        return None
    return loop


class Publisher:
    """Sends published messages on the server's event loop, one at a time in the order they were
    committed (one queue per loop, drained by a sender task that exists only while the queue has
    messages). While the channel layer stalls, messages wait here, up to ``limit``; past it the
    oldest are dropped with a log line (the CallEvent log keeps every event, and dashboards resume
    from it by sequence number)."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, collections.deque[Any]] = (
            weakref.WeakKeyDictionary())
        self._senders: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
            weakref.WeakKeyDictionary())
        self.dropped = 0

    def submit(self, loop: asyncio.AbstractEventLoop, layer: Any, group: str, message: dict[str, Any]) -> None:
        try:
            loop.call_soon_threadsafe(self._enqueue, loop, layer, group, message)
        except RuntimeError:  # the loop closed meanwhile: nobody is listening on it any more
            logger.warning("could not publish %s to %s: the server loop has closed", message.get("type"), group)

    def _enqueue(self, loop: asyncio.AbstractEventLoop, layer: Any, group: str, message: dict[str, Any]) -> None:
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = collections.deque()
        if len(queue) >= self.limit:
            queue.popleft()
            self.dropped += 1
            logger.warning("the channel layer is not keeping up: dropped the oldest unsent event")
        queue.append((layer, group, message))
        sender = self._senders.get(loop)
        if sender is None or sender.done():
            self._senders[loop] = loop.create_task(self._send_all(queue), name="calls-publisher")

    async def _send_all(self, queue: collections.deque[Any]) -> None:
        while queue:
            layer, group, message = queue.popleft()
            try:
                await layer.group_send(group, message)
            except Exception:  # a channel-layer outage must not stop later events
                logger.exception("could not publish %s to %s", message.get("type"), group)

    def pending(self, loop: asyncio.AbstractEventLoop | None = None) -> int:
        """Messages not yet handed to the channel layer on ``loop`` (default: the running loop)."""
        queue = self._queues.get(loop or asyncio.get_running_loop())
        return len(queue) if queue is not None else 0


PUBLISHER = Publisher()


def send_to_call(call_id: int, message: dict[str, Any]) -> None:
    """Send a control message (summary delivery, recreate request, ...) to a live call's group."""
    _send_to_group(call_group(call_id), message)


# --- calls ----------------------------------------------------------------------------------------


def do_start_call(
    *,
    channel: str,
    spec: dict[str, Any],
    scenario: Any = None,
    user: Any = None,
    caller_id: str = "",
    external_id: str = "",
    codec: str = "",
    status: str = Call.Status.ACTIVE,
    consumer_channel: str = "",
) -> Call:
    """Open a call record with the compiled spec it runs with (a dict from ScenarioSpec.to_dict())."""
    from agents.versions import version_for_call

    now = timezone.now()
    with transaction.atomic():
        call = Call(
            scenario=scenario,
            scenario_slug=spec.get("slug", ""),
            spec=spec,
            spec_hash=spec.get("hash", ""),
            scenario_version=version_for_call(scenario, spec),
            channel=channel,
            caller_id=caller_id[:128],
            external_id=external_id[:128],
            codec=codec,
            status=status,
            started_at=now,
            current_agent=spec.get("root_agent", ""),
            user=user if getattr(user, "is_authenticated", False) else None,
            consumer_channel=consumer_channel,
            last_heartbeat=now,
        )
        call.save()
        seq = _publish(call.pk, "call_started", {
            "channel": call.channel, "scenario": call.scenario_slug, "agent": call.current_agent,
            "spec_hash": call.spec_hash, "caller_id": call.caller_id,
        })
    call.last_seq = seq
    return call


def do_refuse_call(*, channel: str, spec: dict[str, Any], reason: str, scenario: Any = None, user: Any = None,
                   caller_id: str = "", external_id: str = "", codec: str = "") -> Call:
    """A call turned away at the door (the worker is at capacity or shutting down): kept as an
    ended call whose end reason says why, with no session, no summary and no live events."""
    now = timezone.now()
    return Call.objects.create(
        scenario=scenario, scenario_slug=spec.get("slug", ""), spec=spec, spec_hash=spec.get("hash", ""),
        channel=channel, caller_id=caller_id[:128], external_id=external_id[:128], codec=codec,
        status=Call.Status.ENDED, started_at=now, ended_at=now, end_reason=reason[:64],
        current_agent=spec.get("root_agent", ""),
        user=user if getattr(user, "is_authenticated", False) else None,
    )


def do_answer_call(call_id: int, *, consumer_channel: str = "", external_id: str = "", caller_id: str = "") -> bool:
    """A ringing call's media connected. Returns False when the call is not ringing any more."""
    changes: dict[str, Any] = {"status": Call.Status.ACTIVE, "last_heartbeat": timezone.now(),
                               "consumer_channel": consumer_channel}
    if external_id:
        changes["external_id"] = external_id[:128]
    if caller_id:
        changes["caller_id"] = caller_id[:128]
    with transaction.atomic():
        if not Call.objects.filter(pk=call_id, status=Call.Status.RINGING).update(**changes):
            return False
        channel = Call.objects.filter(pk=call_id).values_list("channel", flat=True).get()
        _publish(call_id, "call_answered", {"channel": channel})
    return True


def do_heartbeat(call_id: int, *, consumer_channel: str | None = None) -> bool:
    """The consumer is alive. Writes no event: heartbeats are bookkeeping, not call history."""
    changes: dict[str, Any] = {"last_heartbeat": timezone.now()}
    if consumer_channel is not None:
        changes["consumer_channel"] = consumer_channel
    return bool(Call.objects.filter(pk=call_id).exclude(status=Call.Status.ENDED).update(**changes))


def do_end_call(call_id: int, reason: str) -> bool:
    """End a call once (later calls change nothing and publish nothing); queue its post-call summary."""
    now = timezone.now()
    with transaction.atomic():
        updated = Call.objects.filter(pk=call_id).exclude(status=Call.Status.ENDED).update(
            status=Call.Status.ENDED, ended_at=now, end_reason=reason[:64], consumer_channel=""
        )
        if not updated:
            return False
        SessionSegment.objects.filter(call_id=call_id, ended_at__isnull=True).update(
            ended_at=now, end_reason=reason[:64]
        )
        call = Call.objects.get(pk=call_id)
        _publish(call_id, "call_ended", {
            "reason": call.end_reason, "cost": str(call.cost),
            "duration_ms": int((now - call.started_at).total_seconds() * 1000),
        })
        transaction.on_commit(lambda: _enqueue("calls.tasks.summarize_call", call_id))
    return True


def _enqueue(task_name: str, *args: Any) -> None:
    """Queue a Celery task by its registered name (calls.tasks calls the actions; the actions never
    import the tasks), on the queue its route names."""
    try:
        celery_app.tasks[task_name].delay(*args)
    except Exception:  # a broker outage must not break the call path; the record is committed
        logger.exception("could not queue %s for call %s", task_name, args[0] if args else "?")


# --- Realtime sessions ----------------------------------------------------------------------------


def do_open_session(call_id: int, *, model: str, agent: str, gap_ms: int | None = None,
                    previous_end_reason: str = "recreated") -> SessionSegment:
    """A new Realtime session serves the call (the first one, or a recreated one, which ends the
    previous session with `previous_end_reason`)."""
    now = timezone.now()
    with transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call_id)
        open_segments = SessionSegment.objects.filter(call=call, ended_at__isnull=True)
        open_segments.update(ended_at=now, end_reason=previous_end_reason[:64])
        last = SessionSegment.objects.filter(call=call).order_by("-index").values_list("index", flat=True).first()
        segment = SessionSegment.objects.create(
            call=call, index=0 if last is None else last + 1, model=model, agent=agent, started_at=now, gap_ms=gap_ms
        )
        _publish(call_id, "session", {
            "index": segment.index, "state": "started", "model": model, "agent": agent, "end_reason": "",
            "gap_ms": gap_ms,
        })
    return segment


def do_close_session(call_id: int, *, reason: str) -> bool:
    """The call's current Realtime session ended (expired, dropped, or the call is over)."""
    now = timezone.now()
    with transaction.atomic():
        segment = (SessionSegment.objects.select_for_update()
                   .filter(call_id=call_id, ended_at__isnull=True).order_by("-index").first())
        if segment is None:
            return False
        segment.ended_at = now
        segment.end_reason = reason[:64]
        segment.save(update_fields=["ended_at", "end_reason"])
        _publish(call_id, "session", {
            "index": segment.index, "state": "ended", "model": segment.model, "agent": segment.agent,
            "end_reason": segment.end_reason, "gap_ms": None,
        })
    return True


# --- turns ----------------------------------------------------------------------------------------


def do_record_transcript(
    call_id: int, *, item_id: str, role: str, text: str, agent: str = "", truncated: bool = False
) -> TranscriptItem:
    """Write a finished turn (or its truncated text after a barge-in). Idempotent per item id."""
    with transaction.atomic():
        item, _ = TranscriptItem.objects.update_or_create(
            call_id=call_id, item_id=item_id,
            defaults={"role": role, "text": text, "agent": agent, "truncated": truncated},
        )
        _publish(call_id, "transcript", {
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
        _publish(call_id, "handoff", {
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
        _publish(call_id, "handoff_applied", {
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
        _publish(call_id, "tool", {
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
        _publish(call_id, "guardrail", {"category": category, "text": text, "action": action, "agent": agent})
    return trip


def escalation_webhook_url(spec: dict[str, Any]) -> str:
    """The URL an escalation is posted to: the scenario's escalation webhook, else its escalate
    tool's webhook, else the setting."""
    if spec.get("escalation_webhook_url"):
        return str(spec["escalation_webhook_url"])
    for agent in (spec.get("agents") or {}).values():
        for tool in agent.get("tools") or []:
            if tool.get("builtin") == "escalate" and (tool.get("webhook") or {}).get("url"):
                return str(tool["webhook"]["url"])
    return str(getattr(settings, "ESCALATION_WEBHOOK_URL", "") or "")


def do_escalate(call_id: int, *, reason: str, source: str, agent: str = "") -> Escalation:
    """Record an escalation; when the scenario has a webhook, queue its (at most once) posting."""
    with transaction.atomic():
        spec = Call.objects.filter(pk=call_id).values_list("spec", flat=True).get()
        url = escalation_webhook_url(spec or {})
        escalation = Escalation.objects.create(
            call_id=call_id, reason=reason, source=source, agent=agent, webhook_url=url,
            webhook_status=Escalation.WebhookStatus.PENDING if url else Escalation.WebhookStatus.NONE,
        )
        _publish(call_id, "escalation", {
            "escalation_id": escalation.pk, "reason": reason, "source": source, "agent": agent,
            "webhook_status": escalation.webhook_status,
        })
        if url:
            transaction.on_commit(lambda: _enqueue("calls.tasks.post_escalation", escalation.pk))
    logger.info("call %s escalated (%s): %s", call_id, source, reason[:200])
    return escalation


def do_claim_escalation(escalation_id: int) -> Escalation | None:
    """Claim a pending escalation for one webhook attempt (never posted twice); None if it is not
    pending. The dashboard sees the attempt."""
    with transaction.atomic():
        claimed = Escalation.objects.filter(
            pk=escalation_id,
            webhook_status__in=[Escalation.WebhookStatus.PENDING, Escalation.WebhookStatus.RETRYING],
        ).update(webhook_status=Escalation.WebhookStatus.POSTING, attempts=F("attempts") + 1)
        if not claimed:
            return None
        escalation = Escalation.objects.select_related("call").get(pk=escalation_id)
        _publish_escalation_status(escalation)
    return escalation


def do_finish_escalation(escalation_id: int, *, ok: bool, status_code: int | None, final: bool) -> str:
    """The outcome of a webhook attempt: posted, retrying, or failed for good. Published."""
    if ok:
        status = Escalation.WebhookStatus.POSTED
    else:
        status = Escalation.WebhookStatus.FAILED if final else Escalation.WebhookStatus.RETRYING
    fields: dict[str, Any] = {"webhook_status": status, "webhook_response_code": status_code}
    if ok:
        fields["posted_at"] = timezone.now()
    with transaction.atomic():
        Escalation.objects.filter(pk=escalation_id).update(**fields)
        _publish_escalation_status(Escalation.objects.get(pk=escalation_id))
    return str(status)


def _publish_escalation_status(escalation: Escalation) -> None:
    if escalation.call_id is not None:
        _publish(escalation.call_id, "escalation_status", {
            "escalation_id": escalation.pk, "webhook_status": escalation.webhook_status,
            "webhook_response_code": escalation.webhook_response_code, "attempts": escalation.attempts,
        })


def add_usage(total: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """Sum two Realtime `usage` objects field by field (nested token details included)."""
    merged = dict(total)
    for key, value in delta.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            merged[key] = merged.get(key, 0) + value
        elif isinstance(value, dict):
            merged[key] = add_usage(merged.get(key) or {}, value)
    return merged


def do_record_usage(call_id: int, *, agent: str, usage: dict[str, Any], cost: Decimal) -> Decimal:
    """Add one response's usage to the call's per-agent totals and its cost. Returns the call's cost."""
    with transaction.atomic():
        call = Call.objects.select_for_update().only("usage", "cost").get(pk=call_id)
        totals = dict(call.usage or {})
        totals[agent] = add_usage(totals.get(agent) or {}, usage)
        call.usage = totals
        call.cost = (call.cost or Decimal(0)) + cost
        call.save(update_fields=["usage", "cost"])
        _publish(call_id, "usage", {
            "agent": agent, "usage": usage, "cost": str(cost), "call_cost": str(call.cost),
            "call_local": call.has_local_usage,
        })
    return call.cost


def _percentile(samples: list[int], fraction: float) -> int:
    if len(samples) == 1:
        return samples[0]
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return round(cuts[int(fraction * 100) - 1])


def do_record_latency(call_id: int, *, voice_to_voice_ms: int) -> tuple[int, int]:
    """Add one turn's voice-to-voice latency; keeps the call's p50/p95 current."""
    with transaction.atomic():
        call = Call.objects.select_for_update().only("latency_samples_ms").get(pk=call_id)
        samples = [*list(call.latency_samples_ms or []), int(voice_to_voice_ms)][-LATENCY_SAMPLES_KEPT:]
        p50, p95 = _percentile(samples, 0.5), _percentile(samples, 0.95)
        Call.objects.filter(pk=call_id).update(latency_samples_ms=samples, latency_p50_ms=p50, latency_p95_ms=p95)
        _publish(call_id, "latency", {"voice_to_voice_ms": int(voice_to_voice_ms), "p50_ms": p50, "p95_ms": p95})
    return p50, p95


def do_record_caller_idle(call_id: int, *, ms: int, agent: str = "", item_id: str = "") -> int:
    """The caller stayed silent past the agent's idle timeout (the server then prompts them): count
    it on the call and publish `caller.idle`. Returns the call's idle count."""
    with transaction.atomic():
        Call.objects.filter(pk=call_id).update(idle_prompts=F("idle_prompts") + 1)
        count = Call.objects.filter(pk=call_id).values_list("idle_prompts", flat=True).get()
        _publish(call_id, "caller.idle", {
            "ms": max(0, int(ms)), "agent": agent, "item_id": item_id, "idle_prompts": count,
        })
    return count


def do_claim_summary(call_id: int, claim: str) -> bool:
    """Claim an ended call's post-call summary for the task run `claim` (a retry of the same run
    keeps its claim; any other run is refused)."""
    return bool(Call.objects.filter(pk=call_id, status=Call.Status.ENDED)
                .filter(Q(summary_task_id="") | Q(summary_task_id=claim))
                .update(summary_task_id=claim))


def do_record_summary(call_id: int, *, kind: str, text: str, disposition: str = "", model: str = "") -> Summary | None:
    """Store a summary. A second post-call summary of the same call is refused (returns None)."""
    with transaction.atomic():
        if kind == Summary.Kind.POST_CALL and Summary.objects.filter(call_id=call_id, kind=kind).exists():
            return None
        summary = Summary.objects.create(call_id=call_id, kind=kind, text=text, disposition=disposition, model=model)
        _publish(call_id, "summary", {"kind": kind, "text": text, "disposition": disposition})
    return summary


def live_calls_without_heartbeat(since: Any) -> list[int]:
    """Ids of calls not ended whose consumer has been silent since `since`."""
    return list(
        Call.objects.exclude(status=Call.Status.ENDED)
        .filter(Q(last_heartbeat__lt=since) | Q(last_heartbeat__isnull=True, started_at__lt=since))
        .values_list("pk", flat=True)
    )


# --- supervisors ----------------------------------------------------------------------------------


class SupervisorActionRefused(ValueError):
    """The call cannot take this supervisor action (ended, nothing waiting for approval, ...)."""


def do_supervisor_action(call_id: int, *, user: Any, kind: str, text: str = "", tool_call_id: str = "",
                         reply_channel: str = "") -> SupervisorAction:
    """A supervisor acts on a live call: record it (audit row + a `supervisor` event) and, after
    commit, hand it to the call's consumer through the call's group (message `call.supervisor`).

    Approve/deny need a tool call of the call awaiting approval; every action needs a live call.
    The consumer answers on `reply_channel` (message `dashboard.reply`) when it cannot apply it.
    """
    if kind not in SupervisorAction.Kind.values:
        raise SupervisorActionRefused(f"unknown action {kind!r}")
    username = user.get_username()
    with transaction.atomic():
        call = Call.objects.select_for_update().only("status", "consumer_channel").get(pk=call_id)
        if call.status == Call.Status.ENDED:
            raise SupervisorActionRefused("the call has ended")
        if kind in (SupervisorAction.Kind.APPROVE, SupervisorAction.Kind.DENY):
            waiting = ToolInvocation.objects.filter(
                call_id=call_id, call_id_ref=tool_call_id, status=ToolInvocation.Status.AWAITING_APPROVAL)
            if not tool_call_id or not waiting.exists():
                raise SupervisorActionRefused("no tool call of this call is waiting for approval with that id")
        elif kind in (SupervisorAction.Kind.WHISPER, SupervisorAction.Kind.SAY) and not text.strip():
            raise SupervisorActionRefused("the text is empty")
        action = SupervisorAction.objects.create(
            call_id=call_id, user=user, username=username, kind=kind, text=text, tool_call_id=tool_call_id)
        _publish(call_id, "supervisor", {"action": kind, "by": username, "text": text, "tool_call_id": tool_call_id})
        message = {"type": CALL_SUPERVISOR, "action": kind, "by": username, "text": text,
                   "tool_call_id": tool_call_id, "action_id": action.pk, "reply_channel": reply_channel}
        transaction.on_commit(lambda: send_to_call(call_id, message))
        if kind == SupervisorAction.Kind.HANGUP and not call.consumer_channel:
            do_end_call(call_id, "ended_by_supervisor")  # no consumer holds the call: end the record
    logger.info("call %s: supervisor %s: %s", call_id, username, kind)
    return action


# --- retention ------------------------------------------------------------------------------------

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


def do_listen(call_id: int, *, user: Any, mode: str) -> SupervisorAction:
    """A supervisor starts listening to a live call (`mode`: mixed, caller or agent): an audit row
    and a `supervisor` event on the call's timeline. Raises SupervisorActionRefused once it ended."""
    username = user.get_username()
    with transaction.atomic():
        call = Call.objects.select_for_update().only("status").get(pk=call_id)
        if call.status == Call.Status.ENDED:
            raise SupervisorActionRefused("the call has ended")
        action = SupervisorAction.objects.create(call_id=call_id, user=user, username=username,
                                                 kind=SupervisorAction.Kind.LISTEN, text=mode)
        _publish(call_id, "supervisor", {"action": "listen", "by": username, "text": mode, "tool_call_id": ""})
    logger.info("call %s: supervisor %s listens (%s)", call_id, username, mode)
    return action


def do_stop_listening(action_id: int, reason: str) -> None:
    """The listen that `action_id` recorded is over: a `supervisor` event (action listen_stop)."""
    action = SupervisorAction.objects.filter(pk=action_id).only("call_id", "username").first()
    if action is None or action.call_id is None:
        return
    with transaction.atomic():
        _publish(action.call_id, "supervisor", {"action": "listen_stop", "by": action.username,
                                                "text": reason[:200], "tool_call_id": ""})
