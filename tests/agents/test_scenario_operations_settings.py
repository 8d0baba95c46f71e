"""Scenario-level operations settings travel in the compiled spec: the failover provider and the
escalation webhook; they are exported and validated like the rest."""

from __future__ import annotations

import json

import pytest

from agents.compile import compile_scenario
from agents.exchange import ImportRefused, export_scenario_json, import_scenario_json
from agents.models import Scenario


def test_the_failover_provider_is_in_the_compiled_spec(demo: None) -> None:
    assert compile_scenario("retail").failover_provider == "offline"
    assert compile_scenario("carrier").failover_provider == ""


def test_changing_it_changes_the_spec_hash(demo: None) -> None:
    before = compile_scenario("retail").hash
    Scenario.objects.filter(slug="retail").update(failover_provider="")
    assert compile_scenario("retail").hash != before


def test_an_unknown_provider_is_refused_on_import(demo: None) -> None:
    doc = json.loads(export_scenario_json(Scenario.objects.get(slug="retail")))
    doc["scenario"]["failover_provider"] = "somewhere-else"
    with pytest.raises(ImportRefused) as refused:
        import_scenario_json(json.dumps(doc))
    assert any("failover_provider" in p or "somewhere-else" in p for p in refused.value.problems), refused.value.problems
    assert Scenario.objects.get(slug="retail").failover_provider == "offline"


def test_the_escalation_webhook_is_in_the_compiled_spec(demo: None) -> None:
    Scenario.objects.filter(slug="retail").update(escalation_webhook_url="https://crm.example.com/escalations")
    assert compile_scenario("retail").escalation_webhook_url == "https://crm.example.com/escalations"
    assert compile_scenario("carrier").escalation_webhook_url == ""
