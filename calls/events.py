"""Schema of the events that `calls.actions` publishes to a call's channel group.

Every published message is an envelope

    {"type": "call.event", "call_id": 12, "seq": 7, "event": {"type": "handoff", "at": "<iso time>", ...}}

where `seq` increases by one per event of the call (stored in Call.last_seq), so a dashboard that
reconnects can tell what it missed. The fields of each event type are listed in EVENT_FIELDS; the
tests check every emitted event against it, and `check_event` refuses anything else at publish time.
"""

from __future__ import annotations

from typing import Any

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

_NUMBER = (int, float)
_JSON = (dict, list, str, int, float, bool, type(None))
_OPT_INT = (int, type(None))

EVENT_FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "call_started": {"channel": str, "scenario": str, "agent": str, "spec_hash": str, "caller_id": str},
    "call_answered": {"channel": str},
    "session": {"index": int, "state": str, "model": str, "agent": str, "end_reason": str, "gap_ms": _OPT_INT},
    "transcript": {"item_id": str, "role": str, "text": str, "agent": str, "truncated": bool},
    "handoff": {
        "from_agent": str, "to_agent": str, "reason": str, "context": dict, "depth": int,
        "duration_ms": _OPT_INT, "voice_kept": bool, "fallback": bool,
    },
    # The server answered the handoff's session.update after `applied_ms` (or refused it: `error`).
    "handoff_applied": {"to_agent": str, "depth": int, "applied": bool, "applied_ms": int, "error": str},
    "tool": {
        "tool_call_id": str, "name": str, "agent": str, "status": str, "arguments": _JSON, "result": _JSON,
        "error": str, "duration_ms": _OPT_INT, "approved_by": str,
    },
    "guardrail": {"category": str, "text": str, "action": str, "agent": str},
    "escalation": {"escalation_id": int, "reason": str, "source": str, "agent": str, "webhook_status": str},
    "usage": {"agent": str, "usage": dict, "cost": str, "call_cost": str},
    "latency": {"voice_to_voice_ms": int, "p50_ms": int, "p95_ms": int},
    # The caller said nothing for `ms` (server_vad idle_timeout_ms); `idle_prompts`: the call's count so far.
    "caller.idle": {"ms": int, "agent": str, "item_id": str, "idle_prompts": int},
    "summary": {"kind": str, "text": str, "disposition": str},
    "call_ended": {"reason": str, "cost": str, "duration_ms": int},
    "supervisor": {"action": str, "by": str, "text": str, "tool_call_id": str},
}

ENVELOPE_FIELDS: dict[str, type | tuple[type, ...]] = {"type": str, "call_id": int, "seq": int, "event": dict}


class EventSchemaError(ValueError):
    pass


def _check_fields(what: str, data: dict[str, Any], fields: dict[str, type | tuple[type, ...]]) -> None:
    missing = sorted(set(fields) - set(data))
    if missing:
        raise EventSchemaError(f"{what}: missing {', '.join(missing)}")
    for name, kind in fields.items():
        value = data[name]
        # bool is an int in Python: a field typed int must not accept True/False.
        if isinstance(value, bool) and kind in (int, _OPT_INT, _NUMBER):
            raise EventSchemaError(f"{what}: {name} is a bool")
        if not isinstance(value, kind):
            raise EventSchemaError(f"{what}: {name} has type {type(value).__name__}")


def check_event(envelope: dict[str, Any]) -> None:
    """Raise EventSchemaError unless `envelope` is a well-formed published call event."""
    _check_fields("envelope", envelope, ENVELOPE_FIELDS)
    if envelope["type"] != CALL_EVENT:
        raise EventSchemaError(f"envelope: type {envelope['type']!r}")
    event = envelope["event"]
    event_type = event.get("type")
    if event_type not in EVENT_FIELDS:
        raise EventSchemaError(f"unknown event type {event_type!r}")
    extra = sorted(set(event) - set(EVENT_FIELDS[event_type]) - {"type", "at"})
    if extra:
        raise EventSchemaError(f"{event_type}: unexpected {', '.join(extra)}")
    if not isinstance(event.get("at"), str):
        raise EventSchemaError(f"{event_type}: missing at")
    _check_fields(event_type, event, EVENT_FIELDS[event_type])


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
    if event_type == "error" and event.get("source") == "transport":
        safe["message"] = event.get("message", "")  # our own words about the caller's frame
    if event_type == "protocol":
        payload = event.get("payload")
        payload = payload if isinstance(payload, dict) else {}
        safe["payload"] = {name: payload[name] for name in CALLER_PROTOCOL_FIELDS
                           if isinstance(payload.get(name), str)}
    return safe
