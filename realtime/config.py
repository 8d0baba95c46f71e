"""Engine configuration: everything a call session needs that is not in the scenario spec.

Django builds one from settings (OPENAI_BASE_URL, OPENAI_API_KEY, REALTIME_DEFAULT_MODEL,
REALTIME_PRICES, the timeouts); tests build one pointing at the local protocol server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

AudioFormat = Literal["audio/pcm", "audio/pcmu", "audio/pcma"]

# The package marks gpt-realtime as deprecated (shutdown announced); default to a current one.
DEFAULT_REALTIME_MODEL = "gpt-realtime-1.5"
DEFAULT_SUPERVISOR_MODEL = "gpt-4.1"

Prices = dict[str, dict[str, float]]

DEFAULT_PRICES: Prices = {
    "gpt-realtime": {
        "audio_in": 32.0, "audio_in_cached": 0.40, "audio_out": 64.0,
        "text_in": 4.0, "text_in_cached": 0.40, "text_out": 16.0,
    },
    "gpt-realtime-mini": {
        "audio_in": 10.0, "audio_in_cached": 0.30, "audio_out": 20.0,
        "text_in": 0.60, "text_in_cached": 0.06, "text_out": 2.40,
    },
}


@dataclass(frozen=True)
class EngineConfig:
    """Connection, timeouts and policies of a call session.

    ``model``: overrides the agents' model (one Realtime model per connection: the root agent's
    model, else this, else DEFAULT_REALTIME_MODEL). ``audio_format``: the transport's format,
    overriding the compiled session's input and output formats. ``sideband_call_id``: join a call
    the provider already carries (OpenAI SIP) by its id instead of opening a session for a model:
    the caller's audio flows between the phone network and the provider, so the engine sends no
    audio, leaves the audio formats to the provider and does not recreate the session on a timer.
    """

    base_url: str
    api_key: str
    model: str | None = None
    supervisor_model: str | None = None
    audio_format: AudioFormat = "audio/pcm"
    tool_timeout_s: float = 10.0
    approval_timeout_s: float = 60.0
    supervisor_timeout_s: float = 8.0
    supervisor_max_tool_rounds: int = 5
    supervisor_holding_line: str = (
        "Thanks for your patience — I'm still checking that for you. Give me one moment."
    )
    webhook_max_response_bytes: int = 64 * 1024
    prices: Prices = field(default_factory=lambda: dict(DEFAULT_PRICES))
    required_tool_turns_limit: int = 3
    # Session recreation: recreate this many seconds before spec.limits.max_session_seconds.
    recreate_margin_s: float = 60.0
    retry_budget: int = 4
    retry_backoff_s: float = 0.5
    retry_backoff_max_s: float = 8.0
    connect_timeout_s: float = 10.0
    # Extra query parameters on the Realtime WebSocket URL (e.g. the local server's faults).
    connect_query: dict[str, str] = field(default_factory=dict)
    # Caller audio kept while a session is recreated (bytes); older audio is dropped past this.
    max_buffered_audio_bytes: int = 24000 * 2 * 30
    # Rolling context: recent user turns kept verbatim when older items are summarised.
    keep_recent_turns: int = 2
    # Recreation restores at most this many recent transcript items verbatim.
    restore_recent_items: int = 12
    # Output guardrails: check the streaming transcript every this many characters.
    guardrail_check_chars: int = 100
    guardrail_correction: str = (
        "Your previous answer was withdrawn by a policy check and the caller did not hear the "
        "rest of it. Briefly apologise and continue helping without repeating it."
    )
    emit_protocol_events: bool = True
    # Include input_audio_buffer.append / output audio deltas in the protocol event copies.
    protocol_audio_events: bool = True
    greet_on_start: bool = True
    # Where a scenario with failover_provider "offline" goes when base_url cannot be reached
    # (the local offline engine); None: no failover.
    failover_base_url: str | None = None
    failover_api_key: str = "offline"
    # The primary endpoint is the local offline engine (no OpenAI key): its usage is priced at 0.
    local: bool = False
    # Moderation of every answer for all scenarios (a scenario can also turn it on: its guardrails'
    # ``moderation``); each checked chunk is one request to POST {base_url}/moderations.
    moderation: bool = False
    moderation_model: str = "omni-moderation-latest"
    sideband_call_id: str | None = None


__all__ = ["DEFAULT_PRICES", "DEFAULT_REALTIME_MODEL", "AudioFormat", "EngineConfig", "Prices"]
