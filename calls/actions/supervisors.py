"""Supervisor actions on a live call: approve, deny, whisper, say, hang up, listen."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from calls import publish
from calls.actions.calls import do_end_call
from calls.events import (
    CALL_SUPERVISOR,
)
from calls.models import (
    Call,
    SupervisorAction,
    ToolInvocation,
)
from calls.publish import publish_event

logger = logging.getLogger(__name__)


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
        publish_event(call_id, "supervisor", {"action": kind, "by": username, "text": text, "tool_call_id": tool_call_id})
        message = {"type": CALL_SUPERVISOR, "action": kind, "by": username, "text": text,
                   "tool_call_id": tool_call_id, "action_id": action.pk, "reply_channel": reply_channel}
        transaction.on_commit(lambda: publish.send_to_call(call_id, message))
        if kind == SupervisorAction.Kind.HANGUP and not call.consumer_channel:
            do_end_call(call_id, "ended_by_supervisor")  # no consumer holds the call: end the record
    logger.info("call %s: supervisor %s: %s", call_id, username, kind)
    return action




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
        publish_event(call_id, "supervisor", {"action": "listen", "by": username, "text": mode, "tool_call_id": ""})
    logger.info("call %s: supervisor %s listens (%s)", call_id, username, mode)
    return action


def do_stop_listening(action_id: int, reason: str) -> None:
    """The listen that `action_id` recorded is over: a `supervisor` event (action listen_stop)."""
    action = SupervisorAction.objects.filter(pk=action_id).only("call_id", "username").first()
    if action is None or action.call_id is None:
        return
    with transaction.atomic():
        publish_event(action.call_id, "supervisor", {"action": "listen_stop", "by": action.username,
                                                "text": reason[:200], "tool_call_id": ""})
