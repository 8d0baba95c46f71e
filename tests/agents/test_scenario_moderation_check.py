"""The scenario's moderation check: an admin setting that travels in the compiled spec's guardrails
(and its hash), in exports and imports; an older export without it imports with the check off."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.urls import reverse

from agents.compile import compile_scenario
from agents.exchange import ImportRefused, export_scenario_json, import_scenario_json
from agents.models import Agent, HandoffEdge, Scenario, Tool
from realtime.spec import ScenarioSpec

from .conftest import make_agent, scenario_post_data


def empty_configuration() -> None:
    HandoffEdge.objects.all().delete()
    Scenario.objects.all().delete()
    Agent.objects.all().delete()
    Tool.objects.all().delete()


def test_off_by_default_and_absent_from_the_spec(demo: None) -> None:
    assert not Scenario.objects.get(slug="retail").moderation_check
    spec = compile_scenario("retail")
    assert spec.guardrails.moderation is False
    assert "moderation" not in spec.to_dict()["guardrails"]  # specs stored before the setting keep their hash


def test_turning_it_on_goes_into_the_spec_and_changes_the_hash(demo: None) -> None:
    before = compile_scenario("retail")
    Scenario.objects.filter(slug="retail").update(moderation_check=True)
    after = compile_scenario("retail")
    assert after.guardrails.moderation is True
    assert after.to_dict()["guardrails"]["moderation"] is True
    assert after.hash != before.hash
    again = ScenarioSpec.from_json(after.to_json())
    assert again.guardrails.moderation is True and again.hash == after.hash
    Scenario.objects.filter(slug="retail").update(moderation_check=False)
    assert compile_scenario("retail").hash == before.hash


def test_export_then_import_keeps_it(demo: None) -> None:
    Scenario.objects.filter(slug="carrier").update(moderation_check=True)
    before = compile_scenario("carrier")
    exported = export_scenario_json(Scenario.objects.get(slug="carrier"))
    assert json.loads(exported)["scenario"]["moderation_check"] is True
    empty_configuration()
    imported = import_scenario_json(exported)
    assert imported.moderation_check is True
    assert compile_scenario(imported).hash == before.hash
    assert export_scenario_json(imported) == exported


def test_an_older_export_without_it_imports_with_the_check_off(demo: None) -> None:
    doc = json.loads(export_scenario_json(Scenario.objects.get(slug="retail")))
    del doc["scenario"]["moderation_check"]
    empty_configuration()
    assert import_scenario_json(json.dumps(doc)).moderation_check is False
    # Over a scenario that has it on, the file (which predates the setting) says off.
    Scenario.objects.filter(slug="retail").update(moderation_check=True)
    assert import_scenario_json(json.dumps(doc)).moderation_check is False


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_a_value_that_is_not_a_boolean_is_refused(demo: None, value: Any) -> None:
    Scenario.objects.filter(slug="retail").update(moderation_check=True)
    doc = json.loads(export_scenario_json(Scenario.objects.get(slug="retail")))
    doc["scenario"]["moderation_check"] = value
    with pytest.raises(ImportRefused) as refused:
        import_scenario_json(json.dumps(doc))
    assert any("moderation_check must be true or false" in p for p in refused.value.problems), refused.value.problems
    assert Scenario.objects.get(slug="retail").moderation_check is True


def test_the_admin_form_sets_it(admin_client: Any) -> None:
    front = make_agent("front")
    data = scenario_post_data(slug="moderated", name="Moderated", root=front, members=[], edges=[])
    response = admin_client.post(reverse("admin:agents_scenario_add"), {**data, "moderation_check": "on"})
    assert response.status_code == 302, response.context["adminform"].form.errors
    scenario = Scenario.objects.get(slug="moderated")
    assert scenario.moderation_check is True
    assert compile_scenario(scenario).guardrails.moderation is True

    page = admin_client.get(reverse("admin:agents_scenario_change", args=[scenario.pk])).content.decode()
    assert 'name="moderation_check"' in page and "moderation endpoint" in page

    # Unticked on the change form: off again.
    response = admin_client.post(reverse("admin:agents_scenario_change", args=[scenario.pk]), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    scenario.refresh_from_db()
    assert scenario.moderation_check is False
