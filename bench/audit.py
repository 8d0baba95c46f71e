"""Benchmark of the handoff audit over 100,000 handoffs on PostgreSQL.

``python -m bench.audit`` seeds (once; ``--reseed`` to start again) the demo scenarios with three
configuration versions each, ``--calls`` calls over 90 days (each storing its compiled spec, as real
calls do) and ``--handoffs`` handoffs along the scenarios' edges: loops, fallbacks, depth-cap trips,
refusals, calls that end right after a transfer, reasons from a small vocabulary. Then, through the
real views (Django's test client, a staff session, templates rendered):

1. the filtered list (``/audit/``): period, scenario, version, agents, outcome, words in the reason,
   first and a deep page; p50/p95 over every request;
2. the analytics (``/audit/analytics/``): a scenario and a period, a version, everything; p50/p95;
3. the export of every handoff as CSV (``/audit/export.csv``): rows/s and the peak of Python memory
   while it streams (tracemalloc), which stays flat with the row count.

Database: DATABASE_URL must be PostgreSQL (the database is created and migrated if missing; the
benchmark's rows are marked by their scenario slugs' calls and kept for the next run). Seeding
writes rows in bulk, not through calls.actions: it builds a history, it does not replay calls.

The last line is ``RESULT handoffs=... list_p50_ms=... list_p95_ms=... analytics_p50_ms=...
analytics_p95_ms=... export_rows_per_s=... export_peak_mb=...``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import random
import sys
import time
import tracemalloc
from typing import Any

from bench.calls import _prepare_database

REASONS = (
    "caller wants to return the headphones", "refund for a damaged order", "question about the bill",
    "wants to upgrade the plan", "roaming charges abroad", "order has not arrived", "change the delivery address",
    "caller asked for a manager", "verify the account holder", "store opening hours", "cancel the subscription",
    "data allowance used up", "warranty repair for a phone", "discount on a bundle", "lost the SIM card",
)
MARK = "bench-audit"


def _pct(samples: list[float], q: float) -> float:
    """Nearest rank: the smallest sample with at least the share q of samples at or below it."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _setup() -> Any:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contactcenter.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from demo.loader import load_demo

    call_command("migrate", verbosity=0, interactive=False)
    load_demo()


def _versions() -> dict[str, list[Any]]:
    """Three versions per demo scenario: the current one and two with other limits (as if edited)."""
    from agents.compile import compile_scenario
    from agents.models import Scenario, ScenarioVersion
    from agents.versions import record_version
    from realtime.spec import ScenarioSpec

    out: dict[str, list[Any]] = {}
    for scenario in Scenario.objects.filter(slug__in=("retail", "carrier")):
        record_version(scenario)
        versions = list(scenario.versions.order_by("number"))
        base = compile_scenario(scenario).to_dict()
        for depth in (5, 4):
            if len(versions) >= 3:
                break
            body = {k: v for k, v in base.items() if k != "hash"}
            body["limits"] = {**body["limits"], "max_handoff_depth": depth}
            spec = ScenarioSpec.from_dict(body).to_dict()
            versions.append(ScenarioVersion.objects.create(
                scenario=scenario, scenario_slug=scenario.slug, number=versions[-1].number + 1,
                spec_hash=spec["hash"], spec=spec, source=ScenarioVersion.Source.ADMIN, author_name=MARK))
        out[scenario.slug] = versions[:3]
    return out


def _seed(calls: int, handoffs: int, reseed: bool) -> int:
    from django.db import connection

    from calls.models import Call, HandoffEvent

    marked = Call.objects.filter(caller_id__startswith=MARK)
    existing = HandoffEvent.objects.filter(call__caller_id__startswith=MARK).count()
    if existing >= handoffs and not reseed:
        return existing
    HandoffEvent.objects.filter(call__caller_id__startswith=MARK).delete()
    marked.delete()
    versions = _versions()
    rng = random.Random(14)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    per_call = handoffs / calls
    made = 0
    batch_calls: list[Call] = []
    plans: list[list[tuple[str, str, int, bool]]] = []
    index = 0
    while made < handoffs:  # about `calls` calls, as many as it takes to reach `handoffs`
        slug = "retail" if index % 3 else "carrier"
        version = versions[slug][min(2, int(rng.random() * 3))]
        spec = version.spec
        edges: dict[str, list[str]] = {}
        for agent, doc in spec["agents"].items():
            edges[agent] = [t["transfer_to"] for t in doc.get("tools") or [] if t.get("kind") == "transfer"]
        count = min(max(1, min(9, round(rng.gauss(per_call, 1.4)))), handoffs - made)
        current, plan = spec["root_agent"], []
        cap = spec["limits"]["max_handoff_depth"]
        fallback_agent = spec.get("fallback_agent") or current
        for depth in range(1, count + 1):
            options = edges.get(current) or [spec["root_agent"]]
            target = rng.choice(options)
            fallback = depth > cap or rng.random() < 0.03
            if fallback:
                target = fallback_agent
            plan.append((current, target, depth, fallback))
            current = target
        made += len(plan)
        started = now - dt.timedelta(seconds=rng.uniform(0, 90 * 86400))
        batch_calls.append(Call(
            scenario_id=version.scenario_id, scenario_slug=slug, scenario_version=version, spec=spec,
            spec_hash=spec["hash"], channel=rng.choice(("browser", "twilio", "sip")),
            caller_id=f"{MARK}-{index}", status=Call.Status.ENDED, started_at=started,
            # the last handoff is at 10 + 30 * (n - 1) s: some calls end right after it
            ended_at=started + dt.timedelta(seconds=10 + 30 * (len(plan) - 1) + rng.choice((3, 8, 40, 120, 300))),
            end_reason="caller_hung_up", current_agent=plan[-1][1]))
        plans.append(plan)
        index += 1
        if len(batch_calls) >= 1000:
            _flush(batch_calls, plans, rng)
            batch_calls, plans = [], []
    if batch_calls:
        _flush(batch_calls, plans, rng)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE calls_call; ANALYZE calls_handoffevent; ANALYZE agents_scenarioversion")
    return HandoffEvent.objects.filter(call__caller_id__startswith=MARK).count()


def _flush(calls: list[Any], plans: list[list[tuple[str, str, int, bool]]], rng: random.Random) -> None:
    from calls.models import Call, HandoffEvent

    Call.objects.bulk_create(calls, batch_size=500)
    rows = []
    for call, plan in zip(calls, plans, strict=True):
        for step, (source, target, depth, fallback) in enumerate(plan):
            roll = rng.random()
            applied = None if roll < 0.01 else roll >= 0.03  # 1% no answer, 2% refused
            rows.append(HandoffEvent(
                call_id=call.pk, from_agent=source, to_agent=target, reason=rng.choice(REASONS), depth=depth,
                fallback=fallback, applied=applied,
                applied_ms=int(rng.lognormvariate(5.0, 0.5)) if applied is not None else None,
                apply_error="" if applied is not False else "invalid session", duration_ms=rng.randint(1, 30),
                context={"summary": "the caller's situation in a sentence"},
                created_at=call.started_at + dt.timedelta(seconds=10 + 30 * step)))
    HandoffEvent.objects.bulk_create(rows, batch_size=2000)


def _timed(client: Any, url: str, params: dict[str, Any]) -> float:
    started = time.perf_counter()
    response = client.get(url, params)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise SystemExit(f"{url} {params} answered {response.status_code}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--handoffs", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=25_000)
    parser.add_argument("--repeat", type=int, default=5, help="Requests per case.")
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args(argv)

    description, _ = _prepare_database()
    if "postgresql" not in description:
        print("bench.audit measures PostgreSQL: set DATABASE_URL=postgres://...", file=sys.stderr)
        return 2
    _setup()
    from django.contrib.auth import get_user_model
    from django.test import Client

    from agents.models import ScenarioVersion

    started = time.perf_counter()
    total = _seed(args.calls, args.handoffs, args.reseed)
    print(f"database: {description}; {total} handoffs ready in {time.perf_counter() - started:.1f} s")

    user, _ = get_user_model().objects.get_or_create(username=f"{MARK}-supervisor", defaults={"is_staff": True})
    client = Client()
    client.force_login(user)
    today = dt.date.today()
    month = {"start": str(today - dt.timedelta(days=29)), "end": str(today)}
    version = ScenarioVersion.objects.filter(scenario_slug="retail").order_by("number").first()
    assert version is not None
    list_cases = [
        ("everything, first page", {}),
        ("everything, page 200", {"page": 200}),
        ("retail, 30 days", {"scenario": "retail", **month}),
        ("retail, 30 days, fallback", {"scenario": "retail", "outcome": "fallback", **month}),
        ("retail, depth cap", {"scenario": "retail", "outcome": "depth_cap"}),
        ("retail, refused", {"scenario": "retail", "outcome": "refused"}),
        ("words in the reason", {"q": "refund order"}),
        ("version, source and target", {"version": version.pk, "source": "authentication", "target": "returns"}),
        ("carrier, 30 days, words", {"scenario": "carrier", "q": "roaming", **month}),
    ]
    analytics_cases = [
        ("retail, 30 days", {"scenario": "retail", **month}),
        ("carrier, 30 days", {"scenario": "carrier", **month}),
        ("retail, one version, 90 days", {"scenario": "retail", "version": version.pk}),
        ("retail, 7 days, words", {"scenario": "retail", "q": "refund", "start": str(today - dt.timedelta(days=6))}),
        ("everything", {}),
    ]
    results: dict[str, list[float]] = {"list": [], "analytics": []}
    for kind, url, cases in (("list", "/audit/", list_cases), ("analytics", "/audit/analytics/", analytics_cases)):
        for name, params in cases:
            _timed(client, url, params)  # warm
            samples = [_timed(client, url, params) for _ in range(args.repeat)]
            results[kind] += samples
            print(f"{kind:9} {name:32} p50 {_pct(samples, 0.5):7.1f} ms  max {max(samples):7.1f} ms")

    tracemalloc.start()
    started = time.perf_counter()
    response = client.get("/audit/export.csv")
    lines = sum(1 for _ in response.streaming_content) - 1
    export_s = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"export    {lines} rows as CSV in {export_s:.1f} s, peak Python memory {peak / 1e6:.1f} MB")

    figures = {
        "handoffs": total,
        "list_p50_ms": round(_pct(results["list"], 0.5), 1), "list_p95_ms": round(_pct(results["list"], 0.95), 1),
        "analytics_p50_ms": round(_pct(results["analytics"], 0.5), 1),
        "analytics_p95_ms": round(_pct(results["analytics"], 0.95), 1),
        "export_rows_per_s": round(lines / export_s), "export_peak_mb": round(peak / 1e6, 1),
    }
    print("RESULT " + " ".join(f"{k}={v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
