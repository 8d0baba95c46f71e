"""Per-edge analytics on the seeded set (tests/audit/conftest.py), every figure worked out by hand
from the calls described there."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from audit.analytics import handoff_figures, nearest_rank
from audit.filters import HandoffFilter
from tests.audit.conftest import PERIOD, Seeded


def figures_for(**data: Any) -> Any:
    form = HandoffFilter(data)
    assert form.is_valid(), form.errors
    return handoff_figures(form.queryset())


def test_nearest_rank_percentiles() -> None:
    assert nearest_rank([100, 300, 200, 250, 400], 0.5) == 250  # 3rd of 5
    assert nearest_rank([100, 300, 200, 250, 400], 0.95) == 400  # ceil(4.75) = 5th
    assert nearest_rank([7], 0.95) == 7 and nearest_rank([], 0.5) is None


def test_scenario_and_period_figures(seeded: Seeded) -> None:
    f = figures_for(scenario="shop", **PERIOD)
    t = f.totals
    # c1: 2, c2: 1, c3: 3, c4: 1 (c5 is another scenario, c6 outside the period)
    assert (t.handoffs, f.calls) == (7, 4)
    assert (t.applied, t.refused) == (5, 1)  # c4a has no answer yet
    assert t.fallback == 2 and t.fallback_rate == pytest.approx(2 / 7)  # c3c, c4a
    assert t.refusal_rate == pytest.approx(1 / 6)  # refused / answered
    assert t.depth_cap == 1  # c3c: depth 3 > cap 2; c4a is a fallback within the cap
    assert t.loops == 1 and f.loops == [("front→billing→front", 1)]  # c1
    # applied_ms of applied handoffs: 100, 300, 200, 250, 400 -> sorted 100 200 250 300 400
    assert (t.apply_p50_ms, t.apply_p95_ms) == (250, 400)
    # c1 ended 5 s after billing→front, c3 3 s after billing→human; c2 60 s after (not), c4 is live
    assert f.calls_ended_after == 2

    edges = {(e.from_agent, e.to_agent): e for e in f.edges}
    assert set(edges) == {("front", "billing"), ("billing", "front"), ("front", "returns"),
                          ("returns", "billing"), ("billing", "human"), ("front", "human")}
    fb = edges[("front", "billing")]
    assert (fb.handoffs, fb.applied, fb.refused, fb.fallback) == (2, 1, 1, 0)
    assert fb.refusal_rate == pytest.approx(1 / 2) and (fb.apply_p50_ms, fb.apply_p95_ms) == (100, 100)
    assert (edges[("billing", "front")].loops, edges[("billing", "front")].ended_after) == (1, 1)
    bh = edges[("billing", "human")]
    assert (bh.fallback, bh.depth_cap, bh.ended_after, bh.apply_p95_ms) == (1, 1, 1, 400)
    fh = edges[("front", "human")]
    assert (fh.fallback, fh.depth_cap, fh.applied, fh.refused, fh.fallback_rate) == (1, 0, 0, 0, 1.0)
    assert fh.refusal_rate is None  # nothing answered on this edge
    assert sum(d["handoffs"] for d in f.days) == 7 and [d["handoffs"] for d in f.days] == [3, 4]


def test_version_figures(seeded: Seeded) -> None:
    first = figures_for(scenario="shop", version=seeded.v1.pk, **PERIOD)
    assert (first.totals.handoffs, first.calls, first.totals.refused, first.totals.loops) == (3, 2, 1, 1)
    assert (first.totals.apply_p50_ms, first.totals.apply_p95_ms) == (100, 300)
    second = figures_for(version=seeded.v2.pk, **PERIOD)
    assert (second.totals.handoffs, second.calls, second.totals.fallback, second.totals.depth_cap) == (4, 2, 2, 1)
    assert (second.totals.apply_p50_ms, second.totals.apply_p95_ms) == (250, 400)  # 200 250 400: 2nd, 3rd


@pytest.mark.django_db
def test_analytics_page_shows_the_figures_and_the_graph(seeded: Seeded, supervisor: Any) -> None:
    client = Client()
    client.force_login(supervisor)
    response = client.get("/audit/analytics/", {"scenario": "shop", **PERIOD})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-figure="handoffs">7<' in html
    assert "28.6%" in html and "16.7%" in html  # 2/7 fallback, 1/6 refused
    assert 'data-from="front" data-to="billing" data-count="2"' in html
    assert 'data-from="front" data-to="human" data-count="1"' in html  # taken, not configured
    assert "front→billing→front: 1" in html
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="audit-days"' in html


@pytest.mark.django_db
def test_compare_page_puts_two_versions_side_by_side(seeded: Seeded, supervisor: Any) -> None:
    client = Client()
    client.force_login(supervisor)
    response = client.get("/audit/compare/", {"scenario": "shop", "a": seeded.v1.pk, "b": seeded.v2.pk, **PERIOD})
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-version="{seeded.v1.pk}"' in html and f'data-version="{seeded.v2.pk}"' in html
    assert 'data-figure="handoffs">3<' in html and 'data-figure="handoffs">4<' in html
    assert f"/versions/diff/?a={seeded.v1.pk}&amp;b={seeded.v2.pk}" in html

    mixed = client.get("/audit/compare/", {"a": seeded.v1.pk, "b": 999999})
    assert mixed.status_code == 400 and b"Choose the second version" in mixed.content


def test_the_one_pass_query_and_the_portable_queries_agree(seeded: Seeded) -> None:
    """PostgreSQL computes the figures in one scan; other databases with one query per measure."""
    from audit.analytics import figures_by_queries, figures_in_one_pass

    for data in ({}, {"scenario": "shop", **PERIOD}, {"version": seeded.v1.pk}, {"q": "refund"},
                 {"outcome": "fallback"}):
        form = HandoffFilter(data)
        assert form.is_valid()
        one, many = figures_in_one_pass(form.queryset()), figures_by_queries(form.queryset())
        assert one.totals == many.totals and one.edges == many.edges, data
        assert (one.loops, one.calls, one.calls_ended_after, one.days) == (
            many.loops, many.calls, many.calls_ended_after, many.days), data
