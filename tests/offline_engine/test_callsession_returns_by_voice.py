"""The platform's engine (`CallSession`) against the offline server, by voice: piper caller speech
in, Silero turn detection, faster-whisper transcripts, policy tool calls and a handoff, piper speech
out. The same audio twice gives the same story and the same server event sequence."""

from __future__ import annotations

from typing import Any

from realtime.server import RealtimeServer
from realtime.session import CallSession

from .retail import settle, start_retail_call
from .speech import Caller, feed

FMT = "audio/pcmu"
UTTERANCES = [
    "My phone number is five five five one two three four five six seven, and my date of birth is March third nineteen eighty five.",
    "I want to return an order.",
    "The rain jacket arrived damaged.",
]


async def _call(server: RealtimeServer, caller: Caller) -> tuple[list[tuple[Any, ...]], list[str], CallSession]:
    call = await start_retail_call(server, FMT)
    rec, session, upstream, busy = call.rec, call.session, call.upstream, call.busy
    async def heard_everything() -> None:  # the caller heard every assistant word (no barge-in)
        for item in session.transcript:
            if item.role == "assistant":
                await session.report_playback(item.item_id, session.playback.generated_ms(item.item_id))

    await settle(rec, busy)
    for text in UTTERANCES:
        await heard_everything()
        await feed(session.send_audio, caller.utterance(text, FMT), FMT, pace=0.1)
        await settle(rec, busy)
    types = [e["type"] for e in upstream.server_events]
    await session.close("hangup")
    return rec.story(), types, session


async def test_returns_by_voice_twice_identically(server: RealtimeServer, caller: Caller) -> None:
    story, types, session = await _call(server, caller)
    tools = [(s[1], s[2]) for s in story if s[0] == "tool"]
    names = [t[0] for t in tools]
    assert tools[0] == ("verify_customer", {"phone_number": "5551234567", "date_of_birth": "1985-03-03"})
    assert names[1] == "transfer_to_returns"
    assert ("handoff", "authentication", "returns") in story
    assert "lookup_orders" in names and names.index("lookup_orders") > names.index("transfer_to_returns")
    assert ("start_return", {"order_id": "ORD-54321", "reason": "damaged"}) in tools  # the jacket, from the lookup
    user_lines = [s[2] for s in story if s[0] == "transcript" and s[1] == "user"]
    assert "555" in user_lines[0] and "return" in user_lines[1].lower()
    assistant_lines = [s[2] for s in story if s[0] == "transcript" and s[1] == "assistant"]
    assert assistant_lines[0] == "Welcome to Acme Retail! How can I help you today?"
    assert any("RET-777" in line for line in assistant_lines)
    assert session.current_agent == "returns"

    again, types_again, _ = await _call(server, caller)
    assert again == story
    assert types_again == types
