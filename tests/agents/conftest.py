"""Fixtures for the configuration domain: the demo scenarios and small agents/tools to break."""

from __future__ import annotations

from typing import Any

import pytest

from agents.models import Agent, HandoffEdge, Scenario, Tool
from demo.loader import load_demo


@pytest.fixture
def demo(db: Any) -> None:
    load_demo()


def make_tool(name: str, **fields: Any) -> Tool:
    defaults: dict[str, Any] = {
        "description": f"{name} tool",
        "parameters": {"type": "object", "properties": {}, "required": []},
        "kind": "builtin",
        "builtin": "end_call",
    }
    defaults.update(fields)
    tool = Tool(name=name, **defaults)
    tool.full_clean()
    tool.save()
    return tool


def make_agent(slug: str, tools: tuple[Tool, ...] = (), **fields: Any) -> Agent:
    defaults: dict[str, Any] = {"name": slug.title(), "instructions": f"You are {slug}.", "voice": "marin"}
    defaults.update(fields)
    agent = Agent(slug=slug, **defaults)
    agent.full_clean()
    agent.save()
    agent.tools.set(tools)
    return agent


@pytest.fixture
def small_graph(db: Any) -> Scenario:
    """front → billing, both members: a valid two-agent scenario."""
    front = make_agent("front")
    billing = make_agent("billing")
    scenario = Scenario.objects.create(slug="small", name="Small", root_agent=front)
    scenario.agents.set([front, billing])
    HandoffEdge.objects.create(scenario=scenario, from_agent=front, to_agent=billing, when="billing questions")
    scenario.validate_graph()
    return scenario


def scenario_post_data(
    *, slug: str, name: str, root: Agent, members: list[Agent], edges: list[tuple[Agent, Agent]],
    supervisor: Agent | None = None, fallback: Agent | None = None,
) -> dict[str, Any]:
    """The POST body of the scenario add form, handoff inline included."""
    data: dict[str, Any] = {
        "name": name, "slug": slug, "description": "",
        "root_agent": str(root.pk),
        "supervisor_agent": str(supervisor.pk) if supervisor else "",
        "fallback_agent": str(fallback.pk) if fallback else "",
        "agents": [str(a.pk) for a in members],
        "max_handoff_depth": "6", "max_session_seconds": "3600", "summarize_every_turns": "5",
        "max_call_seconds": "1800", "blocked_phrases": "[]", "off_brand_terms": "[]", "guardrail_patterns": "[]",
        "escalation_webhook_url": "",
        "edges-TOTAL_FORMS": str(len(edges)), "edges-INITIAL_FORMS": "0",
        "edges-MIN_NUM_FORMS": "0", "edges-MAX_NUM_FORMS": "1000",
    }
    for index, (source, target) in enumerate(edges):
        data.update({
            f"edges-{index}-id": "", f"edges-{index}-from_agent": str(source.pk),
            f"edges-{index}-to_agent": str(target.pk), f"edges-{index}-when": "when needed",
            f"edges-{index}-contract": "[]",
        })
    return data


def agent_post_data(agent_fields: dict[str, Any], tools: list[Tool] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """The POST body of the agent add form."""
    data: dict[str, Any] = {
        "name": "Agent", "slug": "agent", "kind": "realtime", "instructions": "Help the caller.",
        "handoff_description": "", "model": "", "voice": "marin", "output_modality": "audio", "speed": "1.0",
        "max_output_tokens": "", "turn_detection": "server_vad", "vad_threshold": "", "vad_prefix_padding_ms": "",
        "vad_silence_duration_ms": "", "vad_idle_timeout_ms": "", "vad_create_response": "on",
        "vad_interrupt_response": "on", "vad_eagerness": "auto", "transcription_model": "gpt-transcribe",
        "transcription_language": "en", "noise_reduction": "near_field", "tool_choice": "auto",
        "tools": [str(t.pk) for t in tools],
    }
    data.update(agent_fields)
    return data
