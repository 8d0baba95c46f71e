"""Scenario versions: a new version only when a save changes the compiled spec (admin saves of a
scenario, an agent or a tool; imports), immutable, calls linked to theirs, carried by export and
import, existing databases backfilled, and a readable diff between two versions in the admin."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from agents.compile import compile_scenario
from agents.exchange import export_scenario, import_scenario
from agents.models import Agent, HandoffEdge, Scenario, ScenarioVersion, Tool
from agents.versions import backfill_versions, record_version, spec_diff
from calls import actions
from calls.models import Call
from tests.agents.conftest import agent_post_data, make_tool
from tests.audit.conftest import shop_scenario


@pytest.fixture
def admin_client(django_user_model: Any) -> Client:
    admin = django_user_model.objects.create_superuser("ada", password="configure-all-the-things-1")
    client = Client()
    client.force_login(admin)
    return client


def scenario_change_data(scenario: Scenario, **changes: Any) -> dict[str, Any]:
    """The POST body of the scenario change form as it stands (handoffs inline included)."""
    edges = list(scenario.edges.order_by("pk"))
    data: dict[str, Any] = {
        "name": scenario.name, "slug": scenario.slug, "description": scenario.description,
        "root_agent": str(scenario.root_agent_id), "supervisor_agent": "",
        "fallback_agent": str(scenario.fallback_agent_id or ""),
        "agents": [str(a.pk) for a in scenario.agents.all()],
        "max_handoff_depth": str(scenario.max_handoff_depth), "max_session_seconds": "3600",
        "summarize_every_turns": "5", "max_call_seconds": "1800", "blocked_phrases": "[]", "off_brand_terms": "[]",
        "guardrail_patterns": "[]", "escalation_webhook_url": "", "failover_provider": "", "inbound_numbers": "",
        "edges-TOTAL_FORMS": str(len(edges)), "edges-INITIAL_FORMS": str(len(edges)),
        "edges-MIN_NUM_FORMS": "0", "edges-MAX_NUM_FORMS": "1000",
    }
    for i, edge in enumerate(edges):
        data.update({f"edges-{i}-id": str(edge.pk), f"edges-{i}-scenario": str(scenario.pk),
                     f"edges-{i}-from_agent": str(edge.from_agent_id), f"edges-{i}-to_agent": str(edge.to_agent_id),
                     f"edges-{i}-when": edge.when, f"edges-{i}-contract": json.dumps(edge.contract or [])})
    data.update(changes)
    return data


def numbers(scenario: Scenario) -> list[int]:
    return list(scenario.versions.order_by("number").values_list("number", flat=True))


@pytest.mark.django_db
def test_admin_saves_record_a_version_only_on_a_real_change(admin_client: Client) -> None:
    scenario = shop_scenario()
    assert record_version(scenario) is not None and numbers(scenario) == [1]
    url = f"/admin/agents/scenario/{scenario.pk}/change/"

    unchanged = admin_client.post(url, scenario_change_data(scenario))
    assert unchanged.status_code == 302, unchanged.content[:2000]
    assert numbers(scenario) == [1]  # saved, nothing compiled differently

    # A description is not part of the compiled spec either.
    admin_client.post(url, scenario_change_data(scenario, description="For the spring sale"))
    assert Scenario.objects.get(pk=scenario.pk).description == "For the spring sale"
    assert numbers(scenario) == [1]

    assert admin_client.post(url, scenario_change_data(scenario, max_handoff_depth="4")).status_code == 302
    assert numbers(scenario) == [1, 2]
    v2 = scenario.versions.get(number=2)
    assert v2.author_name == "ada" and v2.source == "admin"
    assert v2.spec_hash == compile_scenario(scenario.slug).hash and v2.spec["limits"]["max_handoff_depth"] == 4

    # An agent edited in the admin: every scenario it is in gets a version.
    front = Agent.objects.get(slug="front")
    fields = {f: getattr(front, f) for f in ("name", "slug", "instructions")}
    response = admin_client.post(f"/admin/agents/agent/{front.pk}/change/",
                                 agent_post_data({**fields, "instructions": "You are front. Be brief."}))
    assert response.status_code == 302, response.content[:2000]
    assert numbers(scenario) == [1, 2, 3]
    response = admin_client.post(f"/admin/agents/agent/{front.pk}/change/",
                                 agent_post_data({**fields, "instructions": "You are front. Be brief."}))
    assert numbers(scenario) == [1, 2, 3]


@pytest.mark.django_db
def test_a_tool_edit_versions_the_scenarios_that_use_it(admin_client: Client) -> None:
    scenario = shop_scenario()
    tool = make_tool("hang_up")
    Agent.objects.get(slug="billing").tools.add(tool)
    record_version(scenario)
    data = {"name": "hang_up", "description": "End the call politely.", "parameters": json.dumps(tool.parameters),
            "kind": "builtin", "builtin": "end_call", "handler": "", "webhook_url": "", "webhook_method": "POST",
            "webhook_timeout_seconds": "5.0", "webhook_secret_header": "", "webhook_secret_name": "",
            "redact_arguments": "[]"}
    response = admin_client.post(f"/admin/agents/tool/{tool.pk}/change/", data)
    assert response.status_code == 302, response.content[:2000]
    assert numbers(scenario) == [1, 2]
    # The redaction setting is not part of the compiled spec: no version.
    response = admin_client.post(f"/admin/agents/tool/{tool.pk}/change/", {**data, "redact_arguments": '["*"]'})
    assert response.status_code == 302 and Tool.objects.get(pk=tool.pk).redact_arguments == ["*"]
    assert numbers(scenario) == [1, 2]


@pytest.mark.django_db
def test_versions_are_immutable(db: Any) -> None:
    version = record_version(shop_scenario())
    assert version is not None
    version.spec_hash = "x" * 64
    with pytest.raises(ValueError, match="immutable"):
        version.save()
    with pytest.raises(ValueError, match="never deleted"):
        version.delete()


@pytest.mark.django_db
def test_a_broken_graph_records_no_version(db: Any) -> None:
    scenario = shop_scenario()
    record_version(scenario)
    HandoffEdge.objects.filter(scenario=scenario).delete()  # billing, returns unreachable
    Scenario.objects.filter(pk=scenario.pk).update(max_handoff_depth=3)
    assert record_version(scenario) is None and numbers(scenario) == [1]


@pytest.mark.django_db
def test_calls_point_to_their_version(db: Any) -> None:
    scenario = shop_scenario()
    v1 = record_version(scenario)
    spec = compile_scenario(scenario.slug).to_dict()
    call = actions.do_start_call(channel=Call.Channel.BROWSER, spec=spec, scenario=scenario)
    assert call.scenario_version == v1
    # A change no tracked save recorded: the first call on it records it, with the exact spec it ran.
    Agent.objects.filter(slug="front").update(instructions="You are front, changed from a shell.")
    changed = compile_scenario(scenario.slug).to_dict()
    call2 = actions.do_start_call(channel=Call.Channel.BROWSER, spec=changed, scenario=scenario)
    version = Call.objects.get(pk=call2.pk).scenario_version
    assert version is not None and version.number == 2 and version.source == "call" and version.spec == changed
    call3 = actions.do_start_call(channel=Call.Channel.BROWSER, spec=changed, scenario=scenario)
    assert call3.scenario_version == version and numbers(scenario) == [1, 2]
    # No scenario (a spec without a scenario row): no version.
    assert actions.do_start_call(channel=Call.Channel.BROWSER, spec=changed).scenario_version is None


@pytest.mark.django_db
def test_export_and_import_carry_the_version(django_user_model: Any) -> None:
    scenario = shop_scenario()
    v1 = record_version(scenario)
    assert v1 is not None
    doc = export_scenario(scenario)
    assert doc["scenario_version"] == {"number": 1, "hash": v1.spec_hash, "created_at": v1.created_at.isoformat(),
                                       "author": ""}
    # Importing the same configuration again changes nothing: no version.
    import_scenario(json.loads(json.dumps(doc)))
    assert numbers(scenario) == [1]
    # Elsewhere (here: under the same slug after the configuration is gone) it is recorded as an import
    # naming the version it came from, and exporting it again carries that origin on.
    Scenario.objects.all().delete()
    Agent.objects.all().delete()
    imported = import_scenario(json.loads(json.dumps(doc)))
    version = imported.versions.get()
    assert version.source == "import" and version.spec_hash == v1.spec_hash
    assert version.imported_from == doc["scenario_version"]
    assert export_scenario(imported)["scenario_version"] == doc["scenario_version"]
    # An import that changes the configuration is a new version.
    doc["scenario"]["max_handoff_depth"] = 5
    import_scenario(doc)
    assert numbers(imported) == [1, 2]
    assert imported.versions.get(number=2).imported_from["hash"] == v1.spec_hash


@pytest.mark.django_db
def test_a_bad_version_block_refuses_the_file(db: Any) -> None:
    from agents.exchange import ImportRefused

    scenario = shop_scenario()
    doc = export_scenario(scenario)
    doc["scenario_version"] = {"number": "one"}
    with pytest.raises(ImportRefused, match="scenario_version"):
        import_scenario(doc)


@pytest.mark.django_db
def test_an_existing_database_gets_version_1_and_its_calls_linked_by_hash(db: Any) -> None:
    scenario = shop_scenario()
    current = compile_scenario(scenario.slug).to_dict()
    old = {**current, "hash": "0" * 64}
    ran_current = Call.objects.create(channel="browser", scenario=scenario, scenario_slug="shop", spec=current,
                                      spec_hash=current["hash"])
    ran_older = Call.objects.create(channel="browser", scenario=scenario, scenario_slug="shop", spec=old,
                                    spec_hash=old["hash"])
    assert backfill_versions() == {"versions": 1, "calls": 1}
    version = scenario.versions.get()
    assert (version.number, version.source, version.spec_hash) == (1, "existing", current["hash"])
    assert Call.objects.get(pk=ran_current.pk).scenario_version == version
    assert Call.objects.get(pk=ran_older.pk).scenario_version is None  # an older configuration: no version holds it
    assert backfill_versions() == {"versions": 0, "calls": 0}  # idempotent


def test_the_diff_reads_instructions_tools_edges_and_limits() -> None:
    def agent(slug: str, instructions: str, tools: list[dict[str, Any]]) -> dict[str, Any]:
        return {"slug": slug, "name": slug, "kind": "realtime", "instructions": instructions, "voice": "marin",
                "tools": tools, "session": {"audio": {"output": {"voice": "marin", "speed": 1.0}}}}

    lookup = {"name": "lookup", "kind": "python", "description": "Find orders.", "parameters": {}}
    to_billing = {"name": "transfer_to_billing", "kind": "transfer", "transfer_to": "billing",
                  "description": "Transfer when: bills", "parameters": {"required": ["reason"]}}
    old = {"limits": {"max_handoff_depth": 6}, "root_agent": "front", "agents": {
        "front": agent("front", "Hello.\nBe kind.", [lookup, to_billing]), "billing": agent("billing", "Bills.", [])}}
    new_front = agent("front", "Hello.\nBe brief.", [{**lookup, "description": "Find orders by number."},
                                                      {**to_billing, "description": "Transfer when: invoices"}])
    new_front["session"]["audio"]["output"]["speed"] = 1.2
    new = {"limits": {"max_handoff_depth": 3}, "root_agent": "front", "agents": {
        "front": new_front, "returns": agent("returns", "Returns.", [])}}
    diff = spec_diff(old, new)
    assert [(c.what, c.old, c.new) for c in diff.limits] == [("max_handoff_depth", "6", "3")]
    agents = {a.slug: a for a in diff.agents}
    assert (agents["billing"].kind, agents["returns"].kind) == ("removed", "added")
    front = agents["front"]
    assert ("-", "Be kind.") in front.instructions and ("+", "Be brief.") in front.instructions
    assert [(c.what, c.new) for c in front.tools] == [("lookup: description", "Find orders by number.")]
    assert [(c.what, c.old, c.new) for c in front.edges] == [("→ billing: when", "Transfer when: bills",
                                                              "Transfer when: invoices")]
    assert [(c.what, c.new) for c in front.settings] == [("session audio.output.speed", "1.2")]
    assert spec_diff(old, old).empty


@pytest.mark.django_db
def test_the_admin_shows_the_history_and_the_diff(admin_client: Client) -> None:
    scenario = shop_scenario()
    v1 = record_version(scenario)
    Agent.objects.filter(slug="billing").update(instructions="You are billing.\nNever promise refunds.")
    Scenario.objects.filter(pk=scenario.pk).update(max_handoff_depth=4)
    v2 = record_version(scenario)
    assert v1 is not None and v2 is not None
    history = admin_client.get(f"/admin/agents/scenario/{scenario.pk}/versions/")
    assert history.status_code == 200
    assert b'data-version="1"' in history.content and b'data-version="2"' in history.content
    page = admin_client.get(f"/admin/agents/scenario/{scenario.pk}/versions/diff/", {"a": v2.pk, "b": v1.pk})
    html = page.content.decode()
    assert page.status_code == 200 and "v1 → v2" in html
    assert "Never promise refunds." in html and 'data-agent="billing"' in html
    assert "max_handoff_depth" in html
    wrong = admin_client.get(f"/admin/agents/scenario/{scenario.pk}/versions/diff/", {"a": v1.pk})
    assert wrong.status_code == 302
    assert ScenarioVersion.objects.count() == 2


@pytest.mark.django_db
def test_staff_without_scenario_permission_cannot_read_the_history(django_user_model: Any) -> None:
    scenario = shop_scenario()
    record_version(scenario)
    staff = django_user_model.objects.create_user("stan", password="only-a-staffer-123", is_staff=True)
    client = Client()
    client.force_login(staff)
    assert client.get(f"/admin/agents/scenario/{scenario.pk}/versions/").status_code == 403


@pytest.mark.django_db
def test_an_export_names_the_configuration_it_exports(db: Any) -> None:
    scenario = shop_scenario()
    record_version(scenario)
    Scenario.objects.filter(pk=scenario.pk).update(max_handoff_depth=5)  # changed outside the admin
    doc = export_scenario(scenario)
    assert doc["scenario_version"]["number"] == 2 and doc["scenario_version"]["hash"] == compile_scenario("shop").hash
    assert scenario.versions.get(number=2).source == "export"
    export_scenario(scenario)
    assert numbers(scenario) == [1, 2]
