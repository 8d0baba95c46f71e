"""Supervisor actions from the call page reach a live browser call through the channel layer and the
call's consumer, against the protocol server: approve/deny a needs-approval tool (who is recorded on
the ToolInvocation), whisper (a system item upstream, no response), say (the agent voices the
supervisor's words), hang up (the call ends). Every action is an audit row and a timeline event."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async

from agents.models import Tool
from calls.models import Call, SupervisorAction, ToolInvocation
from realtime.server import function_call, response
from realtime.session import SAY_INSTRUCTIONS
from tests.calls.conftest import CallClient, browser_call
from tests.dashboard.conftest import close, dashboard_socket

pytestmark = pytest.mark.django_db(transaction=True)

ADA = {"phone_number": "+447700900123", "date_of_birth": "1985-04-23"}


def is_frame(kind: str, **fields: Any) -> Any:
    return lambda f: isinstance(f, dict) and f.get("type") == kind and all(f.get(k) == v for k, v in fields.items())


def tool_event(status: str) -> Any:
    return lambda f: (isinstance(f, dict) and f.get("type") == "event" and f["event"]["type"] == "tool"
                      and f["event"]["status"] == status)


async def call_waiting_for_approval(upstream: Any, operator: Any, supervisor: Any) -> tuple[CallClient, CallClient, int]:
    """A browser call whose agent calls verify_customer (marked needs-approval), and the supervisor's
    call page socket, once the tool call shows as awaiting approval."""
    await database_sync_to_async(Tool.objects.filter(name="verify_customer").update)(needs_approval=True)
    upstream.script(
        response("Hello, who am I speaking with?"),
        response(function_call("verify_customer", ADA, call_id="fc_verify")),
        response("Thank you, you are verified."),
    )
    call = await browser_call(operator)
    hello = await call.wait_for(is_frame("call"))
    await call.wait_event("transcript.done", role="assistant")
    page, connected = await dashboard_socket(supervisor, f"/ws/dashboard/calls/{hello['call_id']}/?last_seq=0")
    assert connected
    await page.wait_for(is_frame("snapshot"))
    await call.communicator.send_json_to({"type": "text", "text": "It's Ada, +447700900123, born 23 April 1985"})
    waiting = await page.wait_for(tool_event("awaiting_approval"))
    assert waiting["event"]["tool_call_id"] == "fc_verify" and waiting["event"]["arguments"] == ADA
    return call, page, hello["call_id"]


async def test_approve_resolves_the_tool_and_records_who(live_demo: Any, upstream: Any, operator: Any,
                                                        supervisor: Any) -> None:
    call, page, call_id = await call_waiting_for_approval(upstream, operator, supervisor)
    row = await database_sync_to_async(ToolInvocation.objects.get)(call_id=call_id, call_id_ref="fc_verify")
    assert row.status == "awaiting_approval"

    await page.communicator.send_json_to({"type": "action", "action": "approve", "tool_call_id": "fc_verify",
                                          "request_id": 1})
    result = await page.wait_for(is_frame("action_result", request_id=1))
    assert result["ok"] is True
    finished = await call.wait_event("tool.finished", name="verify_customer")
    assert finished.get("error") is None and "result" not in finished  # the caller never sees tool outputs
    done = await page.wait_for(tool_event("succeeded"))
    assert done["event"]["approved_by"] == "sam" and done["event"]["result"]["verified"] is True
    audit = await page.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "event"
                                and f["event"]["type"] == "supervisor")
    assert (audit["event"]["action"], audit["event"]["by"], audit["event"]["tool_call_id"]) == (
        "approve", "sam", "fc_verify")
    await call.wait_event("transcript.done", role="assistant", text="Thank you, you are verified.")

    row = await database_sync_to_async(ToolInvocation.objects.get)(call_id=call_id, call_id_ref="fc_verify")
    assert (row.status, row.approved_by) == ("succeeded", "sam")
    action = await database_sync_to_async(SupervisorAction.objects.get)(call_id=call_id)
    assert (action.kind, action.username, action.user_id, action.tool_call_id) == (
        "approve", "sam", supervisor.pk, "fc_verify")

    # Nothing waits any more: a second approval is refused, and not recorded.
    await page.communicator.send_json_to({"type": "action", "action": "approve", "tool_call_id": "fc_verify",
                                          "request_id": 2})
    refused = await page.wait_for(is_frame("action_result", request_id=2))
    assert refused["ok"] is False and "waiting for approval" in refused["detail"]
    assert await database_sync_to_async(SupervisorAction.objects.filter(call_id=call_id).count)() == 1

    await call.communicator.send_json_to({"type": "hangup"})
    await call.wait_closed()
    await close(page)


async def test_no_answer_in_time_is_recorded_as_timed_out(
        live_demo: Any, upstream: Any, operator: Any, supervisor: Any, settings: Any) -> None:
    """Nobody approved: the tool does not run, and the audit says timed out (not denied by anyone)."""
    settings.TOOL_APPROVAL_TIMEOUT_SECONDS = 1.0
    call, page, call_id = await call_waiting_for_approval(upstream, operator, supervisor)
    await call.wait_event("tool.finished", name="verify_customer")
    timed_out = await page.wait_for(tool_event("timed_out"))
    assert "no approval in time" in timed_out["event"]["error"]
    row = await database_sync_to_async(ToolInvocation.objects.get)(call_id=call_id, call_id_ref="fc_verify")
    assert (row.status, row.approved_by) == ("timed_out", "")
    assert "no approval in time" in row.error
    await call.communicator.send_json_to({"type": "hangup"})
    await call.wait_closed()
    await close(page)


async def test_deny_then_hang_up(live_demo: Any, upstream: Any, operator: Any, supervisor: Any) -> None:
    call, page, call_id = await call_waiting_for_approval(upstream, operator, supervisor)
    await page.communicator.send_json_to({"type": "action", "action": "deny", "tool_call_id": "fc_verify"})
    finished = await call.wait_event("tool.finished", name="verify_customer")
    assert finished["error"] == "failed"  # the caller's view; who denied it is for staff
    denied = await page.wait_for(tool_event("denied"))
    assert "was denied by sam" in denied["event"]["error"]
    row = await database_sync_to_async(ToolInvocation.objects.get)(call_id=call_id, call_id_ref="fc_verify")
    assert (row.status, row.approved_by) == ("denied", "sam")

    await page.communicator.send_json_to({"type": "action", "action": "hangup"})
    ended = await call.wait_for(is_frame("ended"))
    assert ended["reason"] == "ended_by_supervisor"
    assert await call.wait_closed() == 1000
    await page.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "event"
                        and f["event"]["type"] == "call_ended")
    record = await database_sync_to_async(Call.objects.get)(pk=call_id)
    assert (record.status, record.end_reason) == ("ended", "ended_by_supervisor")
    kinds = await database_sync_to_async(
        lambda: list(SupervisorAction.objects.filter(call_id=call_id).values_list("kind", "username")))()
    assert kinds == [("deny", "sam"), ("hangup", "sam")]

    # The call is over: further actions are refused.
    await page.communicator.send_json_to({"type": "action", "action": "whisper", "text": "too late", "request_id": 9})
    refused = await page.wait_for(is_frame("action_result", request_id=9))
    assert refused["ok"] is False and "ended" in refused["detail"]
    await close(page)


async def test_whisper_reaches_the_upstream_session_and_say_is_spoken(live_demo: Any, upstream: Any,
                                                                      operator: Any, supervisor: Any) -> None:
    upstream.script(response("Hello, how can I help?"), response("A supervisor here: your refund is approved."))
    call = await browser_call(operator)
    hello = await call.wait_for(is_frame("call"))
    await call.wait_event("transcript.done", role="assistant")
    await call.wait_event("usage")
    page, _ = await dashboard_socket(supervisor, f"/ws/dashboard/calls/{hello['call_id']}/")
    await page.wait_for(is_frame("snapshot"))
    live = upstream.sessions[0]
    responses_before = sum(e["type"] == "response.create" for e in live.client_events)

    await page.communicator.send_json_to({"type": "action", "action": "whisper", "text": "Offer free shipping."})
    await page.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "event"
                        and f["event"]["type"] == "supervisor" and f["event"]["action"] == "whisper")

    def whispered() -> list[dict[str, Any]]:
        return [i.data for i in live.items if i.data.get("role") == "system"
                and "Offer free shipping." in i.data["content"][0]["text"]]

    for _ in range(100):
        if whispered():
            break
        await call.drain(0.05)
    [item] = whispered()
    assert "sam" in item["content"][0]["text"] and "caller cannot hear" in item["content"][0]["text"]
    assert sum(e["type"] == "response.create" for e in live.client_events) == responses_before
    assert not [f for f in call.events("transcript.done") if "free shipping" in f["text"]], \
        "the caller's page never shows the whisper"

    await page.communicator.send_json_to({"type": "action", "action": "say",
                                          "text": "A supervisor here: your refund is approved."})
    spoken = await call.wait_event("transcript.done", role="assistant",
                                   text="A supervisor here: your refund is approved.")
    assert spoken["agent"] == "authentication"
    create = [e for e in live.client_events if e["type"] == "response.create"][-1]
    assert create["response"]["instructions"] == SAY_INSTRUCTIONS + '"A supervisor here: your refund is approved."'
    kinds = await database_sync_to_async(
        lambda: list(SupervisorAction.objects.filter(call_id=hello["call_id"]).values_list("kind", "text")))()
    assert kinds == [("whisper", "Offer free shipping."), ("say", "A supervisor here: your refund is approved.")]

    await call.communicator.send_json_to({"type": "hangup"})
    await call.wait_closed()
    await close(page)
