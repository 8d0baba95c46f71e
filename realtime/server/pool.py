"""A thread pool that runs the most urgent waiting job first, for the offline engine's CPU work.

On two cores the engine's work competes: a caller who has stopped speaking waits for a
recognition, the first sentence of an answer and the policy (``URGENT``); an answer already being
spoken needs its next sentence before the current one has played (``FOLLOWING``: seconds of
slack); and work done early, while a caller pauses and may go on speaking, may be thrown away
(``EARLY``; ``DROPPED`` once the caller went on speaking). A plain FIFO pool lets early work delay a caller who is waiting. Here each job carries
an `Urgency`, read when a worker picks its next job (lowest level first, then oldest), so early
work becomes urgent once the turn it was made for has ended (`Urgency.promote`), even while it
waits. A job cancelled before it starts never runs (a caller resumed speaking).

``WORK_URGENCY`` is the urgency of the work a task submits (the session sets it for the work it
does during a pause); without it work is urgent.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

URGENT = 0
FOLLOWING = 1
EARLY = 2
DROPPED = 3
"""Early work nobody waits for any more (the caller went on speaking): it runs last if at all."""


class Urgency:
    """A job's urgency, shared by the jobs of one piece of early work and changeable while they
    wait. ``follows``: another urgency this one is never less urgent than (a job shared by several
    requests follows each of theirs)."""

    __slots__ = ("follows", "level")

    def __init__(self, level: int = URGENT, follows: tuple[Urgency, ...] = ()) -> None:
        self.level = level
        self.follows = follows

    def current(self) -> int:
        return min([self.level, *(u.current() for u in self.follows)])

    def promote(self) -> None:
        """The work is now awaited by a caller."""
        self.level = URGENT

    def drop(self) -> None:
        """Nobody waits for the work any more (one already running cannot be stopped, but it no
        longer counts as early work holding a worker)."""
        self.level = DROPPED

    def also(self, other: Urgency | int) -> None:
        """Be at least as urgent as ``other`` from now on."""
        if isinstance(other, Urgency):
            if other is not self and other not in self.follows:
                self.follows = (*self.follows, other)
        else:
            self.level = min(self.level, other)

    def __repr__(self) -> str:
        return f"Urgency({self.current()})"


WORK_URGENCY: ContextVar[Urgency | None] = ContextVar("WORK_URGENCY", default=None)


def as_urgency(urgency: Urgency | int | None) -> Urgency:
    """``urgency`` as an `Urgency`; None: the context's ``WORK_URGENCY``, else urgent."""
    if urgency is None:
        urgency = WORK_URGENCY.get()
        return urgency if urgency is not None else Urgency(URGENT)
    return urgency if isinstance(urgency, Urgency) else Urgency(urgency)


@dataclass
class _Job:
    urgency: Urgency
    seq: int
    future: Future[Any]
    fn: Callable[..., Any]
    args: tuple[Any, ...] = field(default_factory=tuple)


class PriorityPool(Executor):
    """``workers`` threads taking the most urgent job first (an `Executor`: ``submit`` is urgent).

    ``early_limit``: at most this many ``EARLY`` jobs run at once (None: no limit), so that early
    work, which may be thrown away, never takes every worker from a caller who is waiting; an early
    job that is promoted while it waits may start at once."""

    def __init__(self, workers: int, name: str, *, early_limit: int | None = None) -> None:
        if workers < 1:
            raise ValueError(f"a pool needs at least one worker, not {workers}")
        if early_limit is not None and early_limit < 1:
            raise ValueError(f"early_limit must be at least 1 (or None), not {early_limit}")
        self.workers = workers
        self.early_limit = early_limit
        self._running: list[_Job] = []
        self._cond = threading.Condition()
        self._jobs: list[_Job] = []
        self._seq = itertools.count()
        self._closed = False
        self._threads = [threading.Thread(target=self._work, name=f"{name}_{i}", daemon=True) for i in range(workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        if kwargs:
            raise TypeError("PriorityPool.submit takes positional arguments only")
        return self.submit_at(URGENT, fn, *args)

    def submit_at(self, urgency: Urgency | int | None, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        """Run ``fn(*args)`` at ``urgency`` (a level, a shared `Urgency`, or None: ``WORK_URGENCY``
        of the caller's context, else urgent)."""
        job = _Job(as_urgency(urgency), next(self._seq), Future(), fn, args)
        with self._cond:
            if self._closed:
                raise RuntimeError("cannot schedule new work after shutdown")
            self._jobs.append(job)
            self._cond.notify()
        return job.future

    def waiting(self) -> int:
        """Jobs not started yet."""
        with self._cond:
            return sum(1 for job in self._jobs if not job.future.cancelled())

    def _next(self) -> _Job | None:
        with self._cond:
            while True:
                self._jobs = [job for job in self._jobs if not job.future.cancelled()]
                # early work running now (promoted or dropped work no longer counts)
                early_running = sum(1 for j in self._running if j.urgency.current() == EARLY)
                early_full = self.early_limit is not None and early_running >= self.early_limit
                ready = [j for j in self._jobs if not (early_full and j.urgency.current() >= EARLY)]
                if ready:
                    job = min(ready, key=lambda j: (j.urgency.current(), j.seq))
                    self._jobs.remove(job)
                    self._running.append(job)
                    return job
                if self._closed:
                    return None
                # early jobs held back: look again when a job ends, or soon (a promotion or a drop
                # is not announced)
                self._cond.wait(0.02 if self._jobs else None)

    def _work(self) -> None:
        while (job := self._next()) is not None:
            try:
                if job.future.set_running_or_notify_cancel():
                    try:
                        result = job.fn(*job.args)
                    except Exception as exc:  # noqa: BLE001 - handed to whoever awaits the job
                        job.future.set_exception(exc)
                    else:
                        job.future.set_result(result)
            finally:
                with self._cond:
                    self._running.remove(job)
                    self._cond.notify()
            del job

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._cond:
            self._closed = True
            if cancel_futures:
                for job in self._jobs:
                    job.future.cancel()
                self._jobs.clear()
            self._cond.notify_all()
        if wait:
            for thread in self._threads:
                if thread is not threading.current_thread():
                    thread.join()
