"""Handoff rows for export: CSV and JSON Lines, produced row by row from a server-side cursor so
that any number of rows streams with flat memory (the view streams them; `exporthandoffs` writes
them to a file or stdout)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import QuerySet

from audit.filters import depth_caps
from calls.models import HandoffEvent

COLUMNS = (
    "id", "created_at", "call_id", "scenario", "version", "spec_hash", "from_agent", "to_agent", "reason",
    "depth", "fallback", "depth_cap", "applied", "applied_ms", "apply_error", "duration_ms", "voice_kept",
    "context", "call_ended_at", "call_end_reason",
)
VALUES = (
    "id", "created_at", "call_id", "call__scenario_slug", "call__scenario_version__number", "call__spec_hash",
    "from_agent", "to_agent", "reason", "depth", "fallback", "applied", "applied_ms", "apply_error",
    "duration_ms", "voice_kept", "context", "call__ended_at", "call__end_reason",
)
CHUNK = 2000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class DepthCaps:
    """max_handoff_depth per spec hash, read once (`filters.depth_caps`)."""

    def __init__(self) -> None:
        self._caps: dict[str, int] | None = None

    def __call__(self, spec_hash: str | None) -> int | None:
        if self._caps is None:
            self._caps = depth_caps()
        return self._caps.get(spec_hash or "")


def handoff_rows(queryset: QuerySet[HandoffEvent]) -> Iterator[dict[str, Any]]:
    """One dict per handoff (COLUMNS), in the queryset's order, read CHUNK rows at a time."""
    caps = DepthCaps()
    for values in queryset.values_list(*VALUES).iterator(chunk_size=CHUNK):
        row = dict(zip(COLUMNS[:11] + COLUMNS[12:], values, strict=True))
        cap = caps(row["spec_hash"])
        row["depth_cap"] = bool(row["fallback"] and cap is not None and row["depth"] > cap)
        yield {name: row[name] for name in COLUMNS}


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    elif hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value  # a spreadsheet must not run a caller's words as a formula
    return value


class _Line:
    """A file-like object for csv.writer that hands back what is written."""

    def write(self, text: str) -> str:
        return text


def csv_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(COLUMNS)
    for row in rows:
        yield writer.writerow([_cell(row[name]) for name in COLUMNS])


def jsonl_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, ensure_ascii=False, default=lambda v: v.isoformat()) + "\n"


FORMATS = {"csv": (csv_lines, "text/csv; charset=utf-8"), "jsonl": (jsonl_lines, "application/x-ndjson")}
