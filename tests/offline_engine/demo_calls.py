"""Demo-scenario calls by voice through the platform's consumers against the offline server:
Twilio Media Streams (mu-law 8 kHz media messages) and the browser call socket (pcm16 24 kHz binary
frames). Piper speaks the caller; the caller hears every assistant word before speaking again."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from channels.db import database_sync_to_async

from calls.models import Call, Escalation, HandoffEvent, ToolInvocation, TranscriptItem
from realtime.server import RealtimeServer
from tests.calls.conftest import CallClient

from .speech import Caller, frames

# The demo's customers and accounts (demo/loader.py), as a caller says them.
ADA_PHONE = "+447700900123"
ADA_DETAILS = ("My phone number is plus four four, seven seven zero zero, nine zero zero, one two three. "
               "My date of birth is April twenty third, nineteen eighty five.")
KATHERINE_PHONE = "+447700900789"


class VoiceCall:
    """Caller speech into a call socket, and waiting until the call has nothing more to say."""

    TOOL_WAIT_S = 10.0

    def __init__(self, client: CallClient, server: RealtimeServer, caller: Caller, fmt: str, *, twilio: bool) -> None:
        self.client = client
        self.server = server
        self.caller = caller
        self.fmt = fmt
        self.twilio = twilio
        self.sequence = 0
        self.chunk = 0
        self.acked = 0
        self._tool_waits: dict[Any, float] = {}

    async def _send(self, frame: bytes) -> None:
        if not self.twilio:
            await self.client.communicator.send_to(bytes_data=frame)
            return
        self.chunk += 1
        await self.send_json({"event": "media", "streamSid": STREAM_SID, "media": {
            "track": "inbound", "chunk": str(self.chunk), "timestamp": str(self.chunk * 20),
            "payload": base64.b64encode(frame).decode()}})

    async def send_json(self, message: dict[str, Any]) -> None:
        self.sequence += 1
        await self.client.communicator.send_to(text_data=json.dumps({**message, "sequenceNumber": str(self.sequence)}))

    def busy(self) -> bool:
        session = self.server.sessions[-1] if self.server.sessions else None
        if session is None:
            return False
        return session.active is not None or bool(session._transcribing) or self._tool_running(session)

    def _tool_running(self, session: Any) -> bool:
        """The model's last response ended in tool calls and no response has followed yet: the
        platform is running them (its records, a handoff's session.update) and the agent will
        speak again. Counted for at most ``TOOL_WAIT_S`` after it is first seen, for a tool
        after which nothing more is said."""
        for event in reversed(session.server_events):
            if event["type"] == "response.created":
                break
            if event["type"] == "response.done":
                output = event.get("response", {}).get("output") or []
                if not any(item.get("type") == "function_call" for item in output):
                    break
                key = event.get("event_id") or id(event)
                now = asyncio.get_running_loop().time()
                first_seen = self._tool_waits.setdefault(key, now)
                return now - first_seen < self.TOOL_WAIT_S
        return False

    async def settle(self, quiet_s: float = 1.2, timeout: float = 60.0) -> None:
        """Receive until the socket has been quiet for ``quiet_s`` with no response or
        transcription running upstream."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            received = await self.client.pump(quiet_s)
            if self.client.close_code is not None:
                return
            if not received and not self.busy():
                return
        raise AssertionError("the call never went quiet")

    async def heard_everything(self) -> None:
        """Tell the consumer the caller heard all the audio sent so far (no barge-in)."""
        texts = self.client.texts()
        if self.twilio:
            marks = [f["mark"]["name"] for f in texts if f.get("event") == "mark"]
            for name in marks[self.acked:]:
                await self.send_json({"event": "mark", "streamSid": STREAM_SID, "mark": {"name": name}})
            self.acked = len(marks)
        else:
            for item_id in dict.fromkeys(f["item_id"] for f in texts if f.get("type") == "audio"):
                await self.client.communicator.send_json_to({"type": "playback", "item_id": item_id, "played_ms": 99999})

    def _turns_committed(self) -> int:
        session = self.server.sessions[-1] if self.server.sessions else None
        events = session.server_events if session is not None else []
        return sum(1 for e in events if e["type"] == "input_audio_buffer.committed")

    async def say(self, text: str, pace: float = 0.1) -> None:
        """Speak, wait until the server has committed the turn, then until the call is quiet."""
        await self.heard_everything()
        committed = self._turns_committed()
        for frame in frames(self.caller.utterance(text, self.fmt), self.fmt):
            await self._send(frame)
            await asyncio.sleep(pace * 0.02)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while self._turns_committed() <= committed:
            assert loop.time() < deadline, f"the server never ended the turn {text!r}"
            await self.client.pump(0.05)
        await self.settle()


STREAM_SID = "MZ" + "d" * 32


def call_story(call_id: int) -> dict[str, list[Any]]:
    """What a call recorded, without ids or times: transcript, tool calls, handoffs, escalations."""
    return {
        "transcript": list(TranscriptItem.objects.filter(call_id=call_id).order_by("created_at", "pk")
                           .values_list("role", "agent", "text")),
        "tools": [(t.name, t.agent, t.arguments, t.status) for t in
                  ToolInvocation.objects.filter(call_id=call_id).order_by("created_at", "pk")],
        "handoffs": list(HandoffEvent.objects.filter(call_id=call_id).order_by("created_at", "pk")
                         .values_list("from_agent", "to_agent", "depth")),
        "escalations": list(Escalation.objects.filter(call_id=call_id).order_by("created_at", "pk")
                            .values_list("source", "agent", "reason")),
        "call": list(Call.objects.filter(pk=call_id).values_list("status", "end_reason", "current_agent")),
    }


async def recorded(call_id: int) -> dict[str, list[Any]]:
    return await database_sync_to_async(call_story)(call_id)


def server_event_types(server: RealtimeServer) -> list[str]:
    """The server's event types in order, streamed deltas left out (how many there are depends on
    the length of the audio, e.g. a fresh return reference each call)."""
    return [e["type"] for e in server.sessions[-1].server_events if not e["type"].endswith(".delta")]
