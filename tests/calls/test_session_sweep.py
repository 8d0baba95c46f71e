"""Beat tasks on a real worker: lost calls are reaped (recreation belongs to the engine alone)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from calls import actions
from calls.models import Call
from calls.tasks import reap_lost_calls

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]


def spec(max_session_seconds: int) -> dict[str, Any]:
    return {"slug": "retail", "root_agent": "a", "hash": "e" * 64, "agents": {},
            "limits": {"max_session_seconds": max_session_seconds}}


def test_celery_does_not_own_recreation(settings: Any) -> None:
    """The engine recreates a session before its limit and after a drop (its own deadline timer);
    the beat schedule only reaps lost calls."""
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "calls.tasks.reap_lost_calls" in tasks
    assert not any("recreate" in task for task in tasks)


def test_calls_without_heartbeat_are_ended_as_lost(celery_worker: Any) -> None:
    silent = actions.do_start_call(channel=Call.Channel.TWILIO, spec=spec(3600))
    alive = actions.do_start_call(channel=Call.Channel.TWILIO, spec=spec(3600))
    Call.objects.filter(pk=silent.pk).update(last_heartbeat=timezone.now() - timedelta(minutes=5))
    actions.do_heartbeat(alive.pk)

    reaped = reap_lost_calls.delay().get(timeout=10)
    assert silent.pk in reaped and alive.pk not in reaped
    silent.refresh_from_db()
    alive.refresh_from_db()
    assert (silent.status, silent.end_reason) == ("ended", "lost")
    assert alive.status == "active"
