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
Everything is computed in the database: on PostgreSQL in one scan (`figures_in_one_pass`), elsewhere one
query per measure (`figures_by_queries`, the same nearest rank in Python).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    Aggregate,
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Window,
)
from django.db.models.functions import Lag, TruncDate

from audit.filters import depth_cap_q, depth_caps
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
    return qs.filter(call__ended_at__lte=F("created_at") + window, call__status=Call.Status.ENDED).filter(
        ~Exists(later))


def _loops(qs: QuerySet[HandoffEvent]) -> QuerySet[HandoffEvent]:
    order = [F("created_at").asc(), F("id").asc()]
    return qs.order_by().annotate(
        prev_from=Window(Lag("from_agent"), partition_by=[F("call_id")], order_by=order),
        prev_to=Window(Lag("to_agent"), partition_by=[F("call_id")], order_by=order),
    ).filter(prev_from=F("to_agent"), prev_to=F("from_agent"))


def handoff_figures(qs: QuerySet[HandoffEvent], *, per_day: bool = True) -> Figures:
    """The figures of the handoffs `qs` selects: one pass on PostgreSQL, one query per measure elsewhere."""
    if connection.vendor == "postgresql":
        return figures_in_one_pass(qs, per_day=per_day)
    return figures_by_queries(qs, per_day=per_day)


ONE_PASS = """
WITH selected AS ({rows}),
ordered AS (
    SELECT selected.*, LAG(from_agent) OVER call_order AS prev_from, LAG(to_agent) OVER call_order AS prev_to
    FROM selected WINDOW call_order AS (PARTITION BY call_id ORDER BY created_at, id)
)
SELECT GROUPING(from_agent, to_agent) AS all_edges, {all_days} AS all_days, from_agent, to_agent, {day} AS day,
    COUNT(*), COUNT(*) FILTER (WHERE applied), COUNT(*) FILTER (WHERE NOT applied),
    COUNT(*) FILTER (WHERE fallback), COUNT(*) FILTER (WHERE is_depth_cap),
    COUNT(*) FILTER (WHERE prev_from = to_agent AND prev_to = from_agent), COUNT(*) FILTER (WHERE is_ended_after),
    COUNT(DISTINCT call_id),
    PERCENTILE_DISC(0.5) WITHIN GROUP (ORDER BY applied_ms) FILTER (WHERE applied),
    PERCENTILE_DISC(0.95) WITHIN GROUP (ORDER BY applied_ms) FILTER (WHERE applied)
FROM ordered
GROUP BY GROUPING SETS ((from_agent, to_agent), (){days})
"""


def figures_in_one_pass(qs: QuerySet[HandoffEvent], *, per_day: bool = True) -> Figures:
    """The same figures in one scan of the selected handoffs (PostgreSQL: a window for the loops,
    grouping sets for the edges, the totals and the days, percentile_disc for the times)."""
    window = dt.timedelta(seconds=settings.AUDIT_ENDED_AFTER_HANDOFF_SECONDS)
    later = HandoffEvent.objects.filter(call_id=OuterRef("call_id")).filter(
        Q(created_at__gt=OuterRef("created_at")) | Q(created_at=OuterRef("created_at"), id__gt=OuterRef("id")))
    ended_after = Q(call__ended_at__lte=F("created_at") + window, call__status=Call.Status.ENDED) & ~Exists(later)
    rows = qs.order_by().annotate(
        is_depth_cap=ExpressionWrapper(depth_cap_q(depth_caps()), output_field=BooleanField()),
        is_ended_after=ExpressionWrapper(ended_after, output_field=BooleanField()),
        day=TruncDate("created_at"),
    ).values("id", "call_id", "from_agent", "to_agent", "created_at", "applied", "applied_ms", "fallback",
             "is_depth_cap", "is_ended_after", "day")
    sql, params = rows.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        # The planner prices the "ended right after" subquery as if it ran for every row, which
        # would buy a JIT compilation that costs more than the whole scan: off for this statement.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(ONE_PASS.format(rows=sql, days=", (day)" if per_day else "",
                                       all_days="GROUPING(day)" if per_day else "1",
                                       day="day" if per_day else "NULL"), params)
        results = cursor.fetchall()
    edges: dict[tuple[str, str], EdgeFigures] = {}
    totals, calls, days = EdgeFigures("", ""), 0, []
    for all_edges, all_days, source, target, day, n, applied, refused, fallback, depth_cap, loops, ended, \
            distinct_calls, p50, p95 in results:
        figures = EdgeFigures(source or "", target or "", n, applied, refused, fallback, depth_cap, loops, ended,
                              p50, p95)
        if not all_edges:
            edges[(source, target)] = figures
        elif all_days:
            totals, calls = figures, distinct_calls
        else:
            days.append({"day": day, "handoffs": n, "fallback": fallback, "refused": refused})
    loop_counts = [(f"{e.to_agent}→{e.from_agent}→{e.to_agent}", e.loops) for e in edges.values() if e.loops]
    return Figures(
        totals=totals, edges=sorted(edges.values(), key=lambda e: (-e.handoffs, e.from_agent, e.to_agent)),
        loops=sorted(loop_counts, key=lambda item: (-item[1], item[0])), calls=calls,
        calls_ended_after=totals.ended_after, days=sorted(days, key=lambda d: d["day"]),
    )


def figures_by_queries(qs: QuerySet[HandoffEvent], *, per_day: bool = True) -> Figures:
    """The figures with the ORM, one query per measure (any database)."""
    qs = qs.order_by()
    postgres = connection.vendor == "postgresql"
    # Annotation names must not shadow the fields they filter on (applied, fallback).
    counts: dict[str, Any] = {
        "n_handoffs": Count("id"),
        "n_applied": Count("id", filter=Q(applied=True)),
        "n_refused": Count("id", filter=Q(applied=False)),
        "n_fallback": Count("id", filter=Q(fallback=True)),
        "n_depth_cap": Count("id", filter=depth_cap_q(depth_caps())),
    }
    times: dict[str, Any] = {}
    if postgres:
        times = {"n_apply_p50_ms": PercentileDisc("applied_ms", 0.5, filter=Q(applied=True)),
                 "n_apply_p95_ms": PercentileDisc("applied_ms", 0.95, filter=Q(applied=True))}

    def figures_of(row: dict[str, Any], source: str, target: str) -> EdgeFigures:
        values = {key[2:]: row.get(key) for key in (*counts, *times)}
        return EdgeFigures(source, target, **{k: (v or 0) if not k.startswith("apply_") else v
                                              for k, v in values.items()})

    edges = {
        (row["from_agent"], row["to_agent"]): figures_of(row, row["from_agent"], row["to_agent"])
        for row in qs.values("from_agent", "to_agent").annotate(**counts, **times).order_by("from_agent", "to_agent")
    }
    # The totals are the edges' sums; only the percentiles and the calls need a pass of their own.
    overall = qs.aggregate(calls=Count("call_id", distinct=True), **times)
    totals = EdgeFigures("", "", apply_p50_ms=overall.get("n_apply_p50_ms"), apply_p95_ms=overall.get("n_apply_p95_ms"))
    for edge in edges.values():
        for name in ("handoffs", "applied", "refused", "fallback", "depth_cap"):
            setattr(totals, name, getattr(totals, name) + getattr(edge, name))
    if not postgres:
        samples: dict[tuple[str, str], list[int]] = {}
        for source, target, ms in qs.filter(applied=True, applied_ms__isnull=False).values_list(
                "from_agent", "to_agent", "applied_ms"):
            samples.setdefault((source, target), []).append(ms)
        for key, values in samples.items():
            edges[key].apply_p50_ms, edges[key].apply_p95_ms = nearest_rank(values, 0.5), nearest_rank(values, 0.95)
        every = [ms for values in samples.values() for ms in values]
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
        calls=overall["calls"],
        calls_ended_after=totals.ended_after,
    )
    if per_day:
        figures.days = list(
            qs.annotate(day=TruncDate("created_at")).values("day")
            .annotate(handoffs=Count("id"), fallback=Count("id", filter=Q(fallback=True)),
                      refused=Count("id", filter=Q(applied=False)))
            .order_by("day"))
    return figures
