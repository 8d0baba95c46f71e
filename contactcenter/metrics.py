"""Prometheus metrics of the platform, one set per worker process.

Each daphne worker counts what it carries: live calls, caller and agent audio frames, the time a
frame spends in this process, voice-to-voice latency, refused calls. With several workers sharing
one listening socket a scrape reaches any one of them, so when `PROMETHEUS_MULTIPROC_DIR` is set
(the run command sets it for its workers) every worker writes its figures to files there and any
worker's `/metrics` answers for all of them (prometheus_client's multiprocess mode); the live-call
gauge keeps a `worker` label so each worker's load stays visible. Celery queue depths are read from
the broker at scrape time.
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

WORKER = str(os.getpid())

LIVE_CALLS = Gauge("contactcenter_live_calls", "Calls this worker carries now.", ["worker", "transport"],
                   multiprocess_mode="livesum")
CALLS_STARTED = Counter("contactcenter_calls_started", "Calls accepted by a worker.", ["transport"])
CALLS_REFUSED = Counter("contactcenter_calls_refused", "Calls refused before they started.", ["transport", "reason"])
FRAMES = Counter("contactcenter_audio_frames", "Audio frames carried, by direction.", ["direction"])
FRAME_SECONDS = Histogram(
    "contactcenter_frame_seconds", "Time an audio frame spends in the worker, from arrival to sent on.",
    ["direction"], buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0))
VOICE_TO_VOICE_SECONDS = Histogram(
    "contactcenter_voice_to_voice_seconds", "From the end of the caller's speech to the agent's first audio.",
    buckets=(0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0))

_WORKER_ALIVE = Gauge("contactcenter_worker_up", "1 for each live worker process.", ["worker"],
                      multiprocess_mode="livesum")
_WORKER_ALIVE.labels(worker=WORKER).set(1)


def call_started(transport: str) -> None:
    CALLS_STARTED.labels(transport=transport).inc()
    LIVE_CALLS.labels(worker=WORKER, transport=transport).inc()


def call_finished(transport: str) -> None:
    LIVE_CALLS.labels(worker=WORKER, transport=transport).dec()


def call_refused(transport: str, reason: str) -> None:
    CALLS_REFUSED.labels(transport=transport, reason=reason).inc()


# Per-frame bookkeeping stays cheap: counts are added to the shared counter in batches, and one
# frame in FRAME_SAMPLE has its time observed (in multiprocess mode each update writes a file).
FRAME_BATCH = 50
FRAME_SAMPLE = 10
_pending = {"in": 0, "out": 0}


def frame(direction: str, started: float | None = None) -> None:
    """One audio frame, `in` (caller to model) or `out` (model to caller); `started` is the
    perf_counter() of its arrival in this worker."""
    count = _pending[direction] = _pending[direction] + 1
    if started is not None and count % FRAME_SAMPLE == 0:
        FRAME_SECONDS.labels(direction=direction).observe(time.perf_counter() - started)
    if count >= FRAME_BATCH:
        _pending[direction] = 0
        FRAMES.labels(direction=direction).inc(count)


def flush_frames() -> None:
    for direction, count in _pending.items():
        if count:
            _pending[direction] = 0
            FRAMES.labels(direction=direction).inc(count)


def voice_to_voice(ms: float) -> None:
    VOICE_TO_VOICE_SECONDS.observe(ms / 1000)


class CeleryQueues:
    """Queue depths read from the Redis broker at scrape time (no broker: nothing reported)."""

    def collect(self) -> Any:
        from django.conf import settings

        family = GaugeMetricFamily("contactcenter_celery_queue_depth", "Tasks waiting in a Celery queue.",
                                   labels=["queue"])
        url = getattr(settings, "REDIS_URL", "")
        if url:
            import redis

            client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
            try:
                for queue in celery_queue_names():
                    family.add_metric([queue], float(client.llen(queue)))
            except redis.RedisError:
                pass
            finally:
                client.close()
        yield family


def celery_queue_names() -> list[str]:
    from django.conf import settings

    names = set(getattr(settings, "TASK_QUEUES_CONSUMED", ())) | {getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")}
    for route in (getattr(settings, "CELERY_TASK_ROUTES", None) or {}).values():
        if isinstance(route, dict) and route.get("queue"):
            names.add(str(route["queue"]))
    return sorted(names)


def render() -> tuple[bytes, str]:
    """The text exposition of every worker's metrics plus the queue depths."""
    flush_frames()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        from prometheus_client import REGISTRY

        body = generate_latest(REGISTRY)
    queues = CollectorRegistry()
    queues.register(CeleryQueues())  # type: ignore[arg-type]
    return body + generate_latest(queues), CONTENT_TYPE_LATEST


def worker_exited(pid: int, path: str | None = None) -> None:
    """Called by the run command when a worker process ends: its live gauges stop counting.
    ``path``: the workers' metrics directory (default: this process's PROMETHEUS_MULTIPROC_DIR)."""
    path = path or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, path)
