"""Strict validation against the official `openai` realtime types.

The package's pydantic models accept unknown keys (extra="allow"), so a misspelt or beta field
would pass a plain `model_validate`. `strict_session_update` validates, then walks the result and
refuses any value the types did not declare.
"""

from __future__ import annotations

from typing import Any

from openai.types.realtime import RealtimeSessionCreateRequest, SessionUpdateEvent
from pydantic import BaseModel


def unknown_keys(model: Any, path: str = "") -> list[str]:
    """Paths of every field a pydantic model (recursively) kept as an undeclared extra."""
    found: list[str] = []
    if isinstance(model, BaseModel):
        for key in model.model_extra or {}:
            found.append(f"{path}.{key}" if path else key)
        for name in type(model).model_fields:
            found += unknown_keys(getattr(model, name), f"{path}.{name}" if path else name)
    elif isinstance(model, (list, tuple)):
        for index, item in enumerate(model):
            found += unknown_keys(item, f"{path}[{index}]")
    elif isinstance(model, dict):
        for key, item in model.items():
            found += unknown_keys(item, f"{path}.{key}")
    return found


def strict_session_update(session: dict[str, Any]) -> SessionUpdateEvent:
    """Validate a ``session.update`` with this session; AssertionError on any undeclared key."""
    event = SessionUpdateEvent.model_validate({"type": "session.update", "session": session})
    assert isinstance(event.session, RealtimeSessionCreateRequest), "not a realtime session"
    extras = unknown_keys(event)
    assert not extras, f"fields the openai realtime types do not declare: {extras}"
    dumped = event.session.model_dump(mode="json", exclude_unset=True)
    assert dumped == session, "the openai types did not keep the payload as sent"
    return event
