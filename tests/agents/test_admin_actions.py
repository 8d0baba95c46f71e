"""Scenario admin actions: duplicate, export download and import upload."""

from __future__ import annotations

import json

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from agents.compile import compile_scenario
from agents.exchange import export_scenario_json
from agents.models import Scenario


def test_duplicate_action_copies_the_graph(demo: None, admin_client: Client) -> None:
    retail = Scenario.objects.get(slug="retail")
    response = admin_client.post(
        reverse("admin:agents_scenario_changelist"),
        {"action": "duplicate_scenarios", "_selected_action": [str(retail.pk)]},
    )
    assert response.status_code == 302
    copy = Scenario.objects.get(slug="retail-copy")
    assert copy.edges.count() == retail.edges.count() == 7
    original, duplicated = compile_scenario(retail).to_dict(), compile_scenario(copy).to_dict()
    assert duplicated["agents"] == original["agents"]
    admin_client.post(
        reverse("admin:agents_scenario_changelist"),
        {"action": "duplicate_scenarios", "_selected_action": [str(retail.pk)]},
    )
    assert Scenario.objects.filter(slug="retail-copy-2").exists()


def test_export_download_and_action(demo: None, admin_client: Client) -> None:
    retail = Scenario.objects.get(slug="retail")
    response = admin_client.get(reverse("admin:agents_scenario_export", args=[retail.pk]))
    assert response["Content-Disposition"] == 'attachment; filename="scenario-retail.json"'
    assert json.loads(response.content)["scenario"]["slug"] == "retail"
    response = admin_client.post(
        reverse("admin:agents_scenario_changelist"),
        {"action": "export_scenario", "_selected_action": [str(retail.pk)]},
    )
    assert json.loads(response.content)["scenario"]["slug"] == "retail"


def test_import_upload_creates_the_scenario(demo: None, admin_client: Client) -> None:
    doc = json.loads(export_scenario_json(Scenario.objects.get(slug="carrier")))
    doc["scenario"]["slug"], doc["scenario"]["name"] = "carrier-eu", "Carrier EU"
    doc["scenario"]["inbound_numbers"] = []  # a number reaches one scenario only
    upload = SimpleUploadedFile("carrier-eu.json", json.dumps(doc).encode(), content_type="application/json")
    response = admin_client.post(reverse("admin:agents_scenario_import"), {"file": upload})
    imported = Scenario.objects.get(slug="carrier-eu")
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:agents_scenario_change", args=[imported.pk])
    assert compile_scenario(imported).agents == compile_scenario("carrier").agents
