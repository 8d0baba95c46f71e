"""A scenario's inbound phone numbers: E.164 only (typed with spaces, dashes or brackets, stored
normalised), one scenario per number, refused in words an operator understands on the model, in the
admin and on import (all or nothing); carried by export and import; never part of the compiled spec."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from agents import validation
from agents.admin import duplicate_scenario
from agents.compile import compile_scenario
from agents.exchange import ImportRefused, export_scenario, import_scenario, import_scenario_json
from agents.models import Agent, Scenario, Tool
from demo.loader import CARRIER_NUMBER, RETAIL_NUMBER

from .conftest import make_agent, scenario_post_data
from .test_scenario_graph_validation import change_post_data, post_errors

FORMAT_WORDS = "is not a phone number in international (E.164) form"


@pytest.mark.parametrize(("typed", "stored"), [
    ("+12025550100", "+12025550100"),
    ("+1 202 555 0100", "+12025550100"),
    ("+1 (202) 555-0100", "+12025550100"),
    (" +44 20 7946 0958 ", "+442079460958"),
    ("+49-30-1234567", "+49301234567"),
    ("+1 555 0100", "+15550100"),  # 8 digits: the shortest taken
])
def test_numbers_are_normalised(typed: str, stored: str) -> None:
    assert validation.normalise_phone_number(typed) == stored


@pytest.mark.parametrize("typed", [
    "12025550100",          # no +
    "+1234567890123456",    # 16 digits
    "+1 202 555 0100 ext 2",
    "+1.202.555.0100",      # dots are not among the separators taken
    "+0 202 555 0100",      # no country code starts with 0
    "+1 202 555",           # 7 digits
    "",
    "tel:+12025550100",
])
def test_bad_numbers_are_not_numbers(typed: str) -> None:
    assert validation.normalise_phone_number(typed) is None


def test_problems_name_the_entry_and_the_form_expected() -> None:
    numbers, problems = validation.inbound_number_problems(["+1 202 555 0100", "555-0100", 42])
    assert numbers == ["+12025550100"]
    assert problems == [
        f"'555-0100' {FORMAT_WORDS}: {validation.E164_HINT}.",
        f"42 {FORMAT_WORDS}: {validation.E164_HINT}.",
    ]
    assert validation.inbound_number_problems("+12025550100")[1] == [
        f"Inbound numbers must be a list of phone numbers, {validation.E164_HINT}."
    ]
    assert validation.inbound_number_problems(["+12025550100", "+1 202-555-0100"])[1] == [
        "The number +12025550100 is listed twice."
    ]


def test_the_model_stores_numbers_normalised(small_graph: Scenario) -> None:
    small_graph.inbound_numbers = ["+1 (202) 555-0150", "+44 20 7946 0958"]
    small_graph.full_clean()
    small_graph.save()
    small_graph.refresh_from_db()
    assert small_graph.inbound_numbers == ["+12025550150", "+442079460958"]


def test_a_bad_number_is_refused_with_the_reason(small_graph: Scenario) -> None:
    small_graph.inbound_numbers = ["202 555 0150"]
    with pytest.raises(ValidationError) as caught:
        small_graph.full_clean()
    assert caught.value.message_dict["inbound_numbers"] == [f"'202 555 0150' {FORMAT_WORDS}: {validation.E164_HINT}."]


def test_a_number_of_another_scenario_is_refused_naming_it(demo: None, small_graph: Scenario) -> None:
    small_graph.inbound_numbers = ["+1 202 555 0199", "+1 (202) 555-0100"]
    with pytest.raises(ValidationError) as caught:
        small_graph.full_clean()
    (message,) = caught.value.message_dict["inbound_numbers"]
    assert message.startswith(f"The number {RETAIL_NUMBER} already reaches the scenario Retail customer service (retail)")
    # A scenario keeps its own numbers when it is saved again.
    retail = Scenario.objects.get(slug="retail")
    retail.full_clean()
    assert retail.inbound_numbers == [RETAIL_NUMBER]


def test_the_demo_lines_have_one_number_each(demo: None) -> None:
    numbers = dict(Scenario.objects.values_list("slug", "inbound_numbers"))
    assert numbers == {"retail": [RETAIL_NUMBER], "carrier": [CARRIER_NUMBER]}
    for number in (RETAIL_NUMBER, CARRIER_NUMBER):
        assert validation.normalise_phone_number(number) == number
        assert number[-7:-2] == "55501"  # the fictional 555-01xx range


# --- the admin -----------------------------------------------------------------------------------


def test_the_admin_saves_numbers_typed_one_per_line(demo: None, admin_client: Any) -> None:
    carrier = Scenario.objects.get(slug="carrier")
    url = reverse("admin:agents_scenario_change", args=[carrier.pk])
    page = admin_client.get(url).content.decode()
    assert CARRIER_NUMBER in page and "Inbound numbers" in page
    data = change_post_data(carrier)
    data["inbound_numbers"] = f"{CARRIER_NUMBER}\n+1 (202) 555-0177, +44 20 7946 0958\n"
    response = admin_client.post(url, data)
    assert response.status_code == 302
    carrier.refresh_from_db()
    assert carrier.inbound_numbers == [CARRIER_NUMBER, "+12025550177", "+442079460958"]


def test_the_admin_refuses_a_number_of_another_scenario_and_saves_nothing(demo: None, admin_client: Any) -> None:
    carrier = Scenario.objects.get(slug="carrier")
    data = change_post_data(carrier)
    data["name"] = "Renamed"
    data["inbound_numbers"] = "+1 202 555 0177\n+1 202-555-0100"
    errors = post_errors(admin_client.post(reverse("admin:agents_scenario_change", args=[carrier.pk]), data))
    assert f"The number {RETAIL_NUMBER} already reaches the scenario Retail customer service (retail)" in errors
    carrier.refresh_from_db()
    assert (carrier.name, carrier.inbound_numbers) == ("Mobile carrier (chat supervisor)", [CARRIER_NUMBER])


def test_the_admin_refuses_a_bad_number(admin_client: Any) -> None:
    front, billing = make_agent("front"), make_agent("billing")
    data = scenario_post_data(slug="s", name="S", root=front, members=[billing], edges=[(front, billing)])
    data["inbound_numbers"] = "0800 123 456"
    errors = post_errors(admin_client.post(reverse("admin:agents_scenario_add"), data))
    assert "0800 123 456" in errors and FORMAT_WORDS in errors
    assert not Scenario.objects.exists()


def test_a_duplicated_scenario_answers_no_number(demo: None) -> None:
    copy = duplicate_scenario(Scenario.objects.get(slug="retail"))
    assert copy.inbound_numbers == []
    assert Scenario.objects.get(slug="retail").inbound_numbers == [RETAIL_NUMBER]


# --- export and import ---------------------------------------------------------------------------


def test_export_import_round_trip_carries_the_numbers(demo: None) -> None:
    retail = Scenario.objects.get(slug="retail")
    retail.inbound_numbers = [RETAIL_NUMBER, "+442079460958"]
    retail.full_clean()
    retail.save()
    doc = json.loads(json.dumps(export_scenario(retail)))
    assert doc["scenario"]["inbound_numbers"] == [RETAIL_NUMBER, "+442079460958"]
    hash_before = compile_scenario(retail).hash

    retail.delete()
    imported = import_scenario(doc)
    assert imported.inbound_numbers == [RETAIL_NUMBER, "+442079460958"]
    assert compile_scenario(imported).hash == hash_before
    assert export_scenario(imported) == doc


def test_an_import_stores_numbers_normalised(demo: None) -> None:
    doc = export_scenario(Scenario.objects.get(slug="carrier"))
    doc["scenario"]["inbound_numbers"] = [CARRIER_NUMBER, "+1 (202) 555-0188"]
    assert import_scenario(doc).inbound_numbers == [CARRIER_NUMBER, "+12025550188"]


def test_an_older_export_without_numbers_imports_with_none(demo: None) -> None:
    doc = export_scenario(Scenario.objects.get(slug="carrier"))
    del doc["scenario"]["inbound_numbers"]
    doc["scenario"]["slug"], doc["scenario"]["name"] = "carrier-old", "Carrier (old file)"
    imported = import_scenario(doc)
    assert imported.inbound_numbers == []
    # Like every field added later, a file without it means the default, also for an existing scenario.
    doc["scenario"]["slug"] = "carrier"
    assert import_scenario(doc).inbound_numbers == []


def test_a_clashing_import_is_refused_as_a_whole(demo: None) -> None:
    doc = export_scenario(Scenario.objects.get(slug="carrier"))
    doc["scenario"]["slug"], doc["scenario"]["name"] = "carrier-eu", "Carrier EU"
    doc["scenario"]["inbound_numbers"] = ["+44 20 7946 0958", "+1 202 555 0100"]
    doc["tools"].append({**doc["tools"][0], "name": "brand_new_tool"})
    doc["agents"][0]["instructions"] = "Changed by the refused file."
    agent_slug = doc["agents"][0]["slug"]
    before = Agent.objects.get(slug=agent_slug).instructions
    with pytest.raises(ImportRefused) as caught:
        import_scenario_json(json.dumps(doc))
    assert caught.value.problems == [
        (f"Scenario carrier-eu: inbound numbers: The number {RETAIL_NUMBER} already reaches the scenario "
         "Retail customer service (retail); a number can lead to one scenario only. Remove it there first.")
    ]
    assert not Scenario.objects.filter(slug="carrier-eu").exists()
    assert not Tool.objects.filter(name="brand_new_tool").exists()
    assert Agent.objects.get(slug=agent_slug).instructions == before


def test_an_import_with_a_bad_number_or_shape_is_refused(demo: None) -> None:
    doc = export_scenario(Scenario.objects.get(slug="carrier"))
    doc["scenario"]["inbound_numbers"] = ["call us"]
    with pytest.raises(ImportRefused) as caught:
        import_scenario(doc)
    assert caught.value.problems == [f"Scenario carrier: inbound numbers: 'call us' {FORMAT_WORDS}: {validation.E164_HINT}."]
    doc["scenario"]["inbound_numbers"] = "+12025550101"
    with pytest.raises(ImportRefused) as caught:
        import_scenario(doc)
    assert caught.value.problems == ['The scenario\'s inbound_numbers must be a list, not "+12025550101".']
    assert Scenario.objects.get(slug="carrier").inbound_numbers == [CARRIER_NUMBER]


def test_numbers_are_not_part_of_the_compiled_spec(demo: None) -> None:
    carrier = Scenario.objects.get(slug="carrier")
    before = compile_scenario(carrier)
    carrier.inbound_numbers = ["+12025550166"]
    carrier.full_clean()
    carrier.save()
    after = compile_scenario(carrier)
    assert after.hash == before.hash and after.to_dict() == before.to_dict()
    assert "inbound_numbers" not in json.dumps(after.to_dict()) and "+12025550166" not in json.dumps(after.to_dict())
