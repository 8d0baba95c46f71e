"""Caller speech for the offline engine tests: piper audio in any Realtime format, fed in frames."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import numpy as np

from realtime import audio
from realtime.server.offline import OfflineEngine


class Caller:
    """Synthesised utterances (cached), with leading and trailing silence, in a wire format."""

    def __init__(self, engine: OfflineEngine) -> None:
        self.engine = engine
        self._cache: dict[str, np.ndarray] = {}

    def pcm(self, text: str) -> np.ndarray:
        if text not in self._cache:
            # a quieter caller than the assistant's normalised voice
            self._cache[text] = (self.engine.synthesizer.synthesize_all(text) * 0.6).astype(np.int16)
        return self._cache[text]

    def utterance(self, text: str, fmt: str, *, lead_ms: int = 300, tail_ms: int = 1000) -> bytes:
        silence_24k = lambda ms: np.zeros(24 * ms, dtype=np.int16)  # noqa: E731
        pcm = np.concatenate([silence_24k(lead_ms), self.pcm(text), silence_24k(tail_ms)])
        return audio.encode_from_pcm16_24k(pcm, fmt)


def frames(data: bytes, fmt: str, ms: int = 20) -> list[bytes]:
    size = audio.ms_to_bytes(ms, fmt)
    return [data[i : i + size] for i in range(0, len(data), size)]


async def feed(send: Callable[[bytes], Awaitable[None]], data: bytes, fmt: str, *, ms: int = 20, pace: float = 0.0) -> None:
    """Send ``data`` in ``ms`` frames; ``pace`` 1.0 is real time, 0 as fast as the peer takes it."""
    for frame in frames(data, fmt, ms):
        await send(frame)
        await asyncio.sleep(pace * ms / 1000)
