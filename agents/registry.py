"""The registry of Python tool handlers: a Tool of kind "python" names one by key (never a dotted path).

An app registers its handlers when Django starts, in its ``AppConfig.ready()``, by importing a module
whose functions carry ``@tool_handler("key")``. A handler is a plain synchronous function
``(arguments: dict) -> dict``; the engine's tool runner calls it on its own thread pool. A handler
never raises for a caller's mistake (unknown order, wrong date of birth): it answers with a dict the
model can read out, e.g. ``{"verified": false, "reason": "..."}``. This module imports nothing of
the project, so any app may use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Handler = Callable[[dict[str, Any]], dict[str, Any]]

HANDLERS: dict[str, Handler] = {}
_LABELS: dict[str, str] = {}


def tool_handler(name: str, label: str = "") -> Callable[[Handler], Handler]:
    """Register a handler under `name` (the value a Tool's `handler` field stores)."""

    def register(func: Handler) -> Handler:
        if name in HANDLERS:
            raise ValueError(f"a tool handler called {name!r} is already registered")
        HANDLERS[name] = func
        _LABELS[name] = label or (func.__doc__ or name).strip().splitlines()[0]
        return func

    return register


def handler_choices() -> list[tuple[str, str]]:
    """(key, label) pairs for the admin's handler drop-down."""
    return [(name, f"{name}: {_LABELS[name]}") for name in sorted(HANDLERS)]
