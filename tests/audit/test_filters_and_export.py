"""The audit list's filters select exactly the expected handoffs of the seeded set, and the CSV and
JSON Lines exports (view and command) hold exactly the rows the filter selects, field by field."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from audit.export import COLUMNS
from calls.models import HandoffEvent
from tests.audit.conftest import PERIOD, Seeded


def listed(client: Client, **params: Any) -> list[int]:
    response = client.get("/audit/", params)
    assert response.status_code == 200, response.content[:500]
    return [int(v) for v in response.context["rows"] and [r["id"] for r in response.context["rows"]]]


def names(seeded: Seeded, ids: list[int]) -> set[str]:
    by_id = {h.pk: name for name, h in seeded.handoffs.items()}
    return {by_id[i] for i in ids}


@pytest.fixture
def client(supervisor: Any) -> Client:
    c = Client()
    c.force_login(supervisor)
    return c


CASES = [
    ({}, {"c1a", "c1b", "c2a", "c3a", "c3b", "c3c", "c4a", "c5a", "c6a"}),
    (PERIOD, {"c1a", "c1b", "c2a", "c3a", "c3b", "c3c", "c4a", "c5a"}),
    ({"start": "2026-03-11"}, {"c3a", "c3b", "c3c", "c4a", "c5a"}),
    ({"end": "2026-03-10"}, {"c1a", "c1b", "c2a", "c6a"}),
    ({"scenario": "other"}, {"c5a"}),
    ({"scenario": "shop", **PERIOD}, {"c1a", "c1b", "c2a", "c3a", "c3b", "c3c", "c4a"}),
    ({"source": "front", "target": "billing"}, {"c1a", "c2a", "c6a"}),
    ({"target": "human"}, {"c3c", "c4a"}),
    ({"outcome": "applied", **PERIOD, "scenario": "shop"}, {"c1a", "c1b", "c3a", "c3b", "c3c"}),
    ({"outcome": "refused"}, {"c2a"}),
    ({"outcome": "pending"}, {"c4a"}),
    ({"outcome": "fallback"}, {"c3c", "c4a"}),
    ({"outcome": "depth_cap"}, {"c3c"}),
    ({"q": "REFUND"}, {"c1a", "c3b", "c5a", "c6a"}),
    ({"q": "refund bill"}, {"c1a", "c5a", "c6a"}),
]


def test_filters_select_exactly_the_expected_handoffs(seeded: Seeded, client: Client) -> None:
    for params, expected in CASES:  # one seeded set for every case
        ids = listed(client, **params)
        assert names(seeded, ids) == expected, params
        assert len(ids) == len(expected)
        assert ids == sorted(ids, key=lambda i: (HandoffEvent.objects.get(pk=i).created_at, i), reverse=True)


def test_version_filter(seeded: Seeded, client: Client) -> None:
    assert names(seeded, listed(client, version=seeded.v1.pk)) == {"c1a", "c1b", "c2a"}
    # c6 ran on the second version too (it is only outside the period)
    assert names(seeded, listed(client, scenario="shop", version=seeded.v2.pk)) == {"c3a", "c3b", "c3c", "c4a", "c6a"}


def test_each_row_opens_its_call_timeline(seeded: Seeded, client: Client) -> None:
    html = client.get("/audit/", {"outcome": "depth_cap"}).content.decode()
    call = seeded.calls["c3"]
    assert f'<a href="/dashboard/calls/{call.pk}/" title="Open the call\'s timeline">#{call.pk}</a>' in html
    assert client.get(f"/dashboard/calls/{call.pk}/").status_code == 200


def test_bad_filters_are_refused_with_a_reason(seeded: Seeded, client: Client) -> None:
    for params, problem in [
        ({"start": "2026-03-12", "end": "2026-03-10"}, b"The last day is before the first day."),
        ({"start": "yesterday"}, b"Enter a valid date."),
        ({"outcome": "lost"}, b"Select a valid choice."),
        ({"version": "999999"}, b"No configuration version has this id."),
        ({"scenario": "other", "version": seeded.v1.pk}, b"This version belongs to the scenario shop."),
        ({"q": "a b c d e f g h i"}, b"Search for at most 8 words."),
    ]:
        for url in ("/audit/", "/audit/analytics/", "/audit/export.csv", "/audit/export.jsonl"):
            response = client.get(url, params)
            assert response.status_code == 400 and problem in response.content, (url, params)


def expected_rows(ids: set[int]) -> dict[int, dict[str, Any]]:
    rows = {}
    for h in HandoffEvent.objects.filter(pk__in=ids).select_related("call", "call__scenario_version"):
        rows[h.pk] = {
            "id": h.pk, "created_at": h.created_at.isoformat(), "call_id": h.call_id,
            "scenario": h.call.scenario_slug, "version": h.call.scenario_version.number,
            "spec_hash": h.call.spec_hash, "from_agent": h.from_agent, "to_agent": h.to_agent, "reason": h.reason,
            "depth": h.depth, "fallback": h.fallback, "applied": h.applied, "applied_ms": h.applied_ms,
            "apply_error": h.apply_error, "duration_ms": h.duration_ms, "voice_kept": h.voice_kept,
            "context": h.context, "call_ended_at": h.call.ended_at.isoformat() if h.call.ended_at else None,
            "call_end_reason": h.call.end_reason,
        }
    return rows


def streamed(response: Any) -> str:
    assert response.streaming
    return b"".join(response.streaming_content).decode()


def test_jsonl_export_matches_the_rows(seeded: Seeded, client: Client) -> None:
    for params, expected in (CASES[0], CASES[5], CASES[12], CASES[14]):
        response = client.get("/audit/export.jsonl", params)
        assert response.status_code == 200 and response["Content-Type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in streamed(response).splitlines()]
        assert [row["id"] for row in lines] == listed(client, **params)
        want = expected_rows({seeded.handoffs[n].pk for n in expected})
        assert len(lines) == len(want)
        for row in lines:
            assert list(row) == list(COLUMNS)
            cap = row.pop("depth_cap")
            assert cap == (row["id"] == seeded.handoffs["c3c"].pk)
            assert row == want[row["id"]]


def test_csv_export_matches_the_rows(seeded: Seeded, client: Client) -> None:
    params = {"scenario": "shop", **PERIOD}
    response = client.get("/audit/export.csv", params)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(streamed(response))))
    assert [int(r["id"]) for r in rows] == listed(client, **params)
    want = expected_rows({int(r["id"]) for r in rows})
    for row in rows:
        expected = want[int(row["id"])]
        assert row["from_agent"] == expected["from_agent"] and row["to_agent"] == expected["to_agent"]
        assert row["reason"] == expected["reason"] and row["created_at"] == expected["created_at"]
        assert row["applied"] == {True: "True", False: "False", None: ""}[expected["applied"]]
        assert row["version"] == str(expected["version"]) and row["call_id"] == str(expected["call_id"])
        assert json.loads(row["context"]) == expected["context"]
        assert row["depth_cap"] == str(int(row["id"]) == seeded.handoffs["c3c"].pk)


def test_csv_cells_never_start_a_formula(seeded: Seeded, client: Client) -> None:
    HandoffEvent.objects.filter(pk=seeded.handoffs["c5a"].pk).update(reason='=HYPERLINK("http://x","y")')
    rows = list(csv.DictReader(io.StringIO(streamed(client.get("/audit/export.csv", {"scenario": "other"})))))
    assert rows[0]["reason"] == "'=HYPERLINK(\"http://x\",\"y\")"


def test_the_command_writes_the_same_export(seeded: Seeded, client: Client, tmp_path: Path) -> None:
    target = tmp_path / "handoffs.jsonl"
    call_command("exporthandoffs", "--format", "jsonl", "--scenario", "shop", "--from", "2026-03-10",
                 "--to", "2026-03-11", "--outcome", "fallback", "-o", str(target))
    via_view = streamed(client.get("/audit/export.jsonl", {"scenario": "shop", "outcome": "fallback", **PERIOD}))
    assert target.read_bytes().decode() == via_view and len(via_view.splitlines()) == 2
    assert not list(tmp_path.glob(".*.part"))

    csv_target = tmp_path / "handoffs.csv"
    call_command("exporthandoffs", "--reason", "refund bill", "-o", str(csv_target))
    assert csv_target.read_bytes().decode() == streamed(client.get("/audit/export.csv", {"q": "refund bill"}))

    with pytest.raises(CommandError, match="slug"):
        call_command("exporthandoffs", "--scenario", "Not A Slug!")
