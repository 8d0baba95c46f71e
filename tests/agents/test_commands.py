"""Management commands: loaddemo (idempotent), exportscenario, importscenario, compilescenario."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from agents.compile import compile_scenario
from agents.models import Agent, Scenario, Tool


def run(*args: Any) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_loaddemo_is_idempotent_and_keeps_operator_edits(db: Any) -> None:
    assert "retail: created" in run("loaddemo")
    counts = (Scenario.objects.count(), Agent.objects.count(), Tool.objects.count())
    Agent.objects.filter(slug="sales").update(voice="ash")
    assert "left as it is" in run("loaddemo")
    assert (Scenario.objects.count(), Agent.objects.count(), Tool.objects.count()) == counts == (2, 6, 13)
    assert Agent.objects.get(slug="sales").voice == "ash"
    assert "retail: reset" in run("loaddemo", "--reset")
    assert Agent.objects.get(slug="sales").voice == "cedar"


def test_export_import_compile_commands(demo: None, tmp_path: Path) -> None:
    exported = run("exportscenario", "carrier")
    assert json.loads(exported)["scenario"]["slug"] == "carrier"
    doc = json.loads(exported)
    doc["scenario"]["slug"] = "carrier-two"
    doc["scenario"]["inbound_numbers"] = []  # a number reaches one scenario only
    path = tmp_path / "carrier-two.json"
    path.write_text(json.dumps(doc))
    assert "imported scenario carrier-two" in run("importscenario", str(path))
    one = json.loads(run("compilescenario", "carrier-two"))
    assert one["hash"] == compile_scenario("carrier-two").hash
    every = json.loads(run("compilescenario"))
    assert [s["slug"] for s in every] == ["carrier", "carrier-two", "retail"]


def test_commands_fail_clearly(demo: None, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="There is no scenario 'nope'"):
        run("exportscenario", "nope")
    with pytest.raises(CommandError, match="There is no scenario 'nope'"):
        run("compilescenario", "nope")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    with pytest.raises(CommandError, match="nothing was changed"):
        run("importscenario", str(bad))
    with pytest.raises(CommandError, match="Cannot read"):
        run("importscenario", str(tmp_path / "missing.json"))
    Agent.objects.filter(slug="sales").update(tool_choice="no_such_tool")
    with pytest.raises(CommandError, match="retail does not compile"):
        run("compilescenario")
