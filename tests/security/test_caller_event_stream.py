"""Finding 6: a caller who is not staff gets a caller-safe event stream: no agent instructions,
no tool schemas, arguments or outputs, no supervisor whispers, no raw protocol payloads. Staff
keep the full protocol log on the call page."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from calls.events import caller_safe_event
from calls.models import call_group
from calls.scenarios import compile_for_call
from realtime.server import function_call, response
from tests.calls.conftest import browser_call

pytestmark = pytest.mark.django_db(transaction=True)

ADA = {"phone_number": "+447700900123", "date_of_birth": "1985-04-23"}
WHISPER = "Offer the caller a goodwill voucher, code SUPERVISOR-ONLY-7731."


@pytest.fixture
def staff(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("sam", password="watch-the-calls-123", is_staff=True)


async def a_call_with_a_tool_and_a_whisper(user: Any, upstream: Any) -> tuple[Any, str]:
    _, spec = await database_sync_to_async(compile_for_call)("retail")
    upstream.script(
        response("Hello, thanks for calling."),
        response(function_call("verify_customer", ADA)),
        response("Thanks, you are verified."),
    )
    call = await browser_call(user)
    hello = await call.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "call")
    await call.wait_event("transcript.done", role="assistant")
    await call.communicator.send_json_to({"type": "text", "text": "I am Ada, born 23 April 1985."})
    await call.wait_event("tool.finished", name="verify_customer")
    await call.wait_event("transcript.done", role="assistant", text="Thanks, you are verified.")
    await get_channel_layer().group_send(call_group(hello["call_id"]), {
        "type": "call.supervisor", "action": "whisper", "by": "sam", "text": WHISPER})
    await call.wait_for(lambda f: WHISPER in json.dumps(upstream.sessions[-1].client_events[-5:]))
    await call.drain(0.3)
    await call.communicator.send_json_to({"type": "hangup"})
    await call.wait_closed()
    return call, spec.agent(spec.root_agent).instructions


async def test_the_caller_sees_no_instructions_tools_or_whispers(live_demo: Any, upstream: Any,
                                                                 operator: Any) -> None:
    call, instructions = await a_call_with_a_tool_and_a_whisper(operator, upstream)
    wire = json.dumps(call.texts())
    assert instructions[:60] not in wire
    assert WHISPER not in wire and "SUPERVISOR-ONLY" not in wire
    assert '"parameters"' not in wire and '"properties"' not in wire  # tool schemas
    assert '"verified"' not in wire  # the tool's output
    assert ADA["date_of_birth"] not in wire  # the tool's arguments
    for event in (f["event"] for f in call.texts() if f.get("type") == "event"):
        if event["type"] == "protocol":
            assert set(event["payload"]) <= {"type", "event_id", "item_id", "response_id"}, event
    # What the page shows still arrives: the transcript, the tool's name, the agent.
    assert [e for e in call.events("tool.finished") if e["name"] == "verify_customer"]
    assert call.events("transcript.done") and call.events("agent.changed")


async def test_staff_keep_the_full_protocol_log(live_demo: Any, upstream: Any, staff: Any) -> None:
    call, instructions = await a_call_with_a_tool_and_a_whisper(staff, upstream)
    wire = json.dumps(call.texts())
    assert instructions[:60] in wire and WHISPER in wire and '"verified"' in wire


def test_every_engine_event_type_has_a_caller_view() -> None:
    """An event type the projection does not know is never passed through as it is."""
    assert caller_safe_event({"type": "something.new", "secret": "x"}) is None
    safe = caller_safe_event({"type": "tool.finished", "name": "t", "call_id": "c", "arguments": {"a": 1},
                              "agent": "g", "result": {"r": 2}, "error": "boom at 10.0.0.7", "duration_ms": 3.0})
    assert safe == {"type": "tool.finished", "name": "t", "call_id": "c", "agent": "g", "error": "failed",
                    "duration_ms": 3.0}
