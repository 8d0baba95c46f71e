"""Fault injection for tests: per server (defaults for new sessions) and per session.

Query syntax on the WebSocket URL: ``?fault=drop_after:12,delay_ms:5,error_after:3`` (several
``fault`` params or comma-separated ``name:value`` pairs)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass
class Faults:
    drop_after_events: int | None = None
    """Abort the TCP connection (no close frame, the client sees 1006) after N server events."""
    delay_ms: float = 0.0
    """Sleep before every server event."""
    error_after_events: int | None = None
    """Send an injected ``error`` event (code ``error_code``) after N server events, once."""
    error_code: str = "server_error"
    drop_after_audio_deltas: int | None = None
    """Abort the connection after K ``response.output_audio.delta`` events (mid-response)."""
    close_after_events: int | None = None
    """Close cleanly with code 1011 after N server events."""

    def copy(self) -> Faults:
        return replace(self)


_ALIASES = {
    "drop_after": "drop_after_events",
    "delay": "delay_ms",
    "error_after": "error_after_events",
    "drop_after_audio": "drop_after_audio_deltas",
    "close_after": "close_after_events",
}


def parse_faults(values: list[str], base: Faults | None = None) -> Faults:
    """Parse query values like ``["drop_after:12,delay_ms:5"]`` on top of ``base``."""
    faults = base.copy() if base is not None else Faults()
    known = {f.name: f for f in fields(Faults)}
    for value in values:
        for pair in value.split(","):
            if not pair.strip():
                continue
            name, _, raw = pair.partition(":")
            name = _ALIASES.get(name.strip(), name.strip())
            if name not in known:
                raise ValueError(f"unknown fault {name!r}")
            if name == "error_code":
                setattr(faults, name, raw.strip())
            elif name == "delay_ms":
                setattr(faults, name, float(raw))
            else:
                setattr(faults, name, int(raw))
    return faults
