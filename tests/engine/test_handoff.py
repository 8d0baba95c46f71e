"""Sequential handoffs: session.update before the output, fallback on a bad target or past the
depth cap, and the call carries on with the transcript intact."""

from __future__ import annotations

from realtime import events as ev
from realtime.server import RealtimeServer, function_call, response

from .factories import TRANSFER_PARAMS, make_session, retail_spec

SUMMARY = {"reason": "billing question", "conversation_summary": "caller asks about a charge"}


def _client_types(server: RealtimeServer, index: int = 0) -> list[str]:
    return [e.get("type", "") for e in server.sessions[index].client_events]


async def test_handoff_updates_session_before_output_and_new_agent_continues(server: RealtimeServer) -> None:
    server.script(
        response("Hello."),
        response(function_call("transfer_to_billing", SUMMARY, call_id="call_t1")),
        response("Billing here, I see the charge."),
    )
    session, rec = make_session(server)
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    await session.send_text("I have a question about a charge")
    handoff = await rec.wait_type(ev.Handoff)
    assert (handoff.from_agent, handoff.to_agent, handoff.depth, handoff.fallback) == ("front", "billing", 1, False)
    assert handoff.reason == "billing question" and handoff.context == "caller asks about a charge"
    assert handoff.duration_ms >= 0
    done = await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text.startswith("Billing here"))
    assert done.agent == "billing"
    assert session.current_agent == "billing"
    events = server.sessions[0].client_events
    update_at = max(i for i, e in enumerate(events) if e["type"] == "session.update")
    output_at = next(
        i for i, e in enumerate(events)
        if e["type"] == "conversation.item.create" and e["item"].get("type") == "function_call_output"
    )
    assert update_at < output_at
    update = events[update_at]["session"]
    assert "billing agent" in update["instructions"] and "do not greet" in update["instructions"]
    assert [t["name"] for t in update["tools"]] == ["billing_balance", "transfer_to_front"]
    assert [a.agent for a in rec.of(ev.AgentChanged)] == ["front", "billing"]
    assert not server.sessions[0].errors
    await session.close()
    assert [i.text for i in session.transcript] == [
        "Hello.", "I have a question about a charge", "Billing here, I see the charge.",
    ]


async def test_voice_is_kept_after_first_audio(server: RealtimeServer) -> None:
    server.script(
        response("Hello there.", ms_per_word=20),
        response(function_call("transfer_to_billing", SUMMARY)),
        response("Billing speaking.", ms_per_word=20),
    )
    session, rec = make_session(server, retail_spec(modality="audio"))
    await session.start()
    await rec.wait_type(ev.AudioOut)
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    await session.send_text("billing please")
    handoff = await rec.wait_type(ev.Handoff)
    assert handoff.voice_kept == "marin"  # billing's own voice (cedar) cannot be used after audio
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.agent == "billing")
    updates = [e["session"] for e in server.sessions[0].client_events if e["type"] == "session.update"]
    assert updates[-1]["audio"]["output"]["voice"] == "marin"
    assert not server.sessions[0].errors  # the server refuses a voice change after audio
    await session.close()


async def test_unknown_target_routes_to_fallback_agent(server: RealtimeServer) -> None:
    server.script(
        response("Hi."),
        response(function_call("transfer_to_ghost", SUMMARY)),
        response("A colleague will take it from here."),
    )
    session, rec = make_session(server)
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    await session.send_text("transfer me")
    handoff = await rec.wait_type(ev.Handoff)
    assert handoff.requested_agent == "ghost"
    assert handoff.to_agent == "human_escalation" and handoff.fallback
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text.startswith("A colleague"))
    assert session.current_agent == "human_escalation"
    assert session.state == "active"
    await session.close()
    assert [i.text for i in session.transcript][-1] == "A colleague will take it from here."


async def test_depth_cap_routes_to_fallback_then_refuses_without_loop(server: RealtimeServer) -> None:
    server.script(
        response("Hi."),
        response(function_call("transfer_to_billing", SUMMARY)),   # depth 1: allowed
        response(function_call("transfer_to_front", SUMMARY)),     # depth 2 > cap: fallback
        response(function_call("transfer_to_front", SUMMARY)),     # fallback agent, cap: refused
        response("I will keep helping you myself."),
    )
    session, rec = make_session(server, retail_spec(max_depth=1))
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    await session.send_text("go around")
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text.startswith("I will keep"), timeout=5)
    handoffs = rec.of(ev.Handoff)
    assert [(h.from_agent, h.to_agent, h.fallback) for h in handoffs] == [
        ("front", "billing", False), ("billing", "human_escalation", True),
    ]
    refused = [e for e in rec.of(ev.ToolFinished) if e.error]
    assert len(refused) == 1 and "not possible" in refused[0].error
    assert session.current_agent == "human_escalation"
    assert session.state == "active"
    await session.close()


async def test_another_agents_transfer_tool_reaches_nothing(server: RealtimeServer) -> None:
    server.script(
        response("Hi."),
        response(function_call("transfer_to_front", SUMMARY)),  # billing's tool, front is speaking
        response("Still me, how can I help?"),
    )
    session, rec = make_session(server)
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    await session.send_text("hello")
    finished = await rec.wait_type(ev.ToolFinished)
    assert "not available" in (finished.error or "")
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text.startswith("Still me"))
    assert not rec.of(ev.Handoff) and session.current_agent == "front"
    await session.close()


async def test_the_contract_fields_travel_with_the_handoff(server: RealtimeServer) -> None:
    spec = retail_spec()
    front = spec.agent("front")
    contract = {**TRANSFER_PARAMS, "properties": {**TRANSFER_PARAMS["properties"], "customer_phone": {"type": "string"}},
                "required": [*TRANSFER_PARAMS["required"], "customer_phone"]}
    tools = tuple(t.model_copy(update={"parameters": contract}) if t.name == "transfer_to_billing" else t
                  for t in front.tools)
    spec = spec.model_copy(update={"agents": {**spec.agents, "front": front.model_copy(update={"tools": tools})}})
    server.script(
        response("Hello."),
        response(function_call("transfer_to_billing", {**SUMMARY, "customer_phone": "+447700900123"})),
        response("Billing here."),
    )
    session, rec = make_session(server, spec)
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    await session.send_text("A question about my bill")
    handoff = await rec.wait_type(ev.Handoff)
    assert handoff.fields == {"customer_phone": "+447700900123"}
    assert handoff.to_dict()["fields"] == {"customer_phone": "+447700900123"}
    await session.close()


async def test_the_handoff_is_applied_when_the_server_confirms_its_session(server: RealtimeServer) -> None:
    server.script(
        response("Hello."),
        response(function_call("transfer_to_billing", SUMMARY)),
        response("Billing here."),
    )
    session, rec = make_session(server)
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    await session.send_text("a question about a charge")
    handoff = await rec.wait_type(ev.Handoff)
    applied = await rec.wait_type(ev.HandoffApplied)
    assert (applied.to_agent, applied.depth, applied.applied, applied.error) == ("billing", handoff.depth, True, "")
    assert applied.ms >= 0
    # Every session.update the engine sent was answered, the handoff's among them.
    updates = [e for e in server.sessions[0].client_events if e["type"] == "session.update"]
    assert all(u.get("event_id") for u in updates) and len(updates) == 2
    assert not session._pending_updates
    await session.close()


async def test_a_handoff_session_the_server_refuses_is_reported_and_the_call_goes_on(server: RealtimeServer) -> None:
    server.script(
        response("Hello."),
        response(function_call("transfer_to_billing", SUMMARY)),
        response("Billing here."),
    )
    session, rec = make_session(server)  # text answers: the engine has heard no audio, so it asks for billing's voice
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    server.sessions[0].audio_produced = True  # ... but the server has produced audio: a voice change is refused
    await session.send_text("a question about a charge")
    applied = await rec.wait_type(ev.HandoffApplied)
    assert (applied.to_agent, applied.applied) == ("billing", False)
    assert applied.error.startswith("cannot_update_voice")
    done = await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text == "Billing here.")
    assert done.agent == "billing" and session.state == "active"
    await session.close()
