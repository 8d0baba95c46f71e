"""Turn-detection settings, one class for every voice activity detector (Django-free).

`VadConfig` is what the protocol server's detectors (`realtime.server.vad.EnergyVAD`, the
offline Silero adapter) and the offline engine's Silero detector (`realtime.offline.vad`) are
configured with; `from_turn_detection` reads a GA session ``audio.input.turn_detection`` object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EAGERNESS_SILENCE_MS = {"high": 300, "medium": 650, "auto": 650, "low": 1200}
"""semantic_vad eagerness -> silence before the turn ends: "high" answers quickly, "low" lets the
caller pause mid-thought (the real API waits up to several seconds with "low")."""


@dataclass(frozen=True)
class VadConfig:
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    min_speech_ms: int = 64
    """A start is confirmed only after this much speech (ignores clicks); reported at the onset."""
    create_response: bool = True
    interrupt_response: bool = True
    type: str = "server_vad"
    eagerness: str | None = None

    @classmethod
    def from_turn_detection(cls, td: dict[str, Any] | None) -> VadConfig | None:
        """Build from a GA session ``audio.input.turn_detection`` object (None: VAD is off)."""
        if td is None:
            return None
        kind = td.get("type", "server_vad")
        create = bool(td.get("create_response", True))
        interrupt = bool(td.get("interrupt_response", True))
        if kind == "semantic_vad":
            eagerness = str(td.get("eagerness") or "auto")
            if eagerness not in EAGERNESS_SILENCE_MS:
                raise ValueError(f"unknown semantic_vad eagerness {eagerness!r}")
            return cls(
                silence_duration_ms=EAGERNESS_SILENCE_MS[eagerness],
                type="semantic_vad",
                eagerness=eagerness,
                create_response=create,
                interrupt_response=interrupt,
            )
        if kind != "server_vad":
            raise ValueError(f"unknown turn_detection type {kind!r}")
        threshold = td.get("threshold")
        prefix = td.get("prefix_padding_ms")
        silence = td.get("silence_duration_ms")
        return cls(
            threshold=0.5 if threshold is None else float(threshold),
            prefix_padding_ms=300 if prefix is None else int(prefix),
            silence_duration_ms=500 if silence is None else int(silence),
            create_response=create,
            interrupt_response=interrupt,
        )
