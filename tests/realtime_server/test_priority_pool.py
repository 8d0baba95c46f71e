"""The offline engine's worker pool: the most urgent waiting job runs first, early work can be
promoted while it waits, a cancelled job never runs, and early work never takes every worker."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import pytest

from realtime.server.pool import DROPPED, EARLY, FOLLOWING, URGENT, WORK_URGENCY, PriorityPool, Urgency, as_urgency


def _blocker(pool: PriorityPool, urgency: int | Urgency | None = None) -> tuple[threading.Event, Future[str]]:
    """Occupy one worker (with a job of ``urgency``, else the pool's default) until the event is
    set; the job's result is "held"."""
    release = threading.Event()
    started = threading.Event()

    def hold() -> str:
        started.set()
        release.wait(10)
        return "held"

    future = pool.submit(hold) if urgency is None else pool.submit_at(urgency, hold)
    assert started.wait(5)
    return release, future


def test_urgent_work_overtakes_early_and_following_work() -> None:
    pool = PriorityPool(1, "test")
    try:
        release, _ = _blocker(pool)
        order: list[str] = []
        jobs = [
            pool.submit_at(EARLY, order.append, "early"),
            pool.submit_at(FOLLOWING, order.append, "following"),
            pool.submit_at(URGENT, order.append, "urgent"),
            pool.submit_at(URGENT, order.append, "urgent, later"),
        ]
        release.set()
        for job in jobs:
            job.result(5)
        assert order == ["urgent", "urgent, later", "following", "early"]
    finally:
        pool.shutdown()


def test_promoted_early_work_runs_before_work_submitted_earlier() -> None:
    pool = PriorityPool(1, "test")
    try:
        release, _ = _blocker(pool)
        order: list[str] = []
        urgency = Urgency(EARLY)
        following = pool.submit_at(FOLLOWING, order.append, "following")
        early = pool.submit_at(urgency, order.append, "promoted")
        urgency.promote()  # the turn it was made for ended while it waited
        release.set()
        early.result(5)
        following.result(5)
        assert order == ["promoted", "following"]
    finally:
        pool.shutdown()


def test_a_job_cancelled_before_it_starts_never_runs() -> None:
    pool = PriorityPool(1, "test")
    try:
        release, _ = _blocker(pool)
        ran: list[str] = []
        dropped = pool.submit_at(EARLY, ran.append, "dropped")
        kept = pool.submit_at(EARLY, ran.append, "kept")
        assert dropped.cancel()
        release.set()
        kept.result(5)
        assert ran == ["kept"]
        assert pool.waiting() == 0
    finally:
        pool.shutdown()


def test_early_work_never_takes_every_worker() -> None:
    pool = PriorityPool(2, "test", early_limit=1)
    try:
        release, first = _blocker(pool, EARLY)
        second = pool.submit_at(EARLY, lambda: "second early")
        urgent = pool.submit_at(URGENT, lambda: "urgent")
        assert urgent.result(5) == "urgent"  # the free worker is kept for it
        time.sleep(0.1)
        assert not second.done()  # the second early job waits for the first
        release.set()
        assert second.result(5) == "second early"
        assert first.result(5) == "held"
    finally:
        pool.shutdown()


def test_early_work_held_back_starts_when_promoted() -> None:
    pool = PriorityPool(2, "test", early_limit=1)
    try:
        release, _ = _blocker(pool, EARLY)
        urgency = Urgency(EARLY)
        held = pool.submit_at(urgency, lambda: "now urgent")
        time.sleep(0.1)
        assert not held.done()
        urgency.promote()
        assert held.result(5) == "now urgent"
        release.set()
    finally:
        pool.shutdown()


def test_errors_reach_the_caller_and_the_worker_goes_on() -> None:
    pool = PriorityPool(1, "test")
    try:
        def fail() -> None:
            raise ValueError("bad audio")

        with pytest.raises(ValueError, match="bad audio"):
            pool.submit(fail).result(5)
        assert pool.submit(lambda: 2 + 2).result(5) == 4
    finally:
        pool.shutdown()


def test_urgency_from_the_context_and_shared_urgencies() -> None:
    assert as_urgency(None).current() == URGENT
    token = WORK_URGENCY.set(Urgency(EARLY))
    try:
        assert as_urgency(None).current() == EARLY
    finally:
        WORK_URGENCY.reset(token)
    speculation = Urgency(EARLY)
    shared = Urgency(FOLLOWING, (speculation,))
    assert shared.current() == FOLLOWING
    speculation.promote()
    assert shared.current() == URGENT
    other = Urgency(EARLY)
    other.also(FOLLOWING)
    assert other.current() == FOLLOWING


def test_bad_input_and_shutdown() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        PriorityPool(0, "test")
    with pytest.raises(ValueError, match="early_limit"):
        PriorityPool(2, "test", early_limit=0)
    pool = PriorityPool(1, "test")
    release, _ = _blocker(pool)
    waiting = pool.submit(lambda: None)
    pool.shutdown(wait=False, cancel_futures=True)
    assert waiting.cancelled()
    release.set()
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(lambda: None)
    pool.shutdown(wait=True)
    assert not any(t.is_alive() for t in pool._threads)


def test_dropped_early_work_no_longer_holds_back_new_early_work() -> None:
    pool = PriorityPool(2, "test", early_limit=1)
    try:
        release = threading.Event()
        started = threading.Event()

        def early_hold() -> None:
            started.set()
            release.wait(10)

        first = Urgency(EARLY)
        pool.submit_at(first, early_hold)
        assert started.wait(5)
        second = pool.submit_at(EARLY, lambda: "the caller's new pause")
        time.sleep(0.1)
        assert not second.done()
        first.drop()  # the caller went on speaking: the first early work is for nothing
        assert second.result(5) == "the caller's new pause"
        waiting_dropped = pool.submit_at(Urgency(DROPPED), lambda: "dropped")
        urgent = pool.submit_at(URGENT, lambda: "urgent")
        assert urgent.result(5) == "urgent"
        release.set()
        assert waiting_dropped.result(5) == "dropped"
    finally:
        pool.shutdown()
