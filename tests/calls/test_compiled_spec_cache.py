"""A worker keeps each scenario's compiled spec (calls.scenarios.compile_for_call) and compiles
again only when the scenario or anything it compiles from changed (agents.signals)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from agents.models import Agent, HandoffEdge, Scenario, Tool
from calls import scenarios
from calls.scenarios import compile_for_call, spec_of_call

pytestmark = pytest.mark.django_db


def compiles(monkeypatch: Any) -> list[str]:
    """Counts the real compiler's runs (it still runs; only the count is recorded)."""
    from agents import compile as compile_module

    seen: list[str] = []
    real = compile_module.compile_scenario

    def counting(scenario: Any, **kwargs: Any) -> Any:
        seen.append(scenario.slug)
        return real(scenario, **kwargs)

    monkeypatch.setattr(compile_module, "compile_scenario", counting)
    return seen


def test_a_second_call_reuses_the_compiled_spec(demo: Any, monkeypatch: Any) -> None:
    runs = compiles(monkeypatch)
    _, first = compile_for_call("retail")
    row, second = compile_for_call("retail")
    assert second is first and runs == ["retail"]
    assert row.slug == "retail"


@pytest.mark.parametrize("change", ["agent", "scenario", "tool", "edge", "agent_tools", "scenario_agents"])
def test_every_change_compiles_again(demo: Any, monkeypatch: Any, change: str) -> None:
    runs = compiles(monkeypatch)
    _, before = compile_for_call("retail")
    scenario = Scenario.objects.get(slug="retail")
    root = scenario.root_agent
    if change == "agent":
        root.instructions += "\nAlways spell the order number back."
        root.save()
    elif change == "scenario":
        scenario.max_handoff_depth = 3
        scenario.save()
    elif change == "tool":
        tool = root.tools.first() or Tool.objects.first()
        assert tool is not None
        tool.description = "Changed description for the cache test."
        tool.save()
    elif change == "edge":
        edge = HandoffEdge.objects.filter(scenario=scenario).first()
        assert edge is not None
        edge.when = "When the caller asks for something else entirely."
        edge.save()
    elif change == "agent_tools":
        tool = Tool.objects.exclude(pk__in=root.tools.values("pk")).first()
        assert tool is not None
        root.tools.add(tool)
    else:
        extra = Agent.objects.exclude(pk__in=[a.pk for a in scenario.member_agents()]).first()
        assert extra is not None
        scenario.agents.add(extra)  # an agent no handoff reaches: the graph no longer compiles
        with pytest.raises(scenarios.UnknownScenario, match="cannot be reached"):
            compile_for_call("retail")
        assert runs == ["retail", "retail"]
        return
    _, after = compile_for_call("retail")
    assert runs == ["retail", "retail"]
    assert after.hash != before.hash


def test_a_rolled_back_change_leaves_the_cached_spec(demo: Any, monkeypatch: Any) -> None:
    runs = compiles(monkeypatch)
    _, before = compile_for_call("retail")
    root = Scenario.objects.get(slug="retail").root_agent
    with pytest.raises(RuntimeError), transaction.atomic():
        root.instructions += "\nNever mind."
        root.save()
        raise RuntimeError("roll back")
    _, after = compile_for_call("retail")
    assert after is before and runs == ["retail"]


def test_a_deleted_scenario_is_not_served_from_the_cache(demo: Any) -> None:
    compile_for_call("retail")
    Scenario.objects.filter(slug="retail").delete()
    with pytest.raises(scenarios.UnknownScenario):
        compile_for_call("retail")


def test_a_call_starts_from_its_stored_spec(demo: Any) -> None:
    from calls import actions
    from calls.models import Call

    scenario, spec = compile_for_call("retail")
    call = actions.do_start_call(channel=Call.Channel.TWILIO, spec=spec.to_dict(), scenario=scenario)
    assert spec_of_call(call.pk) is spec  # seen by this worker: not parsed again
    scenarios._BY_HASH.clear()  # another worker's webhook compiled it
    again = spec_of_call(call.pk)
    assert again.hash == spec.hash and again is not spec
    assert spec_of_call(call.pk) is again
