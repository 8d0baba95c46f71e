"""Every compiled session.update of both demo scenarios is valid for the official openai realtime
types, with unknown keys refused; transfer tools and supervisors compile as the spec says."""

from __future__ import annotations

from typing import Any

import pytest

from agents.compile import compile_scenario
from agents.models import Agent
from realtime.spec import ScenarioSpec

from .openai_strict import strict_session_update


@pytest.mark.parametrize("slug", ["retail", "carrier"])
def test_every_realtime_session_update_is_valid_ga(demo: None, slug: str) -> None:
    spec = compile_scenario(slug)
    realtime_agents = [a for a in spec.agents.values() if a.kind == "realtime"]
    assert realtime_agents
    for agent in realtime_agents:
        event = strict_session_update(agent.session)
        assert event.session.type == "realtime"
        assert agent.session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
        assert agent.session["audio"]["output"]["voice"] == agent.voice
        assert [t["name"] for t in agent.session["tools"]] == [t.name for t in agent.tools]


def test_the_strict_check_refuses_beta_and_unknown_fields(demo: None) -> None:
    session = compile_scenario("retail").root.session
    for bad in (
        {**session, "input_audio_format": "pcm16"},
        {**session, "audio": {**session["audio"], "output": {**session["audio"]["output"], "pitch": 2}}},
        {**session, "tools": [{**session["tools"][0], "strict": True}]},
    ):
        with pytest.raises(AssertionError, match="do not declare"):
            strict_session_update(bad)


def test_transfer_tools_carry_the_handoff_contract(demo: None) -> None:
    auth = compile_scenario("retail").agent("authentication")
    transfer = auth.tool("transfer_to_returns")
    assert transfer is not None and transfer.kind == "transfer" and transfer.transfer_to == "returns"
    params = transfer.parameters
    assert params["required"] == ["reason", "conversation_summary", "customer_phone"]
    assert set(params["properties"]) == {"reason", "conversation_summary", "customer_phone", "order_id"}
    assert "Looks up orders" in transfer.description and "Transfer when:" in transfer.description
    assert {t.name for t in auth.tools} == {
        "verify_customer", "transfer_to_returns", "transfer_to_sales", "transfer_to_human_escalation"
    }


def test_supervisor_compiles_with_its_own_tools_and_no_session(demo: None) -> None:
    spec = compile_scenario("carrier")
    assert spec.supervisor_agent == "carrier_supervisor"
    supervisor = spec.supervisor
    assert supervisor is not None and supervisor.kind == "supervisor" and supervisor.session == {}
    assert [t.name for t in supervisor.tools] == ["find_store", "lookup_account", "lookup_policy"]
    assert spec.root.tool("ask_supervisor").builtin == "ask_supervisor"  # type: ignore[union-attr]


def test_turned_off_settings_compile_to_null_and_tool_choice_to_a_function(demo: None) -> None:
    agent = Agent.objects.get(slug="human_escalation")
    agent.turn_detection, agent.noise_reduction, agent.transcription_model = "none", "none", ""
    agent.tool_choice, agent.max_output_tokens, agent.output_modality = "escalate_to_human", 512, "text"
    agent.save()
    session = compile_scenario("retail").agent("human_escalation").session
    strict_session_update(session)
    audio_in = session["audio"]["input"]
    assert audio_in["turn_detection"] is None and audio_in["noise_reduction"] is None
    assert audio_in["transcription"] is None
    assert session["tool_choice"] == {"type": "function", "name": "escalate_to_human"}
    assert session["max_output_tokens"] == 512 and session["output_modalities"] == ["text"]


def test_semantic_vad_compiles(demo: None) -> None:
    Agent.objects.filter(slug="sales").update(turn_detection="semantic_vad", vad_eagerness="low")
    session = compile_scenario("retail").agent("sales").session
    strict_session_update(session)
    assert session["audio"]["input"]["turn_detection"] == {
        "type": "semantic_vad", "eagerness": "low", "create_response": True, "interrupt_response": True
    }


def test_spec_round_trips_through_json_with_its_hash(demo: Any) -> None:
    spec = compile_scenario("retail")
    again = ScenarioSpec.from_json(spec.to_json())
    assert again.hash == spec.hash == compile_scenario("retail").hash
