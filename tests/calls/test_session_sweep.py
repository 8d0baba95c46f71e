"""Beat tasks on a real worker: sessions near their limit are told to recreate; lost calls are reaped."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from calls import actions
from calls.models import Call, SessionSegment
from calls.tasks import RECREATE_MESSAGE, reap_lost_calls, recreate_sessions_near_limit

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]


def spec(max_session_seconds: int) -> dict[str, Any]:
    return {"slug": "retail", "root_agent": "a", "hash": "e" * 64, "agents": {},
            "limits": {"max_session_seconds": max_session_seconds}}


def test_session_near_its_limit_is_asked_to_recreate_once(celery_worker: Any, listen: Any, settings: Any) -> None:
    old = actions.do_start_call(channel=Call.Channel.BROWSER, spec=spec(600))
    young = actions.do_start_call(channel=Call.Channel.BROWSER, spec=spec(3600))
    for call in (old, young):
        actions.do_open_session(call.pk, model="gpt-realtime-1.5", agent="a")
    # The old call's session began 9 minutes ago: inside the 2-minute margin of its 10-minute limit.
    SessionSegment.objects.filter(call=old).update(started_at=timezone.now() - timedelta(minutes=9))
    old_listener, young_listener = listen(old.pk), listen(young.pk)

    assert recreate_sessions_near_limit.delay().get(timeout=10) == [old.pk]
    assert [m["type"] for m in old_listener.drain(3.0, until=RECREATE_MESSAGE)] == [RECREATE_MESSAGE]
    assert young_listener.drain(0.3) == []
    assert recreate_sessions_near_limit.delay().get(timeout=10) == []  # asked once per session


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
