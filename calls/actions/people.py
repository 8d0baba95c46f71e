"""People on the call: a supervisor or a human agent takes a call over from the agent and hands
it back. Each is a SupervisorAction and a `supervisor` event on the call's timeline."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from calls.actions.supervisors import SupervisorActionRefused
from calls.models import Call, SupervisorAction
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
