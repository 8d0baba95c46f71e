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
    # `call_local`: part of the call was answered by the local offline engine (priced at 0).
    "usage": {"agent": str, "usage": dict, "cost": str, "call_cost": str, "call_local": bool},
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
