"""An agent's "phrases callers use" compile into its instructions (their own section), and the
offline engine's policy reads them as vocabulary for that scenario only."""

from __future__ import annotations

from agents.compile import compile_scenario
from agents.models import Agent
from realtime.offline.policy import DialoguePolicy

from .openai_strict import strict_session_update


def test_caller_phrases_compile_into_the_instructions(demo: None) -> None:
    before = compile_scenario("retail").root.session["instructions"]
    agent = Agent.objects.get(slug=compile_scenario("retail").root.slug)
    agent.caller_phrases = "the thingy with my parcel: order\n\n- my stuff came busted: damaged"
    agent.full_clean()
    agent.save()
    spec = compile_scenario("retail")
    session = spec.root.session
    strict_session_update(session)
    assert session["instructions"] == (
        before.rstrip() + "\n\nPhrases callers use:\n- the thingy with my parcel: order\n- my stuff came busted: damaged\n"
    )
    assert spec.root.instructions == session["instructions"]


def test_the_policy_reads_compiled_phrases() -> None:
    agent = Agent(instructions="You are the outage line.", caller_phrases="the juice is gone: power outage")
    tools = [{
        "type": "function", "name": "report_outage", "description": "Report a service outage.",
        "parameters": {"type": "object", "properties": {
            "service": {"type": "string", "enum": ["power", "gas", "water"], "description": "Which service is out"}},
            "required": ["service"]},
    }]
    said = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "The juice is gone in my flat."}]}]
    assert DialoguePolicy().respond(agent.instructions, tools, said).function_call is None
    call = DialoguePolicy().respond(agent.compiled_instructions, tools, said).function_call
    assert call is not None and call.arguments == {"service": "power"}
