"""Chat-supervisor: the Responses API at the same base URL, its own tool loop (one call at a time),
a breadcrumb per nested tool call, and a holding line on timeout."""

from __future__ import annotations

import asyncio

from realtime import events as ev
from realtime.server import RealtimeServer, ResponseContext, ScriptedResponse, function_call, response
from realtime.server.testing import running_server

from .factories import make_session

ASK = {"relevant_context_and_last_user_message": "Caller asks: can I get a refund for order 3?"}


async def test_supervisor_runs_its_tool_loop_and_answers(server: RealtimeServer) -> None:
    server.script(
        response("Hi."),
        response(function_call("ask_supervisor", ASK, call_id="sv1")),
        response("Refunds are allowed within 30 days."),
    )
    server.script_text(response(function_call("check_policy", {"order_id": 3})), response("Refunds within 30 days apply."))
    session, rec = make_session(server)
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    await session.send_text("Can I get a refund for order 3?")
    done = await rec.wait_for(lambda e: isinstance(e, ev.ToolFinished) and e.name == "ask_supervisor")
    assert done.result == {"next_response": "Refunds within 30 days apply."}
    nested = [e for e in rec.of(ev.ToolFinished) if e.source == "supervisor"]
    assert [(e.name, e.result) for e in nested] == [("check_policy", {"policy": "refunds within 30 days"})]
    assert [e.name for e in rec.of(ev.ToolStarted) if e.source == "supervisor"] == ["check_policy"]
    requests = server.responses_requests
    assert len(requests) == 2 and all(r["parallel_tool_calls"] is False for r in requests)
    assert requests[0]["instructions"] == "You are the supervisor agent."
    roles = [i.get("role") for i in requests[0]["input"]]
    assert roles[:2] == ["assistant", "user"] and roles[-1] == "developer"
    assert any(i.get("type") == "function_call_output" for i in requests[1]["input"])
    assert any(lat.kind == "supervisor" for lat in rec.of(ev.Latency))
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text.startswith("Refunds are allowed"))
    await session.close()


class SlowResponder:
    async def respond(self, ctx: ResponseContext) -> ScriptedResponse:
        await asyncio.sleep(2)
        return response("too late")


async def test_supervisor_timeout_gives_a_holding_line() -> None:
    async with running_server(text_responder=SlowResponder()) as server:
        server.script(
            response("Hi."), response(function_call("ask_supervisor", ASK, call_id="sv1")), response("One moment please."),
        )
        session, rec = make_session(server, supervisor_timeout_s=0.2)
        await session.start()
        await rec.wait_type(ev.TranscriptDone, role="assistant")
        await session.send_text("refund?")
        done = await rec.wait_for(lambda e: isinstance(e, ev.ToolFinished) and e.name == "ask_supervisor")
        assert done.error is None
        assert done.result["next_response"] == session.config.supervisor_holding_line
        assert [lat.detail for lat in rec.of(ev.Latency) if lat.kind == "supervisor"] == ["timeout"]
        await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text == "One moment please.")
        assert session.state == "active"
        await session.close()
