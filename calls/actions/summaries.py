"""Rolling and post-call summaries."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Q

from calls.models import (
    Call,
    Summary,
)
from calls.publish import publish_event

logger = logging.getLogger(__name__)


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
        publish_event(call_id, "summary", {"kind": kind, "text": text, "disposition": disposition})
    return summary


#: The post-call summary of a call in which nobody said anything.
NO_CONVERSATION = "The caller said nothing."


def write_no_conversation(call_id: int) -> dict[str, str]:
    """Write the no-words post-call summary (inside the caller's transaction, which ends the call:
    so it is written once); the fields of its `summary` event, for the caller to publish."""
    Summary.objects.create(call_id=call_id, kind=Summary.Kind.POST_CALL, text=NO_CONVERSATION,
                           disposition="no_conversation")
    return {"kind": Summary.Kind.POST_CALL, "text": NO_CONVERSATION, "disposition": "no_conversation"}
