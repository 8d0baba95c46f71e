"""Escalations and their webhook delivery."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from calls import publish
from calls.models import (
    Call,
    Escalation,
)
from calls.publish import publish_event

logger = logging.getLogger(__name__)


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


def do_escalate(call_id: int, *, reason: str, source: str, agent: str = "", defer_webhook: bool = False) -> Escalation:
    """Record an escalation; when the scenario has a webhook, queue its (at most once) posting.
    ``defer_webhook``: the call waits in the queue of human agents first; the webhook is posted
    only if nobody answers (`actions.do_queue_timeout`)."""
    with transaction.atomic():
        spec = Call.objects.filter(pk=call_id).values_list("spec", flat=True).get()
        url = escalation_webhook_url(spec or {})
        escalation = Escalation.objects.create(
            call_id=call_id, reason=reason, source=source, agent=agent, webhook_url=url,
            webhook_status=Escalation.WebhookStatus.PENDING if url else Escalation.WebhookStatus.NONE,
        )
        publish_event(call_id, "escalation", {
            "escalation_id": escalation.pk, "reason": reason, "source": source, "agent": agent,
            "webhook_status": escalation.webhook_status,
        })
        if url and not defer_webhook:
            transaction.on_commit(lambda: publish.enqueue("calls.tasks.post_escalation", escalation.pk))
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
        publish_event(escalation.call_id, "escalation_status", {
            "escalation_id": escalation.pk, "webhook_status": escalation.webhook_status,
            "webhook_response_code": escalation.webhook_response_code, "attempts": escalation.attempts,
        })

