"""Export → import into an empty database → the identical compiled spec (same hash)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agents.compile import compile_scenario
from agents.exchange import export_scenario_json, import_scenario_json
from agents.models import Agent, HandoffEdge, Scenario, Tool


def empty_configuration() -> None:
    HandoffEdge.objects.all().delete()
    Scenario.objects.all().delete()
    Agent.objects.all().delete()
    Tool.objects.all().delete()


@pytest.mark.parametrize("slug", ["retail", "carrier"])
def test_export_then_import_into_an_empty_database_gives_the_same_spec(demo: None, slug: str) -> None:
    before = compile_scenario(slug)
    exported = export_scenario_json(Scenario.objects.get(slug=slug))
    empty_configuration()
    assert not Agent.objects.exists()
    imported = import_scenario_json(exported)
    after = compile_scenario(imported)
    assert after.hash == before.hash
    assert after.to_dict() == before.to_dict()
    assert export_scenario_json(imported) == exported


def test_export_is_self_contained_configuration_not_the_spec(demo: None) -> None:
    doc = json.loads(export_scenario_json(Scenario.objects.get(slug="retail")))
    assert doc["format"] == "contactcenter.scenario" and "hash" not in doc
    assert {a["slug"] for a in doc["agents"]} == {"authentication", "returns", "sales", "human_escalation"}
    assert "verify_customer" in {t["name"] for t in doc["tools"]}
    assert any(h["from"] == "authentication" and h["to"] == "sales" for h in doc["scenario"]["handoffs"])


def test_reimport_updates_in_place(demo: Any) -> None:
    scenario = Scenario.objects.get(slug="retail")
    doc = json.loads(export_scenario_json(scenario))
    doc["scenario"]["max_call_seconds"] = 900
    import_scenario_json(json.dumps(doc))
    assert Scenario.objects.get(slug="retail").max_call_seconds == 900
    assert Scenario.objects.count() == 2
