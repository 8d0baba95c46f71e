"""Caller turns: latency from the end of speech, barge-in, idle timeouts.

When the server's VAD hears the caller stop, a turn starts its clock (backdated by the VAD's
silence): the first transcript, the first audio of the answer and the caller's own transcript
are measured against it. When the caller speaks over the agent, the agent's audio is cut at what
the caller heard and the transport is told to clear what it queued.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from realtime import events as ev

if TYPE_CHECKING:
    from .core import CallSession


@dataclass
class Turn:
    """Latency bookkeeping for the current caller turn."""

    number: int
    stopped_at: float
    silence_ms: float
    first_audio: bool = False
    first_transcript: bool = False

    def since_speech_end(self) -> float:
        """Milliseconds since the caller stopped speaking (speech_stopped backdated by the VAD's silence)."""
        return round((time.monotonic() - self.stopped_at) * 1000.0 + self.silence_ms, 3)


class TurnTracker:
    def __init__(self, session: CallSession) -> None:
        self.s = session
        self.turn: Turn | None = None
        self.idle_items: set[str] = set()
        self.idle_timeouts = 0

    def is_idle_silence(self, item_id: str, words: str) -> bool:
        """A transcript event of the idle timeout's committed silence (not a caller turn)."""
        return item_id in self.idle_items and not words.strip()

    async def _latency(self, kind: str) -> None:
        turn = self.turn
        if turn is not None:
            await self.s._emit(ev.Latency(kind=kind, ms=turn.since_speech_end(), turn=turn.number))

    async def caller_transcribed(self) -> None:
        await self._latency("user_transcript")

    async def first_audio(self) -> None:
        if self.turn is not None and not self.turn.first_audio:
            self.turn.first_audio = True
            await self._latency("voice_to_voice")

    async def first_transcript(self) -> None:
        if self.turn is not None and not self.turn.first_transcript:
            self.turn.first_transcript = True
            await self._latency("first_transcript")

    async def on_speech_started(self) -> None:
        s = self.s
        item_id = s.playback.current_item_id
        if item_id is None or s.sideband or s.human is not None:  # SIP: the provider's; people: no agent to cut
            return
        if not (s.playback.is_playing(item_id) or (s.responses.active and s.responses.had_audio)):
            return
        await self.cut_assistant_audio(item_id, reason="barge_in")
        if s.responses.active and not s.setup.turn_detection().get("interrupt_response", False):
            await s._send({"type": "response.cancel"})

    def on_speech_stopped(self) -> None:
        td = self.s.setup.turn_detection()
        silence = float(td.get("silence_duration_ms") or 0) if td.get("type", "server_vad") == "server_vad" else 0.0
        self.turn = Turn(number=self.s.context.user_turns + 1, stopped_at=time.monotonic(), silence_ms=silence)

    async def cut_assistant_audio(self, item_id: str, reason: str) -> None:
        """Truncate ``item_id`` at what the caller heard and tell the transport to clear."""
        s = self.s
        heard = s.playback.audio_end_ms(item_id)
        if s.playback.generated_ms(item_id) > 0 and item_id in s.context.server_items:
            await s._send({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": heard})
        await s._emit(ev.ClearPlayback(item_id=item_id, audio_end_ms=heard, reason=reason))
        item = s.context.items.get(item_id)
        if item is not None:
            item.interrupted = True
            item.heard_ms = heard
        s.playback.current_item_id = None

    async def on_idle_timeout(self, item_id: str, audio_start_ms: int, audio_end_ms: int) -> None:
        """The caller stayed silent: the server commits the silence as a user item (no transcript
        line for it unless words were heard) and answers it when create_response is on."""
        self.idle_timeouts += 1
        self.idle_items.add(item_id)
        await self.s._emit(ev.CallerIdle(ms=max(0, audio_end_ms - audio_start_ms), item_id=item_id,
                                         agent=self.s.current_agent))
