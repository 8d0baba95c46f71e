"""Validation against the `openai` package's Realtime types.

The package's models accept unknown keys (``extra="allow"``), so after a strict pydantic validation
we walk the model tree and refuse anything left in ``model_extra``: that is how an unknown field
is caught. Error payloads follow the real API: code, message, param (dotted path)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, get_args

from openai.types.realtime import (
    RealtimeClientEvent,
    RealtimeServerEvent,
    RealtimeSessionCreateResponse,
)
from pydantic import BaseModel, TypeAdapter, ValidationError


@dataclass
class ClientEventError(Exception):
    code: str
    message: str
    param: str | None = None
    event_id: str | None = None


def _union_members(annotated: Any) -> tuple[type[BaseModel], ...]:
    union = get_args(annotated)[0]
    return tuple(get_args(union))


@lru_cache(maxsize=1)
def client_event_models() -> dict[str, type[BaseModel]]:
    out: dict[str, type[BaseModel]] = {}
    for model in _union_members(RealtimeClientEvent):
        literal = model.model_fields["type"].annotation
        out[get_args(literal)[0]] = model
    return out


@lru_cache(maxsize=1)
def server_event_models() -> dict[str, type[BaseModel]]:
    out: dict[str, type[BaseModel]] = {}
    for model in _union_members(RealtimeServerEvent):
        literal = model.model_fields["type"].annotation
        out[get_args(literal)[0]] = model
    return out


@lru_cache(maxsize=64)
def _adapter(model: Any) -> TypeAdapter[Any]:
    return TypeAdapter(model)


def _path_from_loc(data: Any, loc: tuple[Any, ...]) -> str:
    """Turn a pydantic loc into the JSON path the client sent, skipping union-member markers."""
    parts: list[str] = []
    current = data
    for key in loc:
        if isinstance(current, dict) and isinstance(key, str) and key in current:
            parts.append(key)
            current = current[key]
        elif isinstance(current, list) and isinstance(key, int) and 0 <= key < len(current):
            parts.append(f"[{key}]")
            current = current[key]
        elif (
            isinstance(current, dict)
            and isinstance(key, str)
            and key[:1].islower()
            and "[" not in key
            and key not in ("function", "literal", "str", "int", "float", "bool", "none")
        ):
            # a missing field (not a union member marker like 'RealtimeSessionCreateRequest')
            parts.append(key)
            current = None
    return ".".join(parts).replace(".[", "[")


def unknown_fields(model: Any, prefix: str = "", allow: frozenset[str] = frozenset()) -> list[str]:
    """Dotted paths of keys that no field of the (nested) openai model declares."""
    found: list[str] = []
    if isinstance(model, BaseModel):
        for key in (model.model_extra or {}):
            path = f"{prefix}.{key}" if prefix else key
            if path not in allow:
                found.append(path)
        for name, info in type(model).model_fields.items():
            value = getattr(model, name)
            key = info.alias or name
            found.extend(unknown_fields(value, f"{prefix}.{key}" if prefix else key, allow))
    elif isinstance(model, list):
        for i, value in enumerate(model):
            found.extend(unknown_fields(value, f"{prefix}[{i}]", allow))
    return found


_ERROR_CODES = {
    "missing": "missing_required_parameter",
}


def validate_client_event(raw: str | bytes) -> tuple[dict[str, Any], BaseModel]:
    """Parse and validate one client event; raise `ClientEventError` with the real error shape."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ClientEventError("invalid_json", f"The server could not parse the JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ClientEventError("invalid_json", "The event must be a JSON object.")
    event_id = data.get("event_id") if isinstance(data.get("event_id"), str) else None
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ClientEventError("missing_required_parameter", "Missing required parameter: 'type'.", "type", event_id)
    model = client_event_models().get(kind)
    if model is None:
        raise ClientEventError(
            "invalid_value",
            f"Invalid value: '{kind}'. Supported values are: {', '.join(sorted(client_event_models()))}.",
            "type",
            event_id,
        )
    if kind == "session.update":
        session = data.get("session")
        if isinstance(session, dict) and session.get("type") != "realtime":
            raise ClientEventError(
                "invalid_value",
                f"Invalid value: {json.dumps(session.get('type'))}. This server supports session.type 'realtime'.",
                "session.type",
                event_id,
            )
    try:
        parsed = _adapter(model).validate_python(data, strict=True)
    except ValidationError as exc:
        errors = exc.errors()
        best = max(errors, key=lambda e: len(e["loc"]))
        param = _path_from_loc(data, tuple(best["loc"])) or None
        code = _ERROR_CODES.get(best["type"], "invalid_value" if best["type"] != "missing" else "")
        if best["type"] in ("missing",):
            message = f"Missing required parameter: '{param}'."
        elif best["type"].endswith("_type") or best["type"] == "model_type":
            code = "invalid_type"
            message = f"Invalid type for '{param}': {best['msg']}."
        else:
            message = f"Invalid value for '{param}': {best['msg']}."
        raise ClientEventError(code, message, param, event_id) from exc
    extra = unknown_fields(parsed)
    if extra:
        raise ClientEventError("unknown_parameter", f"Unknown parameter: '{extra[0]}'.", extra[0], event_id)
    return data, parsed


class ServerEventInvalid(AssertionError):
    pass


_SESSION_EVENTS = ("session.created", "session.updated")


def check_server_event(event: dict[str, Any]) -> None:
    """Raise `ServerEventInvalid` unless ``event`` validates strictly (no unknown keys) against the
    package's `RealtimeServerEvent` union. The session object of session.created/updated is checked
    against `RealtimeSessionCreateResponse` (what the real API sends: it carries id and object)."""
    kind = event.get("type")
    model = server_event_models().get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ServerEventInvalid(f"unknown server event type {kind!r}")
    try:
        parsed = _adapter(RealtimeServerEvent).validate_python(event)
        if not isinstance(parsed, model):
            raise ServerEventInvalid(f"{kind} parsed as {type(parsed).__name__}")
        allow: frozenset[str] = frozenset()
        if kind in _SESSION_EVENTS:
            session = _adapter(RealtimeSessionCreateResponse).validate_python(event["session"])
            bad = unknown_fields(session, "session")
            if bad:
                raise ServerEventInvalid(f"{kind}: unknown fields {bad}")
            allow = frozenset(f"session.{k}" for k in event["session"])
            extra = [p for p in unknown_fields(parsed, "", allow) if not p.startswith("session.")]
        else:
            extra = unknown_fields(parsed, "", allow)
    except ValidationError as exc:
        raise ServerEventInvalid(f"{kind}: {exc}") from exc
    if extra:
        raise ServerEventInvalid(f"{kind}: unknown fields {extra}")
