"""A whole browser call: caller audio and text through the consumer, a tool call, a handoff, another
tool, usage; everything recorded in the database; the socket sees the wire protocol."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async

from calls.models import Call, HandoffEvent, SessionSegment, ToolInvocation, TranscriptItem
from calls.scenarios import compile_for_call
from realtime.server import function_call, response
from tests.calls.conftest import browser_call, speech_frames, transfer_arguments

pytestmark = pytest.mark.django_db(transaction=True)

ADA = {"phone_number": "+447700900123", "date_of_birth": "1985-04-23"}


async def test_browser_call_runs_through_a_tool_and_a_handoff(live_demo: Any, upstream: Any, operator: Any) -> None:
    _, spec = await database_sync_to_async(compile_for_call)("retail")
    upstream.script(
        response("Hello, thanks for calling. Who am I speaking with?"),
        response(function_call("verify_customer", ADA)),
        response(function_call("transfer_to_returns", transfer_arguments(spec, "authentication", "returns"))),
        response(function_call("lookup_orders", {"phone_number": ADA["phone_number"]})),
        response("I can see your headphones order. Shall I start the return?"),
    )
    upstream.add_transcripts("It's Ada Lovelace, plus four four seven seven double oh nine hundred one two three")
    # A staff caller: the page's log shows the raw protocol and tool outputs (what a caller who is not
    # staff sees instead: tests/security/test_caller_event_stream.py).
    operator.is_staff = True
    await database_sync_to_async(operator.save)()
    call = await browser_call(operator)

    hello = await call.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "call")
    assert (hello["scenario"], hello["agent"]) == ("retail", "authentication")
    audio_start = await call.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "audio")
    await call.wait_for(lambda f: isinstance(f, bytes))
    greeting = await call.wait_event("transcript.done", role="assistant")
    assert greeting["item_id"] == audio_start["item_id"]
    await call.communicator.send_json_to({"type": "playback", "item_id": greeting["item_id"], "played_ms": 99999})

    for frame in speech_frames():
        await call.communicator.send_to(bytes_data=frame)
    user_turn = await call.wait_event("transcript.done", role="user")
    assert user_turn["text"].startswith("It's Ada Lovelace")

    verified = await call.wait_event("tool.finished", name="verify_customer")
    assert verified["result"]["verified"] is True
    handoff = await call.wait_event("handoff")
    assert (handoff["from_agent"], handoff["to_agent"]) == ("authentication", "returns")
    await call.wait_event("tool.finished", name="lookup_orders")
    await call.wait_event("transcript.done", role="assistant",
                          text="I can see your headphones order. Shall I start the return?")
    assert call.events("protocol"), "raw protocol events reach the event log"
    assert {e["direction"] for e in call.events("protocol")} == {"client", "server"}
    assert call.events("usage")
    seqs = [f["seq"] for f in call.texts() if f.get("type") == "event"]
    assert seqs == list(range(1, len(seqs) + 1))

    await call.communicator.send_json_to({"type": "hangup"})
    ended = await call.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "ended")
    assert ended["reason"] == "hangup"
    assert await call.wait_closed() == 1000

    record = await database_sync_to_async(lambda: Call.objects.get(pk=hello["call_id"]))()
    assert (record.status, record.end_reason, record.channel, record.current_agent) == (
        "ended", "hangup", "browser", "returns")
    assert record.spec_hash == spec.hash and record.user_id == operator.pk
    assert record.cost > 0 and set(record.usage) >= {"authentication", "returns"}

    def rows() -> tuple[list[Any], list[Any], list[Any], list[Any]]:
        return (list(TranscriptItem.objects.filter(call=record).values_list("role", "text")),
                list(HandoffEvent.objects.filter(call=record).values_list("from_agent", "to_agent", "depth")),
                list(ToolInvocation.objects.filter(call=record).values_list("name", "status", "agent")),
                list(SessionSegment.objects.filter(call=record).values_list("index", "end_reason")))

    transcript, handoffs, tools, segments = await database_sync_to_async(rows)()
    assert ("assistant", "Hello, thanks for calling. Who am I speaking with?") in transcript
    assert ("user", user_turn["text"]) in transcript
    assert ("assistant", "I can see your headphones order. Shall I start the return?") in transcript
    assert handoffs == [("authentication", "returns", 1)]
    assert ("verify_customer", "succeeded", "authentication") in tools
    assert ("transfer_to_returns", "succeeded", "authentication") in tools
    assert ("lookup_orders", "succeeded", "returns") in tools
    assert segments == [(0, "hangup")]
    # The audit keeps what travelled with the caller: reason, summary and the contract's fields.
    handoff = await database_sync_to_async(lambda: HandoffEvent.objects.get(call=record))()
    sent = transfer_arguments(spec, "authentication", "returns")
    assert handoff.reason == sent["reason"]
    assert handoff.context["summary"] == sent["conversation_summary"]
    assert handoff.context["fields"] == {k: v for k, v in sent.items() if k not in ("reason", "conversation_summary")}
    # ... and that the server put the new agent in force (its session.updated answered the update).
    assert handoff.applied is True and handoff.applied_ms is not None and handoff.apply_error == ""
    assert handoff.context["fields"]
