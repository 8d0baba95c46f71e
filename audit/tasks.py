"""Celery tasks of the audit: the retention sweep (beat, hourly)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from audit.retention import apply_retention as run_retention


@shared_task(name="audit.tasks.apply_retention")
def apply_retention() -> dict[str, Any]:
    return run_retention()
