"""Celery work is split in three queues, so a live call's rolling summary never waits behind
post-call summaries (retried for minutes) or slow webhooks; the run command's worker takes all three."""

from __future__ import annotations

from django.conf import settings

from calls import tasks
from contactcenter.celery import app


def queue_of(task: object) -> str:
    route = app.amqp.router.route({}, task.name, args=(), kwargs={})  # type: ignore[attr-defined]
    return route["queue"].name


def test_each_task_has_its_queue() -> None:
    assert queue_of(tasks.summarize_context) == "live"
    assert queue_of(tasks.reap_lost_calls) == "live"
    assert queue_of(tasks.recreate_sessions_near_limit) == "live"
    assert queue_of(tasks.summarize_call) == "post_call"
    assert queue_of(tasks.post_escalation) == "webhooks"


def test_every_task_lands_on_a_consumed_queue() -> None:
    """A task routed nowhere the worker listens would wait forever: every registered task of the
    project reaches one of the queues the run command's worker consumes."""
    ours = [name for name in app.tasks if name.split(".")[0] in {"calls", "agents", "audit", "demo"}]
    assert ours
    for name in ours:
        assert queue_of(app.tasks[name]) in settings.TASK_QUEUES_CONSUMED, name


def test_run_command_worker_consumes_all_queues() -> None:
    source = (settings.BASE_DIR / "contactcenter/management/commands/runcontactcenter.py").read_text()
    assert '"-Q", ",".join(settings.TASK_QUEUES_CONSUMED)' in source
    assert set(settings.TASK_QUEUES_CONSUMED) == {"live", "post_call", "webhooks"}
