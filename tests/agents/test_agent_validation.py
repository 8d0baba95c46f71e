"""Agents: instruction length, model, voice and tool choice are checked; nothing saved on failure."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.urls import reverse

from agents.models import Agent

from .conftest import agent_post_data, make_tool


@override_settings(AGENT_INSTRUCTIONS_MAX_CHARS=40)
def test_long_specialist_instructions_refused_by_the_model(db: Any) -> None:
    agent = Agent(slug="chatty", name="Chatty", instructions="x" * 41, voice="marin")
    with pytest.raises(ValidationError) as caught:
        agent.full_clean()
    assert "limited to 40 characters; these have 41" in caught.value.message_dict["instructions"][0]
    Agent(slug="brief", name="Brief", instructions="x" * 40, voice="marin").full_clean()


@override_settings(AGENT_INSTRUCTIONS_MAX_CHARS=40)
def test_long_instructions_refused_in_the_admin_with_a_live_counter(admin_client: Any) -> None:
    page = admin_client.get(reverse("admin:agents_agent_add")).content.decode()
    assert 'data-max-chars="40"' in page and "agents/charcount.js" in page
    response = admin_client.post(reverse("admin:agents_agent_add"), agent_post_data({"instructions": "y" * 41}))
    assert response.status_code == 200
    assert "limited to 40 characters" in response.content.decode()
    assert not Agent.objects.exists()


@override_settings(AGENT_INSTRUCTIONS_MAX_CHARS=40)
def test_supervisor_instructions_are_not_limited(db: Any) -> None:
    Agent(slug="sup", name="Sup", kind="supervisor", instructions="z" * 400, voice="").full_clean()


def test_voice_must_be_offered_by_the_model(db: Any) -> None:
    agent = Agent(slug="v", name="V", instructions="Hi", voice="nova")
    with pytest.raises(ValidationError) as caught:
        agent.full_clean()
    assert "does not offer the voice 'nova'" in " ".join(caught.value.message_dict["voice"])


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"voice": "nova"}, "voice", "not one of the available choices"),
        ({"model": "gpt-4.1"}, "model", "is not a Realtime model"),
        ({"kind": "supervisor", "model": "gpt-realtime-1.5"}, "model", "not a text model"),
        ({"speed": "3"}, "speed", "less than or equal to 1.5"),
        ({"tool_choice": "lookup_orders"}, "tool_choice", "is not one of this agent's tools"),
        ({"tool_choice": "transfer_to_sales"}, "tool_choice", "has no handoffs yet"),
    ],
)
def test_agent_rules_refuse_in_the_admin(admin_client: Any, fields: dict[str, Any], field: str, words: str) -> None:
    response = admin_client.post(reverse("admin:agents_agent_add"), agent_post_data(fields))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert words in " ".join(errors.get(field, [])), errors
    assert not Agent.objects.exists()


def test_tool_choice_naming_an_own_tool_is_saved(admin_client: Any) -> None:
    tool = make_tool("wrap_up")
    response = admin_client.post(
        reverse("admin:agents_agent_add"), agent_post_data({"tool_choice": "wrap_up"}, [tool])
    )
    assert response.status_code == 302
    assert Agent.objects.get().tool_choice == "wrap_up"
