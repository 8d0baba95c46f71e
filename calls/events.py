"""Schema of the events that `calls.actions` publishes to a call's channel group.

Every published message is an envelope

    {"type": "call.event", "call_id": 12, "seq": 7, "event": {"type": "handoff", "at": "<iso time>", ...}}

where `seq` increases by one per event of the call (stored in Call.last_seq), so a dashboard that
reconnects can tell what it missed. Each event type is a pydantic model (EVENT_MODELS: exact types,
every field required, no other field); `check_event` refuses anything else at publish time.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError

#: The channel-layer message type of a published event (consumer method `call_event`).
CALL_EVENT = "call.event"

#: The dashboard-wide group: every change of a call's row (started, answered, agent, cost, latency,
#: idle prompts, ended) as {"type": DASHBOARD_CALL, "call_id", "seq", "change": <event type>, "call": <row>}.
DASHBOARD_GROUP = "dashboard"
DASHBOARD_CALL = "dashboard.call"
#: The event types that change what the live-calls list shows (tool: approvals waiting; caller.idle: the
#: call's idle count).
DASHBOARD_CHANGES = frozenset({"call_started", "call_answered", "handoff", "tool", "usage", "latency", "caller.idle",
                               "call_ended"})

#: A supervisor's instruction to a live call's consumer (approve, deny, whisper, say, hangup).
CALL_SUPERVISOR = "call.supervisor"
#: Ask a live call to recreate its Realtime session now (an operations control; the engine itself
#: recreates before the session's maximum length and after a drop).
RECREATE_MESSAGE = "call.recreate"


class Event(BaseModel):
    """A published event: every field required and of its exact type, nothing else allowed."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    at: str


class CallStarted(Event):
    type: Literal["call_started"]
    channel: str
    scenario: str
    agent: str
    spec_hash: str
    caller_id: str


class CallAnswered(Event):
    type: Literal["call_answered"]
    channel: str


class SessionChanged(Event):
    type: Literal["session"]
    index: int
    state: str
    model: str
    agent: str
    end_reason: str
    gap_ms: int | None


class Transcript(Event):
    type: Literal["transcript"]
    item_id: str
    role: str
    text: str
    agent: str
    truncated: bool


class Handoff(Event):
    type: Literal["handoff"]
    from_agent: str
    to_agent: str
    reason: str
    context: dict[str, Any]
    depth: int
    duration_ms: int | None
    voice_kept: bool
    fallback: bool


class HandoffApplied(Event):
    """The server answered the handoff's session.update after `applied_ms` (or refused it: `error`)."""

    type: Literal["handoff_applied"]
    to_agent: str
    depth: int
    applied: bool
    applied_ms: int
    error: str


class Tool(Event):
    type: Literal["tool"]
    tool_call_id: str
    name: str
    agent: str
    status: str
    arguments: JsonValue
    result: JsonValue
    error: str
    duration_ms: int | None
    approved_by: str


class Guardrail(Event):
    type: Literal["guardrail"]
    category: str
    text: str
    action: str
    agent: str


class Escalation(Event):
    type: Literal["escalation"]
    escalation_id: int
    reason: str
    source: str
    agent: str
    webhook_status: str


class EscalationStatus(Event):
    """A webhook attempt of an escalation: claimed (posting), posted, retrying or failed for good."""

    type: Literal["escalation_status"]
    escalation_id: int
    webhook_status: str
    webhook_response_code: int | None
    attempts: int


class Usage(Event):
    """`call_local`: part of the call was answered by the local offline engine (priced at 0)."""

    type: Literal["usage"]
    agent: str
    usage: dict[str, Any]
    cost: str
    call_cost: str
    call_local: bool


class Latency(Event):
    type: Literal["latency"]
    voice_to_voice_ms: int
    p50_ms: int
    p95_ms: int


class CallerIdle(Event):
    """The caller said nothing for `ms` (server_vad idle_timeout_ms); `idle_prompts`: the call's count so far."""

    type: Literal["caller.idle"]
    ms: int
    agent: str
    item_id: str
    idle_prompts: int


class SummaryMade(Event):
    type: Literal["summary"]
    kind: str
    text: str
    disposition: str


class CallEnded(Event):
    type: Literal["call_ended"]
    reason: str
    cost: str
    duration_ms: int


class SupervisorActed(Event):
    type: Literal["supervisor"]
    action: str
    by: str
    text: str
    tool_call_id: str


class QueueChanged(Event):
    """The call's place in the queue of human agents: waiting, accepted (by), timed_out, abandoned."""

    type: Literal["queue"]
    entry_id: int
    status: str
    reason: str
    by: str
    wait_ms: int
    fallback: str


class VoicemailRecorded(Event):
    type: Literal["voicemail"]
    voicemail_id: int
    duration_ms: int


#: Every published event type and its model.
EVENT_MODELS: dict[str, type[Event]] = {
    model.model_fields["type"].annotation.__args__[0]: model  # type: ignore[union-attr]
    for model in (CallStarted, CallAnswered, SessionChanged, Transcript, Handoff, HandoffApplied, Tool, Guardrail,
                  Escalation, EscalationStatus, Usage, Latency, CallerIdle, SummaryMade, CallEnded, SupervisorActed,
                  QueueChanged, VoicemailRecorded)
}


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    type: Literal["call.event"]
    call_id: int
    seq: int
    event: dict[str, Any]


class EventSchemaError(ValueError):
    pass


def _explain(what: str, error: ValidationError) -> EventSchemaError:
    """The first problem in words: missing X, unexpected X, X is a bool, X has type T."""
    problem = error.errors()[0]
    field = ".".join(str(part) for part in problem["loc"])
    kind = problem["type"]
    if kind == "missing":
        return EventSchemaError(f"{what}: missing {field}")
    if kind == "extra_forbidden":
        return EventSchemaError(f"{what}: unexpected {field}")
    if isinstance(problem.get("input"), bool):
        return EventSchemaError(f"{what}: {field} is a bool")
    if kind == "literal_error":
        return EventSchemaError(f"{what}: {field} {problem.get('input')!r}")
    return EventSchemaError(f"{what}: {field} has type {type(problem.get('input')).__name__}")


def check_event(envelope: dict[str, Any]) -> None:
    """Raise EventSchemaError unless `envelope` is a well-formed published call event."""
    try:
        Envelope.model_validate(envelope)
    except ValidationError as error:
        raise _explain("envelope", error) from None
    event = envelope["event"]
    model = EVENT_MODELS.get(event.get("type"))
    if model is None:
        raise EventSchemaError(f"unknown event type {event.get('type')!r}")
    try:
        model.model_validate(event)
    except ValidationError as error:
        raise _explain(str(event["type"]), error) from None


# --- What a caller's own call page may see -------------------------------------------------------

#: Per engine event type, the fields a caller who is not staff receives on the call socket. Anything
#: else (agent instructions and tool schemas in raw protocol payloads, tool arguments and outputs,
#: handoff summaries, guardrail matches, summaries of the conversation, supervisor whispers) stays
#: with staff: the dashboards and, for staff callers, the call page's protocol log. An event type
#: missing here is not sent to such a caller at all.
CALLER_FIELDS: dict[str, frozenset[str]] = {
    "transcript.delta": frozenset({"role", "item_id", "text", "agent"}),
    "transcript.done": frozenset({"role", "item_id", "text", "agent", "interrupted"}),
    "playback.clear": frozenset({"item_id", "audio_end_ms", "reason"}),
    "agent.changed": frozenset({"agent", "previous"}),
    "tool.started": frozenset({"name", "call_id", "agent"}),
    "tool.finished": frozenset({"name", "call_id", "agent", "error", "duration_ms"}),
    "approval.requested": frozenset({"name", "call_id", "agent", "timeout_s"}),
    "handoff": frozenset({"from_agent", "to_agent", "depth", "fallback"}),
    "handoff.applied": frozenset({"to_agent", "depth", "applied"}),
    "guardrail.tripped": frozenset({"category", "item_id", "agent"}),
    "escalation": frozenset({"agent"}),
    "usage": frozenset({"agent", "total_cost_usd"}),
    "latency": frozenset({"kind", "ms", "turn"}),
    "error": frozenset({"code", "source", "fatal"}),
    "session.recreated": frozenset({"gap_ms", "reason", "attempts", "restored_items"}),
    "provider.failover": frozenset({"provider"}),
    "call.ended": frozenset({"reason"}),
    "protocol": frozenset({"direction"}),
    "dtmf": frozenset({"digit"}),
    "caller.idle": frozenset({"ms", "item_id", "agent"}),
    "context.summarized": frozenset({"removed_items", "turn"}),
    "human.joined": frozenset({"agent"}),
    "human.left": frozenset({"agent"}),
}
#: Of a raw protocol event, only its type and ids reach a caller (the log shows the flow, not content).
CALLER_PROTOCOL_FIELDS = frozenset({"type", "event_id", "item_id", "response_id"})


def caller_safe_event(event: dict[str, Any]) -> dict[str, Any] | None:
    """The caller's view of an engine event (``EngineEvent.to_dict()``), or None to send nothing."""
    event_type = event.get("type")
    fields = CALLER_FIELDS.get(event_type) if isinstance(event_type, str) else None
    if fields is None:
        return None
    safe = {"type": event_type, **{name: event[name] for name in fields if name in event}}
    if event_type == "tool.finished" and safe.get("error"):
        safe["error"] = "failed"
    if event_type == "error" and (event.get("source") == "transport" or event.get("fatal") is True):
        # Our own words about the caller's frame, or why the call cannot go on (at capacity, ...).
        safe["message"] = event.get("message", "")
    if event_type == "protocol":
        payload = event.get("payload")
        payload = payload if isinstance(payload, dict) else {}
        safe["payload"] = {name: payload[name] for name in CALLER_PROTOCOL_FIELDS
                           if isinstance(payload.get(name), str)}
    return safe
