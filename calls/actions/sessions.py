"""The Realtime sessions (segments) a call runs on."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from calls.models import (
    Call,
    SessionSegment,
)
from calls.publish import publish_event

logger = logging.getLogger(__name__)


def do_open_session(call_id: int, *, model: str, agent: str, gap_ms: int | None = None,
                    previous_end_reason: str = "recreated", first: bool = False) -> SessionSegment:
    """A new Realtime session serves the call (the first one, or a recreated one, which ends the
    previous session with `previous_end_reason`). ``first``: the call's first session, which
    nothing precedes (segment 0, nothing to end or to look up)."""
    now = timezone.now()
    if first:
        with transaction.atomic():
            segment = SessionSegment.objects.create(call_id=call_id, index=0, model=model, agent=agent,
                                                    started_at=now, gap_ms=gap_ms)
            publish_event(call_id, "session", {
                "index": 0, "state": "started", "model": model, "agent": agent, "end_reason": "", "gap_ms": gap_ms,
            })
        return segment
    with transaction.atomic():
        call = Call.objects.select_for_update().only("pk").get(pk=call_id)
        open_segments = SessionSegment.objects.filter(call=call, ended_at__isnull=True)
        open_segments.update(ended_at=now, end_reason=previous_end_reason[:64])
        last = SessionSegment.objects.filter(call=call).order_by("-index").values_list("index", flat=True).first()
        segment = SessionSegment.objects.create(
            call=call, index=0 if last is None else last + 1, model=model, agent=agent, started_at=now, gap_ms=gap_ms
        )
        publish_event(call_id, "session", {
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
        publish_event(call_id, "session", {
            "index": segment.index, "state": "ended", "model": segment.model, "agent": segment.agent,
            "end_reason": segment.end_reason, "gap_ms": None,
        })
    return True

