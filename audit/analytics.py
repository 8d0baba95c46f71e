"""Per-edge figures of a set of handoffs (a scenario and a period, or any filtered set).

Definitions (the page states them too):
- fallback rate: fallback handoffs / handoffs;
- refusal rate: handoffs the Realtime server refused / handoffs it answered (applied or refused);
- depth-cap trips: fallback handoffs past the call's max_handoff_depth (`filters.depth_cap_q`);
- loops: a handoff B→A right after A→B in the same call (among the handoffs selected);
- time to take effect: `applied_ms` of applied handoffs (session.update sent → session.updated),
  p50/p95 by nearest rank (the smallest value with at least that share of values at or below it);
- ended right after a handoff: the call's last handoff is in the set and the call ended within
  AUDIT_ENDED_AFTER_HANDOFF_SECONDS of it.
Everything is computed in the database (PostgreSQL: percentile_disc; SQLite: the same rank in Python).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Aggregate, Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Window
from django.db.models.functions import Lag, TruncDate

from audit.filters import depth_cap_q
from calls.models import Call, HandoffEvent


class PercentileDisc(Aggregate):
    """PostgreSQL's percentile_disc(fraction) WITHIN GROUP (ORDER BY expression)."""

    function = "PERCENTILE_DISC"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = IntegerField()

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        super().__init__(expression, fraction=float(fraction), **extra)


def nearest_rank(values: list[int], fraction: float) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


@dataclass
class EdgeFigures:
    from_agent: str
    to_agent: str
    handoffs: int = 0
    applied: int = 0
    refused: int = 0
    fallback: int = 0
    depth_cap: int = 0
    loops: int = 0
    ended_after: int = 0
    apply_p50_ms: int | None = None
    apply_p95_ms: int | None = None

    @property
    def fallback_rate(self) -> float | None:
        return rate(self.fallback, self.handoffs)

    @property
    def refusal_rate(self) -> float | None:
        return rate(self.refused, self.applied + self.refused)

    @property
    def fallback_pct(self) -> str:
        return percent(self.fallback_rate)

    @property
    def refusal_pct(self) -> str:
        return percent(self.refusal_rate)


@dataclass
class Figures:
    totals: EdgeFigures
    edges: list[EdgeFigures]
    loops: list[tuple[str, int]] = field(default_factory=list)  # "A→B→A", count
    calls: int = 0
    calls_ended_after: int = 0
    days: list[dict[str, Any]] = field(default_factory=list)


def _ended_after(qs: QuerySet[HandoffEvent]) -> QuerySet[HandoffEvent]:
    """Handoffs of qs that were their call's last, in a call that ended within the window after."""
    window = dt.timedelta(seconds=settings.AUDIT_ENDED_AFTER_HANDOFF_SECONDS)
    later = HandoffEvent.objects.filter(call_id=OuterRef("call_id")).filter(
        Q(created_at__gt=OuterRef("created_at")) | Q(created_at=OuterRef("created_at"), id__gt=OuterRef("id")))
    return (qs.filter(call__status=Call.Status.ENDED, call__ended_at__lte=F("created_at") + window)
            .exclude(Exists(later)))


def _loops(qs: QuerySet[HandoffEvent]) -> QuerySet[HandoffEvent]:
    order = [F("created_at").asc(), F("id").asc()]
    return qs.order_by().annotate(
        prev_from=Window(Lag("from_agent"), partition_by=[F("call_id")], order_by=order),
        prev_to=Window(Lag("to_agent"), partition_by=[F("call_id")], order_by=order),
    ).filter(prev_from=F("to_agent"), prev_to=F("from_agent"))


def handoff_figures(qs: QuerySet[HandoffEvent], *, per_day: bool = True) -> Figures:
    qs = qs.order_by()
    postgres = connection.vendor == "postgresql"
    # Annotation names must not shadow the fields they filter on (applied, fallback).
    counts: dict[str, Any] = {
        "n_handoffs": Count("id"),
        "n_applied": Count("id", filter=Q(applied=True)),
        "n_refused": Count("id", filter=Q(applied=False)),
        "n_fallback": Count("id", filter=Q(fallback=True)),
        "n_depth_cap": Count("id", filter=depth_cap_q()),
    }
    if postgres:
        counts["n_apply_p50_ms"] = PercentileDisc("applied_ms", 0.5, filter=Q(applied=True))
        counts["n_apply_p95_ms"] = PercentileDisc("applied_ms", 0.95, filter=Q(applied=True))

    def figures_of(row: dict[str, Any], source: str, target: str) -> EdgeFigures:
        values = {key[2:]: row.get(key) for key in counts}
        return EdgeFigures(source, target, **{k: (v or 0) if not k.startswith("apply_") else v
                                              for k, v in values.items()})

    edges = {
        (row["from_agent"], row["to_agent"]): figures_of(row, row["from_agent"], row["to_agent"])
        for row in qs.values("from_agent", "to_agent").annotate(**counts).order_by("from_agent", "to_agent")
    }
    totals = figures_of(qs.aggregate(**counts), "", "")
    if not postgres:
        times: dict[tuple[str, str], list[int]] = {}
        for source, target, ms in qs.filter(applied=True, applied_ms__isnull=False).values_list(
                "from_agent", "to_agent", "applied_ms"):
            times.setdefault((source, target), []).append(ms)
        for key, values in times.items():
            edges[key].apply_p50_ms, edges[key].apply_p95_ms = nearest_rank(values, 0.5), nearest_rank(values, 0.95)
        every = [ms for values in times.values() for ms in values]
        totals.apply_p50_ms, totals.apply_p95_ms = nearest_rank(every, 0.5), nearest_rank(every, 0.95)

    loops: Counter[str] = Counter()
    for source, target in _loops(qs).values_list("from_agent", "to_agent"):
        edges[(source, target)].loops += 1
        loops[f"{target}→{source}→{target}"] += 1
    totals.loops = sum(loops.values())

    ended = _ended_after(qs)
    for row in ended.values("from_agent", "to_agent").annotate(n=Count("id")).order_by():
        edges[(row["from_agent"], row["to_agent"])].ended_after = row["n"]
    totals.ended_after = sum(e.ended_after for e in edges.values())

    figures = Figures(
        totals=totals, edges=sorted(edges.values(), key=lambda e: (-e.handoffs, e.from_agent, e.to_agent)),
        loops=sorted(loops.items(), key=lambda item: (-item[1], item[0])),
        calls=qs.values("call_id").distinct().count(),
        calls_ended_after=totals.ended_after,
    )
    if per_day:
        figures.days = list(
            qs.annotate(day=TruncDate("created_at")).values("day")
            .annotate(handoffs=Count("id"), fallback=Count("id", filter=Q(fallback=True)),
                      refused=Count("id", filter=Q(applied=False)))
            .order_by("day"))
    return figures
