"""Tools: validated, run concurrently, errors go back to the model as output, never raised."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from realtime import events as ev
from realtime.server import RealtimeServer, function_call, response

from .factories import make_session


def _outputs(server: RealtimeServer) -> dict[str, Any]:
    """function_call_output text by call_id, as the server's conversation holds it."""
    found = {}
    for event in server.sessions[0].client_events:
        item = event.get("item") or {}
        if event.get("type") == "conversation.item.create" and item.get("type") == "function_call_output":
            found[item["call_id"]] = json.loads(item["output"])
    return found


async def _call(server: RealtimeServer, name: str, args: dict[str, Any] | str, *, after: str = "Done.", **kw: Any):
    server.script(response("Hi."), response(function_call(name, args, call_id="call_1")), response(after))
    session, rec = make_session(server, **kw)
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    await session.send_text("please check")
    return session, rec


async def _carries_on(session, rec, text: str = "Done.") -> None:
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text == text, timeout=4)
    assert session.state == "active"
    await session.close()
    assert [i.text for i in session.transcript] == ["Hi.", "please check", text]


async def test_python_tool_result_goes_back_to_the_model(server: RealtimeServer) -> None:
    session, rec = await _call(server, "lookup_order", {"order_id": 42})
    finished = await rec.wait_type(ev.ToolFinished)
    assert finished.result == {"order_id": 42, "status": "shipped"} and finished.error is None
    started = rec.of(ev.ToolStarted)[0]
    assert started.arguments == {"order_id": 42} and started.agent == "front"
    assert any(lat.kind == "tool" for lat in rec.of(ev.Latency))
    await _carries_on(session, rec)
    assert _outputs(server)["call_1"] == {"order_id": 42, "status": "shipped"}


async def test_tool_timeout_is_an_output_not_an_exception(server: RealtimeServer) -> None:
    session, rec = await _call(server, "slow_lookup", {}, tool_timeout_s=0.2)
    finished = await rec.wait_type(ev.ToolFinished)
    assert "timed out" in finished.error and finished.status == "timed_out"
    await _carries_on(session, rec)
    assert "timed out" in _outputs(server)["call_1"]["error"]


async def test_tool_error_is_an_output(server: RealtimeServer) -> None:
    session, rec = await _call(server, "broken_lookup", {})
    finished = await rec.wait_type(ev.ToolFinished)
    assert "inventory database unavailable" in finished.error and finished.status == "failed"
    await _carries_on(session, rec)
    assert "RuntimeError" in _outputs(server)["call_1"]["error"]


async def test_invalid_arguments_are_refused_before_running(server: RealtimeServer) -> None:
    ran: list[str] = []

    async def handler(key: str, args: dict[str, Any]) -> Any:
        ran.append(key)
        return {}

    session, rec = await _call(server, "lookup_order", {"order_id": "forty-two"}, handler=handler)
    finished = await rec.wait_type(ev.ToolFinished)
    assert finished.error.startswith("invalid arguments") and "order_id" in finished.error
    await _carries_on(session, rec)
    assert ran == []


async def test_arguments_that_are_not_json_are_an_output(server: RealtimeServer) -> None:
    session, rec = await _call(server, "lookup_order", "{not json")
    finished = await rec.wait_type(ev.ToolFinished)
    assert "not valid JSON" in finished.error
    await _carries_on(session, rec)


async def test_foreign_tool_is_refused(server: RealtimeServer) -> None:
    ran: list[str] = []

    async def handler(key: str, args: dict[str, Any]) -> Any:
        ran.append(key)
        return {"balance": 1}

    session, rec = await _call(server, "billing_balance", {}, handler=handler)  # billing's tool
    finished = await rec.wait_type(ev.ToolFinished)
    assert "not available to the Front agent" in finished.error
    await _carries_on(session, rec)
    assert ran == []


async def test_approved_tool_runs_and_records_who(server: RealtimeServer) -> None:
    session, rec = await _call(server, "issue_refund", {"order_id": 7}, approval_timeout_s=3)
    request = await rec.wait_type(ev.ApprovalRequested)
    assert request.call_id == "call_1" and request.arguments == {"order_id": 7}
    assert await session.resolve_approval("call_1", approved=True, by="alice")
    finished = await rec.wait_type(ev.ToolFinished)
    assert finished.result == {"refunded": 7} and finished.approved_by == "alice"
    assert finished.status == "succeeded"
    await _carries_on(session, rec)


async def test_denied_tool_does_not_run(server: RealtimeServer) -> None:
    session, rec = await _call(server, "issue_refund", {"order_id": 7}, approval_timeout_s=3)
    await rec.wait_type(ev.ApprovalRequested)
    await session.resolve_approval("call_1", approved=False, by="bob")
    finished = await rec.wait_type(ev.ToolFinished)
    assert "denied by bob" in finished.error and finished.result is None
    assert finished.status == "denied"
    await _carries_on(session, rec)


async def test_approval_timeout_refuses_and_says_it_timed_out(server: RealtimeServer) -> None:
    """No approval in time: the tool does not run, and the record says timed out, not denied."""
    session, rec = await _call(server, "issue_refund", {"order_id": 7}, approval_timeout_s=0.2)
    await rec.wait_type(ev.ApprovalRequested)
    finished = await rec.wait_type(ev.ToolFinished)
    assert "no approval in time" in finished.error
    assert finished.status == "timed_out"
    assert not await session.resolve_approval("call_1", approved=True, by="late")
    await _carries_on(session, rec)


async def test_tools_run_concurrently_with_caller_audio(server: RealtimeServer) -> None:
    gate = asyncio.Event()

    async def handler(key: str, args: dict[str, Any]) -> Any:
        await gate.wait()
        return {"order_id": args["order_id"], "status": "shipped"}

    session, rec = await _call(server, "lookup_order", {"order_id": 1}, handler=handler)
    await rec.wait_type(ev.ToolStarted)
    for _ in range(5):  # the tool is still running: audio keeps flowing to the server
        await session.send_audio(b"\x00\x00" * 480)
    await asyncio.sleep(0.1)
    appended = [e for e in server.sessions[0].client_events if e["type"] == "input_audio_buffer.append"]
    assert len(appended) == 5
    gate.set()
    await rec.wait_type(ev.ToolFinished)
    await _carries_on(session, rec)
