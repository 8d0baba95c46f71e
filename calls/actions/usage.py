"""Usage and cost, voice-to-voice latency and caller idle time."""

from __future__ import annotations

import logging
import statistics
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F

from calls.models import (
    Call,
)
from calls.publish import CALL_BULKY_FIELDS, publish_event, waiting_approvals

logger = logging.getLogger(__name__)


LATENCY_SAMPLES_KEPT = 500


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
        call = Call.objects.select_for_update().defer(*CALL_BULKY_FIELDS).annotate(pending=waiting_approvals()).get(
            pk=call_id)
        totals = dict(call.usage or {})
        totals[agent] = add_usage(totals.get(agent) or {}, usage)
        call.usage = totals
        call.cost = (call.cost or Decimal(0)) + cost
        call.save(update_fields=["usage", "cost"])
        fields = {"agent": agent, "usage": usage, "cost": str(cost), "call_cost": str(call.cost),
                  "call_local": call.has_local_usage}
        places = Call._meta.get_field("cost").decimal_places  # type: ignore[union-attr]
        call.cost = call.cost.quantize(Decimal(1).scaleb(-places))  # the dashboard row, as the database keeps it
        publish_event(call_id, "usage", fields, row=call)
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
        publish_event(call_id, "latency", {"voice_to_voice_ms": int(voice_to_voice_ms), "p50_ms": p50, "p95_ms": p95})
    return p50, p95


def do_record_caller_idle(call_id: int, *, ms: int, agent: str = "", item_id: str = "") -> int:
    """The caller stayed silent past the agent's idle timeout (the server then prompts them): count
    it on the call and publish `caller.idle`. Returns the call's idle count."""
    with transaction.atomic():
        Call.objects.filter(pk=call_id).update(idle_prompts=F("idle_prompts") + 1)
        count = Call.objects.filter(pk=call_id).values_list("idle_prompts", flat=True).get()
        publish_event(call_id, "caller.idle", {
            "ms": max(0, int(ms)), "agent": agent, "item_id": item_id, "idle_prompts": count,
        })
    return count

