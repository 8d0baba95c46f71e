"""Retention: after RETENTION_DAYS, an ended call keeps its audit metadata (handoffs, tool calls
with their arguments redacted per tool, guardrail trips, escalations, usage and costs) and loses
the caller's words (transcript, summaries' text, what travelled with handoffs). Each call is
claimed once (`calls.actions.do_remove_words`), so runs can overlap or repeat safely."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.utils import timezone

from agents.models import Tool
from calls import actions
from calls.models import Call

logger = logging.getLogger(__name__)

# A tool that no longer exists (and the generated transfer tools, whose arguments carry the
# conversation summary) has every argument value removed.
UNKNOWN_TOOL_REDACTION = ["*"]


def tool_redactions() -> dict[str, list[str]]:
    return {name: list(names or []) for name, names in Tool.objects.values_list("name", "redact_arguments")}


def apply_retention(*, days: int | None = None, now: dt.datetime | None = None, limit: int | None = None) -> dict[str, Any]:
    """Remove the caller's words from calls that ended more than `days` ago (RETENTION_DAYS; 0 or
    less: nothing is removed). At most `limit` calls (RETENTION_BATCH) per run. Returns the counts."""
    days = settings.RETENTION_DAYS if days is None else days
    limit = settings.RETENTION_BATCH if limit is None else limit
    if days <= 0:
        logger.info("retention: RETENTION_DAYS is %s, nothing removed", days)
        return {"calls": 0, "days": days}
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    due = list(Call.objects.filter(status=Call.Status.ENDED, ended_at__lt=cutoff, words_removed_at__isnull=True)
               .order_by("ended_at").values_list("pk", flat=True)[:limit])
    redactions = tool_redactions()
    totals: dict[str, Any] = {"calls": 0, "days": days}
    for call_id in due:
        counts = actions.do_remove_words(call_id, redactions=redactions, default_redaction=UNKNOWN_TOOL_REDACTION)
        if counts is None:
            continue  # another run took it
        totals["calls"] += 1
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
    logger.info("retention: %s calls ended before %s had their words removed (%s)", totals["calls"],
                cutoff.isoformat(), ", ".join(f"{k}={v}" for k, v in totals.items() if k not in ("calls", "days")))
    return totals
