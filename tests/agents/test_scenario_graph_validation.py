"""Scenario graph rules (reachability, membership, tool names, tool choice) refuse a bad graph in
the admin, on the model and on import, and nothing is saved."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from agents.exchange import ImportRefused, export_scenario, import_scenario
from agents.models import HandoffEdge, Scenario

from .conftest import make_agent, make_tool, scenario_post_data


def post_errors(response: Any) -> str:
    assert response.status_code == 200, "the admin saved a broken scenario"
    inline_errors = [str(e) for f in response.context["inline_admin_formsets"] for e in f.formset.non_form_errors()]
    return " ".join(inline_errors) + " " + str(response.context["adminform"].form.errors)


def test_valid_scenario_saves_from_the_admin(admin_client: Any) -> None:
    front, billing = make_agent("front"), make_agent("billing")
    data = scenario_post_data(slug="ok", name="OK", root=front, members=[billing], edges=[(front, billing)])
    response = admin_client.post(reverse("admin:agents_scenario_add"), data)
    assert response.status_code == 302
    assert Scenario.objects.get(slug="ok").edges.count() == 1


def test_unreachable_agent_refused_in_the_admin(admin_client: Any) -> None:
    front, billing, orphan = make_agent("front"), make_agent("billing"), make_agent("orphan")
    data = scenario_post_data(slug="s", name="S", root=front, members=[billing, orphan], edges=[(front, billing)])
    errors = post_errors(admin_client.post(reverse("admin:agents_scenario_add"), data))
    assert "Orphan (orphan) cannot be reached" in errors
    assert not Scenario.objects.exists() and not HandoffEdge.objects.exists()


def test_edge_to_an_agent_outside_the_scenario_refused_in_the_admin(admin_client: Any) -> None:
    front, billing, stranger = make_agent("front"), make_agent("billing"), make_agent("stranger")
    data = scenario_post_data(
        slug="s", name="S", root=front, members=[billing], edges=[(front, billing), (billing, stranger)]
    )
    errors = post_errors(admin_client.post(reverse("admin:agents_scenario_add"), data))
    assert "which is not one of this scenario's agents" in errors
    assert not Scenario.objects.exists()


def test_tool_named_like_a_generated_transfer_tool_refused_in_the_admin(admin_client: Any) -> None:
    clash = make_tool("transfer_to_billing")
    front, billing = make_agent("front", tools=(clash,)), make_agent("billing")
    data = scenario_post_data(slug="s", name="S", root=front, members=[billing], edges=[(front, billing)])
    errors = post_errors(admin_client.post(reverse("admin:agents_scenario_add"), data))
    assert "Front (front) has two tools called 'transfer_to_billing'" in errors
    assert not Scenario.objects.exists() and not HandoffEdge.objects.exists()


def test_adding_a_clashing_tool_to_an_agent_of_a_scenario_is_refused(small_graph: Scenario, admin_client: Any) -> None:
    clash = make_tool("transfer_to_billing")
    front = small_graph.root_agent
    url = reverse("admin:agents_agent_change", args=[front.pk])
    form = admin_client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k != "tools"}
    data.update(tools=[str(clash.pk)], vad_create_response="on", vad_interrupt_response="on")
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "two tools called &#x27;transfer_to_billing&#x27;" in response.content.decode()
    assert not front.tools.exists()


def test_duplicate_tool_names_found_by_the_model_rules(small_graph: Scenario) -> None:
    small_graph.root_agent.tools.add(make_tool("transfer_to_billing"))
    with pytest.raises(ValidationError) as caught:
        small_graph.validate_graph()
    assert "has two tools called 'transfer_to_billing'" in " ".join(caught.value.messages)


def test_tool_choice_must_name_one_of_the_agents_tools(small_graph: Scenario, admin_client: Any) -> None:
    front = small_graph.root_agent
    front.tool_choice = "transfer_to_sales"
    front.save()
    with pytest.raises(ValidationError) as caught:
        small_graph.validate_graph()
    assert "tool choice 'transfer_to_sales' is not one of this agent's tools" in " ".join(caught.value.messages)
    front.tool_choice = "transfer_to_billing"  # the generated transfer tool counts
    front.save()
    small_graph.validate_graph()


def test_agent_edit_that_breaks_a_scenario_is_refused(small_graph: Scenario, admin_client: Any) -> None:
    billing = small_graph.agents.get(slug="billing")
    url = reverse("admin:agents_agent_change", args=[billing.pk])
    page = admin_client.get(url)
    data = {k: v for k, v in page.context["adminform"].form.initial.items() if v is not None}
    data.update(kind="supervisor", model="", voice="", tools=[], vad_create_response="on",
                vad_interrupt_response="on", output_modality="audio")
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "In the scenario small:" in response.content.decode()
    billing.refresh_from_db()
    assert billing.kind == "realtime"


def test_unreachable_agent_refused_on_import_and_nothing_changes(small_graph: Scenario) -> None:
    doc = export_scenario(small_graph)
    make_agent("orphan")
    doc["scenario"]["agents"].append("orphan")
    doc["scenario"]["name"] = "Renamed"
    with pytest.raises(ImportRefused) as caught:
        import_scenario(doc)
    assert any("Orphan (orphan) cannot be reached" in p for p in caught.value.problems)
    small_graph.refresh_from_db()
    assert small_graph.name == "Small"
    assert list(small_graph.agents.values_list("slug", flat=True).order_by("slug")) == ["billing", "front"]


def change_post_data(scenario: Scenario) -> dict[str, Any]:
    edges = list(scenario.edges.select_related("from_agent", "to_agent"))
    data = scenario_post_data(
        slug=scenario.slug, name=scenario.name, root=scenario.root_agent, members=list(scenario.agents.all()),
        edges=[(e.from_agent, e.to_agent) for e in edges], fallback=scenario.fallback_agent,
        supervisor=scenario.supervisor_agent,
    )
    data["edges-INITIAL_FORMS"] = str(len(edges))
    for index, edge in enumerate(edges):
        data[f"edges-{index}-id"] = str(edge.pk)
        data[f"edges-{index}-scenario"] = str(scenario.pk)
    return data


def test_deleting_the_only_handoff_to_an_agent_is_refused(demo: None, admin_client: Any) -> None:
    retail = Scenario.objects.get(slug="retail")
    url = reverse("admin:agents_scenario_change", args=[retail.pk])
    data = change_post_data(retail)
    data["name"] = "Renamed"
    ok = admin_client.post(url, data)
    assert ok.status_code == 302 and Scenario.objects.get(slug="retail").name == "Renamed"

    edges = list(retail.edges.select_related("from_agent", "to_agent"))
    for index, edge in enumerate(edges):  # cut every way into the sales agent
        if edge.to_agent.slug == "sales":
            data[f"edges-{index}-DELETE"] = "on"
    data["name"] = "Broken"
    errors = post_errors(admin_client.post(url, data))
    assert "Sales (sales) cannot be reached" in errors
    assert retail.edges.count() == 7 and Scenario.objects.get(slug="retail").name == "Renamed"
