"""The multi-process stack (`scripts/stack`: two daphne workers, a Celery worker and beat, on this
run's PostgreSQL test database and Redis db), with the protocol server in a thread as upstream."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from bench.stack import Stack
from tests.calls.conftest import live_demo, threaded_realtime_server  # noqa: F401 (fixtures)

METRICS_TOKEN = "metrics-token-for-the-fault-tests"


def stack_redis_url(redis_url: str) -> str:
    """The stack's own Redis db (the next one after this run's, emptied): the test session's Celery
    worker consumes this run's db, and must not take the stack's beat tasks (the reaper) with its
    own settings."""
    import redis

    base, _, number = redis_url.rstrip("/").rpartition("/")
    url = f"{base}/{(int(number) + 1) % 16}" if number.isdigit() else f"{redis_url.rstrip('/')}/1"
    redis.Redis.from_url(url).flushdb()
    return url


def stack_env(threaded_realtime_server: Any, **extra: str) -> dict[str, str]:  # noqa: F811
    from django.conf import settings
    from django.db import connection

    db = connection.settings_dict
    if "postgresql" not in db["ENGINE"] or not settings.REDIS_URL:
        pytest.skip("the stack needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)")
    server = threaded_realtime_server.server
    return {**os.environ,
            "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            "REDIS_URL": stack_redis_url(settings.REDIS_URL), "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": server.api_key,
            "OFFLINE_ENGINE_URL": server.base_url, "DJANGO_SECRET_KEY": settings.SECRET_KEY,
            "METRICS_TOKEN": METRICS_TOKEN, "LOG_LEVEL": "INFO", **extra}


@pytest.fixture
def stack(live_demo: Any, threaded_realtime_server: Any, tmp_path: Any) -> Iterator[Stack]:  # noqa: F811
    env = stack_env(threaded_realtime_server, CALL_HEARTBEAT_SECONDS="1", CALL_HEARTBEAT_TIMEOUT_SECONDS="4",
                    CALL_REAPER_SECONDS="1")
    running = Stack(env, tmp_path / "stack.log").start()
    try:
        yield running
    finally:
        running.stop()
