"""The calls this worker process carries: admission control and the drain at shutdown.

Each worker process holds its own calls (a call lives in the process that holds its socket), so
capacity is counted per process: `CALL_CAPACITY_PER_WORKER` live calls, past which a new call is
refused at once with a reason instead of slowing every call down. When the worker is told to
stop (SIGTERM, `contactcenter.worker`), it stops admitting calls and ends the live ones with the
reason `server_shutdown`; the server then closes what is left, and a cancelled call consumer ends
its call on the way out (`CallConsumer.__call__`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from django.conf import settings

from contactcenter import metrics

logger = logging.getLogger(__name__)

REFUSED_AT_CAPACITY = "refused_at_capacity"
REFUSED_SHUTTING_DOWN = "refused_shutting_down"


class LiveCall(Protocol):
    async def end_call(self, reason: str) -> None: ...


class LiveCalls:
    def __init__(self) -> None:
        self.calls: set[LiveCall] = set()
        self.draining = False
        self.refused = 0

    def __len__(self) -> int:
        return len(self.calls)

    @property
    def capacity(self) -> int:
        return int(settings.CALL_CAPACITY_PER_WORKER)

    def admit(self, call: LiveCall) -> str | None:
        """Count ``call`` in, or return why it is refused (at capacity, or shutting down)."""
        transport = _transport(call)
        if self.draining:
            self.refused += 1
            metrics.call_refused(transport, REFUSED_SHUTTING_DOWN)
            return REFUSED_SHUTTING_DOWN
        if self.capacity > 0 and len(self.calls) >= self.capacity:
            self.refused += 1
            metrics.call_refused(transport, REFUSED_AT_CAPACITY)
            return REFUSED_AT_CAPACITY
        if call not in self.calls:
            self.calls.add(call)
            metrics.call_started(transport)
        return None

    def has_room(self) -> bool:
        """What a webhook asks before it sends a caller this way (the socket still checks)."""
        return not self.draining and (self.capacity <= 0 or len(self.calls) < self.capacity)

    def leave(self, call: LiveCall) -> None:
        if call in self.calls:
            self.calls.discard(call)
            metrics.call_finished(_transport(call))

    async def drain(self, reason: str = "server_shutdown", timeout_s: float = 10.0) -> int:
        """Stop admitting, end every live call with ``reason`` (records written); how many ended."""
        self.draining = True
        calls = list(self.calls)
        if calls:
            await asyncio.wait([asyncio.ensure_future(c.end_call(reason)) for c in calls], timeout=timeout_s)
        return len(calls)


LIVE = LiveCalls()


def _transport(call: LiveCall) -> str:
    return str(getattr(call, "channel_label", "call"))


def refusal_message(reason: str) -> str:
    if reason == REFUSED_SHUTTING_DOWN:
        return "The service is restarting. Please call again in a minute."
    return "All our lines are busy right now. Please try again in a few minutes."


def describe() -> dict[str, Any]:
    return {"live_calls": len(LIVE), "capacity": LIVE.capacity, "draining": LIVE.draining, "refused": LIVE.refused}


async def keep_heartbeat(call_id: int) -> None:
    """Touch the call's heartbeat every CALL_HEARTBEAT_SECONDS for as long as the call lives.

    A failed write (the database is restarting or unreachable) does not stop it: the call goes on,
    the failure is logged once, and the write is tried again every second until it lands, so the
    call's heartbeat is fresh within a second of the database coming back. (The reaper, for its
    part, does not count the silence of a database outage: `calls.tasks.reap_lost_calls`.)"""
    from calls import actions
    from calls.bridge import on_records_thread

    beat = on_records_thread(actions.do_heartbeat)  # not the sync thread the views share
    failing_since: float | None = None
    while True:
        await asyncio.sleep(settings.CALL_HEARTBEAT_SECONDS if failing_since is None
                            else min(1.0, settings.CALL_HEARTBEAT_SECONDS))
        try:
            await beat(call_id)
        except Exception as error:  # noqa: BLE001 - any database failure; the call itself goes on
            if failing_since is None:
                failing_since = time.monotonic()
                logger.warning("call %s: heartbeat not written (%s); retrying every second", call_id,
                               type(error).__name__)
            continue
        if failing_since is not None:
            logger.warning("call %s: heartbeat written again after %.1f s of failures", call_id,
                           time.monotonic() - failing_since)
            failing_since = None
