"""tool_choice "required" loop guard: after N forced tool turns in a row, one turn with auto."""

from __future__ import annotations

from realtime import events as ev
from realtime.server import RealtimeServer, function_call, response

from .factories import make_session, retail_spec


async def test_forced_tool_turns_are_relaxed_once(server: RealtimeServer) -> None:
    server.script(
        response("Hi."),
        response(function_call("lookup_order", {"order_id": 1})),
        response(function_call("lookup_order", {"order_id": 2})),
        response("Both orders have shipped."),
    )
    session, rec = make_session(server, retail_spec(front_tool_choice="required"), required_tool_turns_limit=2)
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    await session.send_text("check my orders")
    relaxed = await rec.wait_type(ev.ToolChoiceRelaxed, timeout=4)
    assert relaxed.forced_turns == 2 and relaxed.agent == "front"
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text == "Both orders have shipped.")
    creates = [e for e in server.sessions[0].client_events if e["type"] == "response.create"]
    choices = [(c.get("response") or {}).get("tool_choice") for c in creates]
    assert choices == [None, None, None, "auto"]
    assert server.sessions[0].client_events[0]["session"]["tool_choice"] == "required"
    await session.close()
    assert [i.text for i in session.transcript][-1] == "Both orders have shipped."
