"""Structured logs: every line written while a call is handled carries that call's id.

`bind_call(call_id)` sets the id in a context variable: the consumer binds it when its call is
created, so its handlers and every task they spawn log with it; Celery tasks whose first argument
(or `call_id` keyword) is a call id are bound before they run. `CallContext` (a logging filter on
the console handler) copies it onto each record. `LOG_FORMAT=json` writes one JSON object per line
(time, level, logger, message, call_id, and the exception when there is one); the default plain
format shows `call=<id>`.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

_call_id: ContextVar[int | None] = ContextVar("call_id", default=None)


def bind_call(call_id: int | None) -> None:
    _call_id.set(call_id)


def current_call() -> int | None:
    return _call_id.get()


class CallContext(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "call_id"):
            call_id = _call_id.get()
            record.call_id = call_id if call_id is not None else "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        call_id = getattr(record, "call_id", "-")
        entry["call_id"] = call_id if call_id != "-" else None
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def bind_celery_task(task: Any, args: Any, kwargs: Any) -> None:
    """task_prerun: bind the call a task works on (its `call_id` keyword or a leading int argument)."""
    call_id = (kwargs or {}).get("call_id")
    if call_id is None and args and isinstance(args[0], int) and not isinstance(args[0], bool):
        call_id = args[0] if "call" in getattr(task, "name", "") else None
    bind_call(call_id if isinstance(call_id, int) else None)
