"""A call's lifecycle: started, refused, answered, heartbeating, ended; the reaper's query."""

from __future__ import annotations

import logging
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from calls import publish
from calls.actions.summaries import write_no_conversation
from calls.models import (
    Call,
    SessionSegment,
    TranscriptItem,
)
from calls.publish import CALL_BULKY_FIELDS, publish_event, publish_events

logger = logging.getLogger(__name__)


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
        call.pending = 0  # type: ignore[attr-defined]  # a new call waits for no approval (the dashboard's row)
        seq = publish_event(call.pk, "call_started", {
            "channel": call.channel, "scenario": call.scenario_slug, "agent": call.current_agent,
            "spec_hash": call.spec_hash, "caller_id": call.caller_id,
        }, row=call)
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


def do_answer_call(call_id: int, *, consumer_channel: str = "", external_id: str = "",
                   caller_id: str = "") -> Call | None:
    """A ringing call's media connected: the call as it is now (its bulky fields deferred), or None
    when the call is not ringing any more."""
    changes: dict[str, Any] = {"status": Call.Status.ACTIVE, "last_heartbeat": timezone.now(),
                               "consumer_channel": consumer_channel}
    if external_id:
        changes["external_id"] = external_id[:128]
    if caller_id:
        changes["caller_id"] = caller_id[:128]
    with transaction.atomic():
        if not Call.objects.filter(pk=call_id, status=Call.Status.RINGING).update(**changes):
            return None
        call = Call.objects.defer(*CALL_BULKY_FIELDS).get(pk=call_id)
        call.pending = 0  # type: ignore[attr-defined]  # it was ringing: no tool has run yet
        publish_event(call_id, "call_answered", {"channel": call.channel}, row=call)
    return call


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
        call = Call.objects.defer(*CALL_BULKY_FIELDS).get(pk=call_id)
        events: list[tuple[str, dict[str, Any]]] = [("call_ended", {
            "reason": call.end_reason, "cost": str(call.cost),
            "duration_ms": int((now - call.started_at).total_seconds() * 1000),
        })]
        # Nothing was said: the post-call summary is known now, with no model to ask and no task
        # to queue (most short and refused calls). Otherwise the Celery worker writes it.
        if TranscriptItem.objects.filter(call_id=call_id).exists():
            transaction.on_commit(lambda: publish.enqueue("calls.tasks.summarize_call", call_id))
        else:
            events.append(("summary", write_no_conversation(call_id)))
        publish_events(call_id, events, row=call)
    return True


def live_calls_without_heartbeat(since: Any, among: list[int] | None = None) -> list[int]:
    """Ids of calls not ended whose consumer has been silent since `since` (of ``among`` if given).

    Silence while the database was down does not count: a consumer cannot write its heartbeat then
    (`calls.live.keep_heartbeat` keeps trying). On PostgreSQL, when the server started after `since` (it
    was restarted), no call has been silent long enough to tell yet, and none is returned."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_postmaster_start_time()")
            started = cursor.fetchone()[0]
        if started is not None and started > since:
            logger.info("the database started at %s, within the heartbeat timeout: no call is judged lost yet",
                        started.isoformat())
            return []
    calls = Call.objects.exclude(status=Call.Status.ENDED)
    if among is not None:
        calls = calls.filter(pk__in=among)
    return list(
        calls.filter(Q(last_heartbeat__lt=since) | Q(last_heartbeat__isnull=True, started_at__lt=since))
        .values_list("pk", flat=True)
    )
