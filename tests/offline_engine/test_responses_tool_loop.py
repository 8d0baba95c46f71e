"""`/v1/responses` answered by the policy in text mode through the openai package unchanged: the
supervisor's tool loop (function call -> output -> answer) and a post-call summary."""

from __future__ import annotations

import json

from realtime.server import RealtimeServer
from realtime.server.testing import openai_client_for

SUPERVISOR = "You are the supervisor for Nimbus Mobile's junior agents. Answer their question using your tools."
TOOLS = [
    {"type": "function", "name": "lookup_policy", "description": "Look up the company policy on a topic such as roaming, billing, upgrades or cancellation.",
     "parameters": {"type": "object", "properties": {"topic": {"type": "string", "description": "The policy topic"}}, "required": ["topic"]}},
    {"type": "function", "name": "find_store", "description": "Find the nearest store by ZIP code.",
     "parameters": {"type": "object", "properties": {"zip_code": {"type": "string", "description": "Five digit ZIP code", "pattern": r"^\d{5}$"}}, "required": ["zip_code"]}},
]


async def test_supervisor_tool_loop_and_summary(server: RealtimeServer) -> None:
    client = openai_client_for(server)
    question = "Where is the nearest store to ZIP code 94107?"
    first = await client.responses.create(model="gpt-4.1", instructions=SUPERVISOR, tools=TOOLS, input=question)  # type: ignore[arg-type]
    calls = [o for o in first.output if o.type == "function_call"]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("find_store", {"zip_code": "94107"})]
    history = [{"role": "user", "content": question}, *[c.model_dump(exclude_none=True) for c in calls],
               {"type": "function_call_output", "call_id": calls[0].call_id, "output": json.dumps({"store": "Market Street", "hours": "9 to 6"})}]
    second = await client.responses.create(model="gpt-4.1", instructions=SUPERVISOR, tools=TOOLS, input=history)  # type: ignore[arg-type]
    assert not [o for o in second.output if o.type == "function_call"]
    assert "Market Street" in second.output_text
    assert second.usage is not None and second.usage.output_tokens > 0
    again = await client.responses.create(model="gpt-4.1", instructions=SUPERVISOR, tools=TOOLS, input=question)  # type: ignore[arg-type]
    assert [o.model_dump(exclude={"id"}) for o in again.output] == [o.model_dump(exclude={"id"}) for o in first.output]

    summary = await client.responses.create(
        model="gpt-4.1-mini", instructions="Summarize this customer call in two sentences.",
        input="user: I want to return my rain jacket.\nassistant: I started return RET-777 for order ORD-54321.",
    )
    assert "RET-777" in summary.output_text or "return" in summary.output_text.lower()
