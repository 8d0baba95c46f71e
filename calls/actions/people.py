"""People on the call: a supervisor or a human agent takes a call over from the agent and hands
it back (each a SupervisorAction and a `supervisor` event on the call's timeline); the queue of
human agents an escalated call waits in (each change a `queue` event)."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from calls import publish
from calls.actions.escalations import do_escalate
from calls.actions.supervisors import SupervisorActionRefused
from calls.models import Call, Escalation, HumanAgentPresence, QueueEntry, SupervisorAction, Voicemail
from calls.publish import publish_event

logger = logging.getLogger(__name__)


def _publish(call_id: int, action: str, by: str, text: str) -> None:
    publish_event(call_id, "supervisor", {"action": action, "by": by, "text": text[:200], "tool_call_id": ""})


def open_take_over(call_id: int) -> SupervisorAction | None:
    """The call's take-over in force (not handed back yet), if any."""
    return (SupervisorAction.objects.filter(call_id=call_id, kind=SupervisorAction.Kind.TAKE_OVER,
                                            ended_at__isnull=True).order_by("-created_at", "-id").first())


def do_take_over(call_id: int, *, user: Any, reason: str = "") -> SupervisorAction:
    """A person takes a live call over from the agent. Refused (SupervisorActionRefused) when the
    call has ended or someone else has it; the same person taking it again gets their open row."""
    username = user.get_username()
    with transaction.atomic():
        call = Call.objects.select_for_update().only("status").get(pk=call_id)
        if call.status == Call.Status.ENDED:
            raise SupervisorActionRefused("the call has ended")
        current = open_take_over(call_id)
        if current is not None:
            if current.user_id != user.pk:
                raise SupervisorActionRefused(f"{current.username} has already taken this call over")
            return current
        action = SupervisorAction.objects.create(call_id=call_id, user=user, username=username,
                                                 kind=SupervisorAction.Kind.TAKE_OVER, text=reason[:500])
        _publish(call_id, "take_over", username, reason)
    logger.info("call %s: %s takes the call over", call_id, username)
    return action


def do_hand_back(call_id: int, *, reason: str, take_over_id: int | None = None) -> SupervisorAction | None:
    """The call goes back to the agent: the open take-over (that one, when named) ends and a
    hand_back row and event say so. Idempotent: None when nothing was open."""
    with transaction.atomic():
        Call.objects.select_for_update().only("pk").filter(pk=call_id).first()
        current = open_take_over(call_id)
        if current is None or (take_over_id is not None and current.pk != take_over_id):
            return None
        current.ended_at = timezone.now()
        current.save(update_fields=["ended_at"])
        action = SupervisorAction.objects.create(call_id=call_id, user_id=current.user_id, username=current.username,
                                                 kind=SupervisorAction.Kind.HAND_BACK, text=reason[:500])
        _publish(call_id, "hand_back", current.username, reason)
    logger.info("call %s: handed back to the agent by %s (%s)", call_id, current.username, reason[:100])
    return action


# --- the queue of human agents ---------------------------------------------------------------------


def _publish_queue(entry: QueueEntry, by: str = "") -> None:
    wait_ms = max(0, round(((entry.ended_at or timezone.now()) - entry.enqueued_at).total_seconds() * 1000))
    publish_event(entry.call_id, "queue", {"entry_id": entry.pk, "status": entry.status, "reason": entry.reason[:200],
                                           "by": by, "wait_ms": wait_ms, "fallback": entry.fallback})


def do_set_available(user: Any, available: bool) -> HumanAgentPresence:
    """A human agent marks themselves available for queued calls, or away."""
    with transaction.atomic():
        presence, _ = HumanAgentPresence.objects.select_for_update().get_or_create(user=user)
        if presence.available != available:
            presence.available, presence.since = available, timezone.now()
            presence.save(update_fields=["available", "since"])
    logger.info("%s is %s for queued calls", user.get_username(), "available" if available else "away")
    return presence


def do_enqueue_call(call_id: int, *, reason: str, agent: str, timeout_s: int, fallback: str,
                    escalation_id: int | None = None) -> QueueEntry | None:
    """An escalated call waits for a human agent. None when it already waits or has ended."""
    with transaction.atomic():
        call = Call.objects.select_for_update().only("status").get(pk=call_id)
        if call.status == Call.Status.ENDED or QueueEntry.objects.filter(
                call_id=call_id, status=QueueEntry.Status.WAITING).exists():
            return None
        entry = QueueEntry.objects.create(call_id=call_id, reason=reason[:2000], agent=agent, timeout_s=timeout_s,
                                          fallback=fallback, escalation_id=escalation_id)
        _publish_queue(entry)
    logger.info("call %s waits for a human agent (%s s, then %s)", call_id, timeout_s, fallback)
    return entry


def do_accept_queue_entry(entry_id: int, *, user: Any) -> QueueEntry:
    """The first available human agent takes a waiting call: refused (SupervisorActionRefused)
    when it was taken, timed out or ended, or when the user is not marked available."""
    with transaction.atomic():
        entry = QueueEntry.objects.select_for_update().filter(pk=entry_id).first()
        if entry is None:
            raise SupervisorActionRefused("no such call in the queue")
        if entry.status != QueueEntry.Status.WAITING:
            who = f" by {entry.accepted_username}" if entry.accepted_username else ""
            raise SupervisorActionRefused(f"this call is no longer waiting ({entry.get_status_display().lower()}{who})")
        if not HumanAgentPresence.objects.filter(user=user, available=True).exists():
            raise SupervisorActionRefused("mark yourself available to take queued calls")
        entry.status, entry.accepted_by, entry.accepted_username = (
            QueueEntry.Status.ACCEPTED, user, user.get_username())
        entry.ended_at = timezone.now()
        entry.save(update_fields=["status", "accepted_by", "accepted_username", "ended_at"])
        _publish_queue(entry, by=user.get_username())
    logger.info("call %s: %s accepts it from the queue", entry.call_id, user.get_username())
    return entry


def do_queue_timeout(entry_id: int) -> QueueEntry | None:
    """Nobody answered in time: the entry times out (once) and the call takes the scenario's
    fallback; for "webhook" the escalation's deferred webhook is queued now. None when the entry
    no longer waits (accepted, ended)."""
    with transaction.atomic():
        entry = QueueEntry.objects.select_for_update().filter(pk=entry_id, status=QueueEntry.Status.WAITING).first()
        if entry is None:
            return None
        entry.status, entry.ended_at = QueueEntry.Status.TIMED_OUT, timezone.now()
        entry.save(update_fields=["status", "ended_at"])
        _publish_queue(entry)
        escalation_id = entry.escalation_id
        if entry.fallback == "webhook" and escalation_id is not None and Escalation.objects.filter(
                pk=escalation_id, webhook_status=Escalation.WebhookStatus.PENDING).exists():
            transaction.on_commit(lambda: publish.enqueue("calls.tasks.post_escalation", escalation_id))
    logger.info("call %s: nobody took it from the queue in %s s; %s", entry.call_id, entry.timeout_s, entry.fallback)
    return entry


def do_leave_queue(call_id: int) -> None:
    """The call ended while it waited."""
    with transaction.atomic():
        for entry in QueueEntry.objects.select_for_update().filter(call_id=call_id, status=QueueEntry.Status.WAITING):
            entry.status, entry.ended_at = QueueEntry.Status.ABANDONED, timezone.now()
            entry.save(update_fields=["status", "ended_at"])
            _publish_queue(entry)


def waiting_entries() -> list[dict[str, Any]]:
    """The queue as the dashboard shows it, oldest first."""
    now = timezone.now()
    return [{"entry_id": e.pk, "call_id": e.call_id, "reason": e.reason[:200], "agent": e.agent,
             "caller_id": e.call.caller_id, "waited_s": round((now - e.enqueued_at).total_seconds()),
             "timeout_s": e.timeout_s, "fallback": e.fallback}
            for e in QueueEntry.objects.filter(status=QueueEntry.Status.WAITING).select_related("call")]


def do_escalate_to_queue(call_id: int, *, reason: str, source: str, agent: str, timeout_s: int,
                         fallback: str) -> QueueEntry | None:
    """An escalation whose webhook waits (posted only if nobody answers) and the call in the queue."""
    escalation = do_escalate(call_id, reason=reason, source=source, agent=agent, defer_webhook=True)
    return do_enqueue_call(call_id, reason=reason, agent=agent, timeout_s=timeout_s, fallback=fallback,
                           escalation_id=escalation.pk)


def do_queue_timeout_call(call_id: int) -> QueueEntry | None:
    """The call's waiting entry times out (see do_queue_timeout); None when none waits."""
    entry = QueueEntry.objects.filter(call_id=call_id, status=QueueEntry.Status.WAITING).first()
    return do_queue_timeout(entry.pk) if entry is not None else None


def do_save_voicemail(call_id: int, *, wav: bytes, duration_ms: int) -> Voicemail:
    """The caller's message after nobody answered, kept as WAV; a `voicemail` event."""
    with transaction.atomic():
        voicemail = Voicemail.objects.create(call_id=call_id, audio=wav, duration_ms=duration_ms)
        publish_event(call_id, "voicemail", {"voicemail_id": voicemail.pk, "duration_ms": duration_ms})
    logger.info("call %s: voicemail of %d ms kept", call_id, duration_ms)
    return voicemail
