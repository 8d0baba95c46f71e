"""Shared fixtures. Tests talk to the real components: the database configured by DATABASE_URL
(PostgreSQL under `make test`), Redis, a Celery worker, WebSockets and the local protocol server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bench.stack import RAISED_RATE_LIMITS


@pytest.fixture(autouse=True)
def _worker_quiet_before_flush(request: pytest.FixtureRequest) -> Iterator[None]:
    """Set up after the test's transactional database, so torn down before it: the tables are
    truncated only once the Celery worker has finished what the test queued."""
    if "transactional_db" in request.fixturenames:
        request.getfixturevalue("transactional_db")
    yield
    from tests.calls.conftest import wait_for_worker_idle

    wait_for_worker_idle()


@pytest.fixture(autouse=True)
def _phone_rate_limits_out_of_the_way(settings: Any) -> None:
    """The whole suite calls in from a few test numbers within minutes; the limits' own tests
    (tests/calls/test_twilio_voice_replay.py) set them low again."""
    for name, value in RAISED_RATE_LIMITS.items():
        setattr(settings, name, value)


@pytest.fixture
def supervisor(django_user_model: Any) -> Any:
    """A staff user: what the dashboard and the audit call a supervisor."""
    return django_user_model.objects.create_user("sam", password="watch-the-calls-123", is_staff=True)


@pytest.fixture
def outsider(django_user_model: Any) -> Any:
    """A signed-in user who is not staff."""
    return django_user_model.objects.create_user("olly", password="just-an-operator-123")
