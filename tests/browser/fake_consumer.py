"""A stand-in for the browser call consumer that speaks the wire protocol, for the page-only test.

It checks the page's real signed token (calls.tokens), then plays a fixed script and writes what
the page sent, one JSON object a line, to the file named by BROWSER_TEST_LOG:
  - on connect: {"type": "call"}, an agent.changed event and a protocol event;
  - once 0.4 s of caller audio has arrived: a user transcript, then assistant item "item_short"
    (1.2 s of tone, played to the end), then "item_long" (5 s of tone), which it interrupts with
    {"type": "clear"} once the page reports 500 ms of it played — the barge-in path;
  - a typed text is answered with a transcript; a hangup with {"type": "ended"}.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any
from urllib.parse import parse_qs

import numpy as np
from channels.generic.websocket import AsyncWebsocketConsumer

from calls.tokens import TokenError, read_browser_token
from realtime.audio import ulaw_decode, ulaw_encode

RATES = {"pcm16": 24000, "pcmu": 8000}
SHORT_MS = 1200
LONG_MS = 5000
CLEAR_AFTER_MS = 500


def tone(codec: str, ms: int, freq: float = 330.0) -> bytes:
    rate = RATES[codec]
    n = rate * ms // 1000
    t = np.arange(n) / rate
    pcm = (0.3 * 32767 * np.sin(2 * math.pi * freq * t)).astype("<i2")
    return ulaw_encode(pcm) if codec == "pcmu" else pcm.tobytes()


def decode(codec: str, data: bytes) -> np.ndarray:
    if codec == "pcmu":
        return ulaw_decode(data).astype(np.float64)
    return np.frombuffer(data, dtype="<i2").astype(np.float64)


class FakeBrowserCallConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        query = parse_qs(self.scope.get("query_string", b"").decode())
        try:
            grant = read_browser_token((query.get("token") or [""])[0])
        except TokenError as error:
            self.record({"kind": "refused", "reason": str(error)})
            await self.close(code=4403)
            return
        self.codec = grant.codec
        self.caller_bytes = 0
        self.caller_energy = 0.0
        self.caller_samples = 0
        self.spoke = False
        self.cleared = False
        self.seq = 0
        await self.accept()
        self.record({"kind": "connect", "codec": grant.codec, "scenario": grant.scenario})
        await self.send(text_data=json.dumps({"type": "call", "call_id": 7, "scenario": grant.scenario, "agent": "greeter"}))
        await self.event({"type": "agent.changed", "agent": "greeter", "previous": None})
        await self.event({"type": "protocol", "direction": "client", "payload": {"type": "session.update", "session": {"type": "realtime"}}})

    def record(self, entry: dict[str, Any]) -> None:
        entry["t"] = time.time()
        with open(os.environ["BROWSER_TEST_LOG"], "a", encoding="utf-8") as log:
            log.write(json.dumps(entry) + "\n")

    async def event(self, event: dict[str, Any]) -> None:
        self.seq += 1
        await self.send(text_data=json.dumps({"type": "event", "seq": self.seq, "event": event}))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if bytes_data is not None:
            samples = decode(self.codec, bytes_data)
            self.caller_bytes += len(bytes_data)
            self.caller_samples += len(samples)
            self.caller_energy += float(np.sum(samples * samples))
            rms = math.sqrt(self.caller_energy / max(1, self.caller_samples))
            self.record({"kind": "audio", "bytes": len(bytes_data), "total": self.caller_bytes, "rms": rms})
            if not self.spoke and self.caller_samples >= RATES[self.codec] * 0.4:
                self.spoke = True
                await self.speak()
            return
        message = json.loads(text_data or "{}")
        self.record({"kind": "text", "message": message})
        kind = message.get("type")
        if kind == "playback" and message.get("item_id") == "item_long" and not self.cleared:
            if message.get("played_ms", 0) >= CLEAR_AFTER_MS:
                self.cleared = True
                await self.send(text_data=json.dumps({"type": "clear"}))
                self.record({"kind": "sent_clear"})
        elif kind == "text":
            await self.event({"type": "transcript.done", "role": "assistant", "item_id": "item_reply", "agent": "greeter", "text": f"You typed: {message.get('text')}"})
        elif kind == "hangup":
            await self.send(text_data=json.dumps({"type": "ended", "reason": "hangup"}))
            await self.close()

    async def speak(self) -> None:
        await self.event({"type": "transcript.done", "role": "user", "item_id": "item_user", "agent": "greeter", "text": "Hello there"})
        await self.event({"type": "tool.started", "name": "lookup_order", "call_id": "c1", "arguments": {"order": "A1"}, "agent": "greeter"})
        await self.event({"type": "tool.finished", "name": "lookup_order", "call_id": "c1", "arguments": {"order": "A1"}, "agent": "greeter", "result": {"status": "shipped"}, "error": None, "duration_ms": 12.0})
        await self.event({"type": "handoff", "from_agent": "greeter", "to_agent": "orders", "reason": "order question", "context": "", "depth": 1, "duration_ms": 3.0})
        for item_id, ms in (("item_short", SHORT_MS), ("item_long", LONG_MS)):
            await self.event({"type": "transcript.delta", "role": "assistant", "item_id": item_id, "agent": "orders", "text": f"Audio {item_id}"})
            await self.send(text_data=json.dumps({"type": "audio", "item_id": item_id}))
            audio = tone(self.codec, ms)
            chunk = len(audio) // (ms // 100)  # 100 ms chunks, sent faster than real time
            for start in range(0, len(audio), chunk):
                await self.send(bytes_data=audio[start:start + chunk])
            self.record({"kind": "sent_audio", "item_id": item_id, "bytes": len(audio)})
