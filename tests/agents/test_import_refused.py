"""A bad scenario file is refused with a clear message and nothing in the database changes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.urls import reverse

from agents.exchange import ImportRefused, export_scenario, import_scenario_json
from agents.models import Agent, HandoffEdge, Scenario, Tool


def snapshot() -> tuple[Any, ...]:
    return (
        sorted(Scenario.objects.values_list("slug", "name", "max_call_seconds")),
        sorted(Agent.objects.values_list("slug", "instructions", "voice")),
        sorted(Tool.objects.values_list("name", "description")),
        HandoffEdge.objects.count(),
    )


def broken_files() -> list[tuple[str, str]]:
    doc = export_scenario(Scenario.objects.get(slug="retail"))
    cases = [("not json {", "not valid JSON"), ("[1, 2]", "must contain a JSON object")]
    bad_schema = json.loads(json.dumps(doc))
    bad_schema["tools"][0]["parameters"] = {"type": "object", "properties": {"x": {"type": 5}}}
    bad_schema["scenario"]["name"] = "Changed"
    cases.append((json.dumps(bad_schema), "Not a valid JSON Schema"))
    bad_voice = json.loads(json.dumps(doc))
    bad_voice["agents"][0]["voice"] = "nova"
    bad_voice["tools"][1]["description"] = "Changed description"
    cases.append((json.dumps(bad_voice), "voice"))
    unknown_agent = json.loads(json.dumps(doc))
    unknown_agent["scenario"]["handoffs"].append({"from": "sales", "to": "ghost", "when": "", "contract": []})
    cases.append((json.dumps(unknown_agent), "'ghost' is neither in the file nor in this database"))
    long_text = json.loads(json.dumps(doc))
    long_text["agents"][1]["instructions"] = "x" * 2000
    cases.append((json.dumps(long_text), "limited to 750 characters"))
    extra = json.loads(json.dumps(doc))
    extra["agents"][0]["temperature"] = 0.7
    cases.append((json.dumps(extra), "unknown fields: temperature"))
    bad_contract = json.loads(json.dumps(doc))
    bad_contract["scenario"]["handoffs"][0]["contract"] = [{"name": "reason", "type": "string"}]
    cases.append((json.dumps(bad_contract), "always travels with a transfer"))
    return cases


def test_each_broken_file_is_refused_and_nothing_changes(demo: None) -> None:
    before = snapshot()
    for text, words in broken_files():
        with pytest.raises(ImportRefused) as caught:
            import_scenario_json(text)
        assert words in str(caught.value), (words, caught.value.problems)
        assert snapshot() == before, f"the refused file ({words}) changed the database"


def test_the_admin_import_page_refuses_a_broken_file_and_changes_nothing(demo: None, admin_client: Any) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    before = snapshot()
    text, words = broken_files()[2]
    response = admin_client.post(
        reverse("admin:agents_scenario_import"),
        {"file": SimpleUploadedFile("retail.json", text.encode(), content_type="application/json")},
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "refused and nothing was changed" in body and words in body
    assert snapshot() == before
