"""Server-side audio helpers on top of `realtime.audio` (the one implementation of the codecs).

Only what the protocol server adds: format names from session objects, byte/ms arithmetic in
whole milliseconds, float conversion for the energy VAD, and the deterministic tone "speech" the
scripted responder streams. G.711 and resampling live in `realtime.audio`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from realtime import audio as codecs
from realtime.audio import FORMATS, PCM, PCMA, PCMU

__all__ = [
    "FORMATS",
    "PCM",
    "PCMA",
    "PCMU",
    "bytes_per_ms",
    "decode",
    "duration_ms",
    "encode",
    "format_type",
    "rms",
    "sample_rate",
    "silence",
    "tone",
]


def format_type(fmt: dict[str, Any] | str | None) -> str:
    """The GA format name of a session format object, a name, or a beta name (default audio/pcm)."""
    try:
        return codecs.normalize_format(fmt)
    except ValueError:
        return PCM


def sample_rate(fmt: str) -> int:
    return codecs.sample_rate(fmt)


def bytes_per_ms(fmt: str) -> int:
    """PCM16 at 24 kHz is 48 bytes per ms; G.711 at 8 kHz is 8."""
    return codecs.bytes_per_second(fmt) // 1000


def duration_ms(nbytes: int, fmt: str) -> int:
    return nbytes // bytes_per_ms(fmt)


def decode(data: bytes, fmt: str) -> np.ndarray:
    """Bytes in ``fmt`` to float32 samples in [-1, 1] at the format's own rate."""
    if format_type(fmt) == PCM and len(data) % 2:
        data = data[:-1]  # a torn sample: the API would refuse it; the energy VAD just skips it
    pcm, _rate = codecs.decode_to_pcm16(data, fmt)
    return codecs.pcm16_to_float32(pcm)


def encode(samples: np.ndarray, fmt: str) -> bytes:
    """Float samples in [-1, 1] (at the format's own rate) to bytes in ``fmt``."""
    pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype(np.int16)
    return codecs.encode_pcm16(pcm, fmt)


def tone(ms: int, fmt: str, *, frequency: float = 220.0, amplitude: float = 0.1) -> bytes:
    """A sine tone of ``ms`` milliseconds in ``fmt`` (amplitude 0 gives digital silence)."""
    rate = sample_rate(fmt)
    n = rate * ms // 1000
    t = np.arange(n, dtype=np.float32) / rate
    return encode(amplitude * np.sin(2 * math.pi * frequency * t), fmt)


def silence(ms: int, fmt: str) -> bytes:
    return tone(ms, fmt, amplitude=0.0)


def rms(samples: np.ndarray) -> float:
    if samples.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.square(samples.astype(np.float64)))))
