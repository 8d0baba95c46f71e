"""A Realtime session beside a call for one direction of a person's audio (Django-free).

Two uses: transcribing the voice of a person who took the call over (no responses: turn detection
with ``create_response`` off, input transcription on), and translating one direction of a call
between a caller and a person (realtime.translation: responses on, translation-only instructions).

Sending never waits on a slow upstream: audio goes to a bounded queue (the oldest frame falls out
when it is full) that one sender task drains. A lost connection is reported, not retried: the
call goes on without the side session.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from realtime.connection import ConnectionLost, RealtimeConnection

log = logging.getLogger(__name__)

TextCallback = Callable[[str], Awaitable[None]]
AudioCallback = Callable[[bytes], Awaitable[None]]

#: Frames waiting to go upstream at most (about 4 s of 20 ms frames).
MAX_QUEUED_FRAMES = 200


class SideSession:
    def __init__(self, client: Any, model: str, session: dict[str, Any], *,
                 on_input_transcript: TextCallback | None = None, on_audio: AudioCallback | None = None,
                 on_output_transcript: TextCallback | None = None, on_error: TextCallback | None = None,
                 connect_timeout_s: float = 10.0, query: dict[str, str] | None = None) -> None:
        self.client, self.model = client, model
        self.session = session
        self.on_input_transcript = on_input_transcript
        self.on_audio = on_audio
        self.on_output_transcript = on_output_transcript
        self.on_error = on_error
        self.connect_timeout_s = connect_timeout_s
        self.query = query
        self.conn: RealtimeConnection | None = None
        self.frames: deque[bytes] = deque(maxlen=MAX_QUEUED_FRAMES)
        self.dropped = 0
        self.errors: list[str] = []
        self.configured = asyncio.Event()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.closed = False

    async def open(self) -> None:
        """Connect (through ``client``, the event loop's shared AsyncOpenAI client, which no call
        closes) and configure; raises when the endpoint cannot be reached."""
        conn = RealtimeConnection(str(self.client.base_url), self.client.api_key, self.model,
                                  connect_timeout_s=self.connect_timeout_s, query=self.query, client=self.client)
        await conn.open()
        self.conn = conn
        await conn.send({"type": "session.update", "session": self.session})
        self._tasks = [asyncio.ensure_future(self._read(conn)), asyncio.ensure_future(self._send_loop(conn))]

    def send_audio(self, frame: bytes) -> None:
        """Queue a frame (the session's input format); never waits."""
        if self.closed or not frame:
            return
        if len(self.frames) == self.frames.maxlen:
            self.dropped += 1
        self.frames.append(frame)
        self._wake.set()

    async def send_event(self, event: dict[str, Any]) -> None:
        if self.conn is not None and not self.closed:
            with contextlib.suppress(ConnectionLost):
                await self.conn.send(event)

    async def _send_loop(self, conn: RealtimeConnection) -> None:
        while not self.closed:
            await self._wake.wait()
            self._wake.clear()
            while self.frames:
                frame = self.frames.popleft()
                try:
                    await conn.send_json('{"type":"input_audio_buffer.append","audio":"'
                                         + base64.b64encode(frame).decode("ascii") + '"}')
                except ConnectionLost:
                    return

    async def _read(self, conn: RealtimeConnection) -> None:
        try:
            while True:
                event = await conn.recv()
                await self._handle(event.type, event.payload)
        except ConnectionLost as lost:
            if not self.closed:
                await self._report(f"the side session closed ({lost})")
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.exception("side session: reading failed")
            await self._report(f"{type(error).__name__}: {error}")

    async def _handle(self, kind: str, p: dict[str, Any]) -> None:
        if kind == "session.updated":
            self.configured.set()
        elif kind == "conversation.item.input_audio_transcription.completed":
            text = str(p.get("transcript") or "").strip()
            if text and self.on_input_transcript is not None:
                await self.on_input_transcript(text)
        elif kind == "response.output_audio.delta":
            if self.on_audio is not None and p.get("delta"):
                await self.on_audio(base64.b64decode(p["delta"]))
        elif kind == "response.output_audio_transcript.done":
            text = str(p.get("transcript") or "").strip()
            if text and self.on_output_transcript is not None:
                await self.on_output_transcript(text)
        elif kind == "error":
            error = p.get("error") or {}
            await self._report(f"{error.get('code') or error.get('type')}: {error.get('message', '')}"[:300])

    async def _report(self, message: str) -> None:
        self.errors.append(message)
        log.warning("side session: %s", message)
        if self.on_error is not None:
            await self.on_error(message)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        if self.conn is not None:
            await self.conn.close()


def transcription_session(audio_format: dict[str, Any], *, language: str = "", model: str = "") -> dict[str, Any]:
    """A session that only transcribes its input: server VAD commits turns, no response is made."""
    transcription: dict[str, Any] = {"model": model or "gpt-4o-mini-transcribe"}
    if language:
        transcription["language"] = language
    return {
        "type": "realtime",
        "output_modalities": ["text"],
        "instructions": "Do not answer. This session only transcribes what it hears.",
        "audio": {"input": {
            "format": audio_format,
            "transcription": transcription,
            "turn_detection": {"type": "server_vad", "create_response": False, "interrupt_response": False,
                               "silence_duration_ms": 500},
        }},
    }
