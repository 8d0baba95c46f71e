"""The events a call session emits: typed, JSON-safe, one dataclass per kind.

Every event has a ``type`` (a stable string the event log and the dashboard key on), the wall-clock
time it happened (``at``, Unix seconds) and ``to_dict()`` returning JSON-safe data. ``AudioOut``
carries raw audio bytes for the transport; its ``to_dict()`` gives them base64-encoded.
``ProtocolEvent`` is the raw Realtime protocol event in either direction, with audio payloads
elided (see ``elide_audio``) so the event log stays small and never holds a caller's voice.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal

Role = Literal["user", "assistant", "human"]
"""``human``: a person (supervisor or human agent) who took the call over from the agent."""
Direction = Literal["client", "server"]

# Keys that hold base64 audio in Realtime protocol events, by event type.
_AUDIO_KEYS: dict[str, str] = {
    "input_audio_buffer.append": "audio",
    "response.output_audio.delta": "delta",
    "session.input_audio_buffer.append": "audio",
    "session.output_audio.delta": "delta",
}
ELIDED_PREFIX_CHARS = 16


def _elided(value: str) -> str:
    return f"{value[:ELIDED_PREFIX_CHARS]}…<{len(value)} base64 chars elided>"


def elide_audio(payload: dict[str, Any]) -> dict[str, Any]:
    """A shallow copy of a protocol event with its audio payload shortened.

    Audio sits in ``audio``/``delta`` of the audio events and in ``audio`` content parts of
    conversation items (``conversation.item.*``, ``response.output_item.*``).
    """
    event_type = payload.get("type", "")
    key = _AUDIO_KEYS.get(event_type)
    if key is not None and isinstance(payload.get(key), str):
        return {**payload, key: _elided(payload[key])}
    item = payload.get("item")
    if isinstance(item, dict) and isinstance(item.get("content"), list):
        content = [
            {**part, "audio": _elided(part["audio"])}
            if isinstance(part, dict) and isinstance(part.get("audio"), str) and part["audio"]
            else part
            for part in item["content"]
        ]
        return {**payload, "item": {**item, "content": content}}
    return payload


def _json_safe(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


@dataclass
class EngineEvent:
    """Base of every emitted event."""

    type: ClassVar[str] = "event"
    at: float = field(default_factory=time.time, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type}
        for f in fields(self):
            data[f.name] = _json_safe(getattr(self, f.name))
        return data


@dataclass
class TranscriptDelta(EngineEvent):
    type: ClassVar[str] = "transcript.delta"
    role: Role
    item_id: str
    text: str
    agent: str


@dataclass
class TranscriptDone(EngineEvent):
    type: ClassVar[str] = "transcript.done"
    role: Role
    item_id: str
    text: str
    agent: str
    interrupted: bool = False


@dataclass
class AudioOut(EngineEvent):
    """Assistant audio for the transport, in the call's audio format."""

    type: ClassVar[str] = "audio.out"
    item_id: str
    audio: bytes
    agent: str = ""
    audio_base64: str = ""
    """The same audio as the server sent it (base64), for transports that send it on as is."""


@dataclass
class ClearPlayback(EngineEvent):
    """The transport must drop any assistant audio it still has queued (barge-in, guardrail)."""

    type: ClassVar[str] = "playback.clear"
    item_id: str
    audio_end_ms: int
    reason: str = "barge_in"


@dataclass
class AgentChanged(EngineEvent):
    type: ClassVar[str] = "agent.changed"
    agent: str
    previous: str | None = None


@dataclass
class ToolStarted(EngineEvent):
    type: ClassVar[str] = "tool.started"
    name: str
    call_id: str
    arguments: dict[str, Any] | str
    agent: str
    source: Literal["realtime", "supervisor"] = "realtime"


@dataclass
class ToolFinished(EngineEvent):
    type: ClassVar[str] = "tool.finished"
    name: str
    call_id: str
    arguments: dict[str, Any] | str
    agent: str
    result: Any = None
    error: str | None = None
    duration_ms: float = 0.0
    approved_by: str | None = None
    source: Literal["realtime", "supervisor"] = "realtime"
    status: Literal["succeeded", "failed", "denied", "timed_out"] = "succeeded"
    """How the call ended (realtime.tools.ToolOutcome.status): never read from the error's words."""


@dataclass
class ApprovalRequested(EngineEvent):
    type: ClassVar[str] = "approval.requested"
    name: str
    call_id: str
    arguments: dict[str, Any]
    agent: str
    timeout_s: float


@dataclass
class Handoff(EngineEvent):
    """``context`` is the conversation summary passed along; ``fields`` the edge contract's named
    fields (e.g. a verified phone number), so the audit shows everything that travelled."""

    type: ClassVar[str] = "handoff"
    from_agent: str
    to_agent: str
    reason: str
    context: str
    depth: int
    duration_ms: float
    requested_agent: str = ""
    fallback: bool = False
    voice_kept: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class HandoffApplied(EngineEvent):
    """The server answered a handoff's ``session.update``: ``applied`` (session.updated, ``ms`` after
    it was sent: from then the new agent's instructions and tools are in force) or refused with
    ``error`` (the call carries on; the audit shows the handoff did not take effect upstream)."""

    type: ClassVar[str] = "handoff.applied"
    to_agent: str
    depth: int
    ms: float
    applied: bool = True
    error: str = ""


@dataclass
class GuardrailTripped(EngineEvent):
    type: ClassVar[str] = "guardrail.tripped"
    category: str
    text: str
    item_id: str
    agent: str
    matched: str = ""
    classifier: str = ""


@dataclass
class Escalation(EngineEvent):
    type: ClassVar[str] = "escalation"
    reason: str
    source: str
    agent: str = ""


@dataclass
class Usage(EngineEvent):
    """One ``response.done``'s tokens and cost, with the call's running totals."""

    type: ClassVar[str] = "usage"
    response_id: str
    agent: str
    model: str
    tokens: dict[str, int]
    cost_usd: float
    totals: dict[str, int]
    total_cost_usd: float
    cost_per_minute_usd: float
    per_agent_cost_usd: dict[str, float] = field(default_factory=dict)
    local: bool = False
    """Answered by the local offline engine: priced at 0 ("local" wherever costs are shown)."""


@dataclass
class Latency(EngineEvent):
    """A timing: ``kind`` is voice_to_voice, first_transcript, user_transcript, tool or supervisor."""

    type: ClassVar[str] = "latency"
    kind: str
    ms: float
    turn: int
    detail: str = ""


@dataclass
class Error(EngineEvent):
    type: ClassVar[str] = "error"
    code: str
    message: str
    source: str = "server"
    fatal: bool = False


@dataclass
class SessionRecreated(EngineEvent):
    type: ClassVar[str] = "session.recreated"
    gap_ms: float
    reason: str
    attempts: int
    buffered_audio_bytes: int = 0
    restored_items: int = 0
    carried_audio_bytes: int = 0
    """Of the buffered audio, the caller's uncommitted words the old session held (carried over)."""


@dataclass
class ProviderFailover(EngineEvent):
    """The upstream could not be reached; the call goes on with the scenario's failover provider."""

    type: ClassVar[str] = "provider.failover"
    provider: str
    reason: str


@dataclass
class CallEnded(EngineEvent):
    type: ClassVar[str] = "call.ended"
    reason: str


@dataclass
class ProtocolEvent(EngineEvent):
    """A raw Realtime protocol event (audio elided), for the event log."""

    type: ClassVar[str] = "protocol"
    direction: Direction
    payload: dict[str, Any]


@dataclass
class DTMF(EngineEvent):
    type: ClassVar[str] = "dtmf"
    digit: str


@dataclass
class CallerIdle(EngineEvent):
    """The caller said nothing for ``ms`` after the agent finished speaking (server_vad
    ``idle_timeout_ms``): the Realtime server committed the silence as ``item_id`` and, with
    ``create_response``, the agent prompts the caller to continue."""

    type: ClassVar[str] = "caller.idle"
    ms: int
    item_id: str
    agent: str = ""


@dataclass
class ToolChoiceRelaxed(EngineEvent):
    """The tool_choice "required" loop guard let one turn run with ``auto``."""

    type: ClassVar[str] = "tool_choice.relaxed"
    agent: str
    forced_turns: int


@dataclass
class ContextSummarized(EngineEvent):
    """Older conversation items were replaced by one summary item on the Realtime session."""

    type: ClassVar[str] = "context.summarized"
    summary: str
    removed_items: int
    turn: int


__all__ = [
    "DTMF",
    "AgentChanged",
    "ApprovalRequested",
    "AudioOut",
    "CallEnded",
    "CallerIdle",
    "ClearPlayback",
    "ContextSummarized",
    "EngineEvent",
    "Error",
    "Escalation",
    "GuardrailTripped",
    "Handoff",
    "HandoffApplied",
    "Latency",
    "ProtocolEvent",
    "ProviderFailover",
    "SessionRecreated",
    "ToolChoiceRelaxed",
    "ToolFinished",
    "ToolStarted",
    "TranscriptDelta",
    "TranscriptDone",
    "Usage",
    "elide_audio",
]


@dataclass
class HumanJoined(EngineEvent):
    """A person took the call over (realtime.takeover): the agent is silent until they hand back."""

    type: ClassVar[str] = "human.joined"
    by: str
    agent: str


@dataclass
class HumanLeft(EngineEvent):
    """The person handed the call back; ``turns``: the lines they spoke, now in the agent's context."""

    type: ClassVar[str] = "human.left"
    by: str
    agent: str
    turns: int
    reason: str = ""
