"""Voice activity detection behind a small Protocol, so the offline engine can swap in Silero.

The default `EnergyVAD` is deliberately simple: 10 ms frames, speech when the frame's RMS reaches
``threshold * full_scale_rms`` (so the API's default threshold 0.5 means an RMS of 0.05 with the
default ``full_scale_rms`` of 0.1). It honours prefix_padding_ms and silence_duration_ms."""

from __future__ import annotations

from typing import Literal, NamedTuple, Protocol

import numpy as np

from realtime import audio
from realtime.vad import VadConfig


class VadEvent(NamedTuple):
    kind: Literal["start", "stop", "pause", "resume"]
    ms: int
    """start: audio_start_ms (prefix padding applied); stop: audio_end_ms (end of the last speech).
    "pause" (speech has been quiet a while, a stop may follow: the session may start transcribing
    the audio up to ``ms`` early) and "resume" (the pause ended without a stop) are optional hints;
    the energy VAD never sends them. They are not protocol events."""


class VoiceActivityDetector(Protocol):
    def feed(self, samples: np.ndarray, rate: int, start_ms: int, config: VadConfig) -> list[VadEvent]:
        """Process float samples that begin at ``start_ms`` on the session's audio clock."""
        ...

    def reset(self) -> None:
        """Forget any speech in progress (input_audio_buffer.clear, turn detection changed)."""
        ...


class AsyncVoiceActivityDetector(VoiceActivityDetector, Protocol):
    """A detector that does its work off the event loop (the session prefers ``feed_async``)."""

    async def feed_async(self, data: bytes, fmt: str, start_ms: int, config: VadConfig) -> list[VadEvent]:
        """Process ``data`` (bytes in ``fmt``) that begins at ``start_ms`` on the session's clock."""
        ...


class EnergyVAD:
    """RMS-against-threshold detector on 10 ms frames."""

    frame_ms = 10

    def __init__(self, full_scale_rms: float = 0.1) -> None:
        self.full_scale_rms = full_scale_rms
        self._pending = np.zeros(0, dtype=np.float32)
        self._pending_start_ms = 0
        self.in_speech = False
        self._last_voiced_end_ms = 0

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)
        self.in_speech = False

    def feed(self, samples: np.ndarray, rate: int, start_ms: int, config: VadConfig) -> list[VadEvent]:
        if self._pending.size == 0:
            self._pending_start_ms = start_ms
        self._pending = np.concatenate([self._pending, samples.astype(np.float32)])
        frame = rate * self.frame_ms // 1000
        events: list[VadEvent] = []
        level = config.threshold * self.full_scale_rms
        offset = 0
        while self._pending.size - offset >= frame:
            chunk = self._pending[offset : offset + frame]
            frame_start = self._pending_start_ms + (offset * 1000) // rate
            frame_end = frame_start + self.frame_ms
            voiced = audio.rms(chunk) >= level
            if voiced:
                if not self.in_speech:
                    self.in_speech = True
                    events.append(VadEvent("start", max(0, frame_start - config.prefix_padding_ms)))
                self._last_voiced_end_ms = frame_end
            elif self.in_speech and frame_end - self._last_voiced_end_ms >= config.silence_duration_ms:
                self.in_speech = False
                events.append(VadEvent("stop", self._last_voiced_end_ms))
            offset += frame
        self._pending = self._pending[offset:]
        self._pending_start_ms += (offset * 1000) // rate
        return events
