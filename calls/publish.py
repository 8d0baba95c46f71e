"""Publishing after commit: every event a record change makes goes through `publish_event`, which
numbers it in the call's sequence, logs it (CallEvent) and sends it to the call's channel group once
the transaction commits; `enqueue` queues a Celery task by name.

Only the actions (`calls.actions`) call `publish_event`. Inside the ASGI server the send after commit
does not wait for the channel layer (see `Publisher`).
"""
from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
import os
import threading
import weakref
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.db import connection, transaction
from django.db.models import Count, F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from calls.events import (
    CALL_EVENT,
    DASHBOARD_CALL,
    DASHBOARD_CHANGES,
    DASHBOARD_GROUP,
    check_event,
)
from calls.models import (
    Call,
    CallEvent,
    call_events_group,
    call_group,
)
from contactcenter.celery import app as celery_app

logger = logging.getLogger(__name__)


def publish_event(call_id: int, event_type: str, fields: dict[str, Any], row: Call | None = None) -> int:
    """Give the event the call's next sequence number, log it (CallEvent) and send it to the call's
    events group after commit; a change of the call's row also goes to the dashboard-wide group.

    Must run inside the caller's transaction, after the caller's own writes: the row lock taken by
    the increment orders the sequence numbers of concurrent writers by commit. ``row``: the call as
    the caller has just read or written it (every field but the bulky ones), so that the dashboard's
    row is not read again; without it the row is read here (one query).
    """
    return publish_events(call_id, [(event_type, fields)], row=row)[0]


def publish_events(call_id: int, events: list[tuple[str, dict[str, Any]]], row: Call | None = None) -> list[int]:
    """`publish_event` for several events of one write, in order: one sequence increment and one
    insert into the log for all of them."""
    last = next_seq(call_id, len(events))
    now = timezone.now().isoformat()
    envelopes = []
    for seq, (event_type, fields) in enumerate(events, start=last - len(events) + 1):
        envelope = {"type": CALL_EVENT, "call_id": call_id, "seq": seq,
                    "event": {"type": event_type, "at": now, **fields}}
        check_event(envelope)
        envelopes.append(envelope)
    if len(envelopes) == 1:
        only = envelopes[0]
        CallEvent.objects.create(call_id=call_id, seq=only["seq"], type=only["event"]["type"], event=only["event"])
    else:
        CallEvent.objects.bulk_create([CallEvent(call_id=call_id, seq=e["seq"], type=e["event"]["type"],
                                                 event=e["event"]) for e in envelopes])
    group = call_events_group(call_id)
    for envelope in envelopes:
        transaction.on_commit(lambda envelope=envelope: send_to_group(group, envelope))  # type: ignore[misc]
        event_type, seq = envelope["event"]["type"], envelope["seq"]
        if event_type in DASHBOARD_CHANGES:
            if row is None:
                row = dashboard_call(call_id)
            row.last_seq = seq
            change = {"type": DASHBOARD_CALL, "call_id": call_id, "seq": seq, "change": event_type,
                      "call": row.dashboard_row()}
            transaction.on_commit(lambda change=change: send_to_group(DASHBOARD_GROUP, change))  # type: ignore[misc]
    return [e["seq"] for e in envelopes]


def dashboard_call(call_id: int) -> Call:
    """The call as the dashboard shows it, its waiting approvals counted in the same query."""
    return Call.objects.defer(*CALL_BULKY_FIELDS).annotate(pending=waiting_approvals()).get(pk=call_id)


def waiting_approvals() -> Any:
    """An annotation: the call's tool calls waiting for a supervisor (`Call.pending_approvals`)."""
    from calls.models import ToolInvocation

    waiting = (ToolInvocation.objects.filter(call_id=OuterRef("pk"), status=ToolInvocation.Status.AWAITING_APPROVAL)
               .order_by().values("call_id").annotate(n=Count("pk")).values("n"))
    return Coalesce(Subquery(waiting), 0)


#: Call fields no event needs (the compiled spec alone is tens of kilobytes of JSON).
CALL_BULKY_FIELDS = ("spec", "latency_samples_ms")


def next_seq(call_id: int, count: int = 1) -> int:
    """Add ``count`` to the call's event sequence and return the last number: one statement where
    the database can return the updated value (PostgreSQL, SQLite 3.35+), two otherwise."""
    if connection.vendor in ("postgresql", "sqlite"):
        table = connection.ops.quote_name(Call._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET last_seq = last_seq + %s WHERE id = %s RETURNING last_seq",
                           [count, call_id])
            row = cursor.fetchone()
        if row is None:
            raise Call.DoesNotExist(f"no call {call_id}")
        return int(row[0])
    Call.objects.filter(pk=call_id).update(last_seq=F("last_seq") + count)
    return Call.objects.filter(pk=call_id).values_list("last_seq", flat=True).get()


def send_to_group(group: str, message: dict[str, Any]) -> None:
    """Publish after commit. Inside the ASGI server (a thread launched from its event loop) the
    message is handed to that loop's publisher and this returns at once: a stalled channel layer
    must not hold the thread that the server's consumers share for the ORM (Channels runs
    ``close_old_connections`` there before every frame it dispatches). Elsewhere (Celery, commands)
    it is sent before returning."""
    layer = get_channel_layer()
    if layer is None:
        return
    loop = _server_loop()
    if loop is not None:
        PUBLISHER.submit(loop, layer, group, message)
        return
    try:
        if isinstance(layer, RedisChannelLayer) and not _in_asgiref_loop():
            SENDER_LOOP.run(layer.group_send(group, message))
        else:
            async_to_sync(layer.group_send)(group, message)
    except Exception:  # a channel-layer outage must not undo or break a committed write
        logger.exception("could not publish %s to %s", message.get("type"), group)


def _in_asgiref_loop() -> bool:
    """This thread was started by ``sync_to_async`` from an event loop: ``async_to_sync`` then runs
    the send on that loop (an in-memory layer's queues belong to it), not on a new one."""
    from asgiref.sync import SyncToAsync

    return (getattr(SyncToAsync.threadlocal, "main_event_loop", None) is not None
            and getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) == os.getpid())


class SenderLoop:
    """One event loop, in a thread of its own, for the sends of code that runs outside any loop
    (Celery tasks, commands). ``async_to_sync`` would start a thread and a new loop per send, and
    channels_redis keeps its Redis connections per loop: every post-call summary paid for a thread,
    a loop and a new Redis connection, then their teardown. Made again in a forked child."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def _running(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid() or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="calls-sender-loop", daemon=True).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def run(self, coroutine: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._running()).result(timeout)


SENDER_LOOP = SenderLoop()


#: The event loop of the ASGI server this code runs under, set by the application on every
#: connection (contactcenter.asgi, contactcenter.routing). sync_to_async copies context variables
#: into the thread it runs a function on, so the records and views a connection runs see it too.
_SERVER_LOOP: contextvars.ContextVar[asyncio.AbstractEventLoop | None] = contextvars.ContextVar(
    "server_loop", default=None)


def bind_server_loop() -> None:
    """Called on the server's loop, at the start of each ASGI connection: work launched from it
    publishes through that loop's ordered sender."""
    _SERVER_LOOP.set(asyncio.get_running_loop())


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """The running server loop whose connection launched this thread, if any."""
    try:
        asyncio.get_running_loop()
        return None  # called on a loop itself (not the case for actions, which are synchronous)
    except RuntimeError:
        pass
    loop = _SERVER_LOOP.get()
    if loop is None or loop.is_closed() or not loop.is_running():
        return None
    return loop


class Publisher:
    """Sends published messages on the server's event loop, one at a time in the order they were
    committed (one queue per loop, drained by a sender task that exists only while the queue has
    messages). While the channel layer stalls, messages wait here, up to ``limit``; past it the
    oldest are dropped with a log line (the CallEvent log keeps every event, and dashboards resume
    from it by sequence number)."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, collections.deque[Any]] = (
            weakref.WeakKeyDictionary())
        self._senders: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
            weakref.WeakKeyDictionary())
        self.dropped = 0

    def submit(self, loop: asyncio.AbstractEventLoop, layer: Any, group: str, message: dict[str, Any]) -> None:
        try:
            loop.call_soon_threadsafe(self._enqueue, loop, layer, group, message)
        except RuntimeError:  # the loop closed meanwhile: nobody is listening on it any more
            logger.warning("could not publish %s to %s: the server loop has closed", message.get("type"), group)

    def _enqueue(self, loop: asyncio.AbstractEventLoop, layer: Any, group: str, message: dict[str, Any]) -> None:
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = collections.deque()
        if len(queue) >= self.limit:
            queue.popleft()
            self.dropped += 1
            logger.warning("the channel layer is not keeping up: dropped the oldest unsent event")
        queue.append((layer, group, message))
        sender = self._senders.get(loop)
        if sender is None or sender.done():
            self._senders[loop] = loop.create_task(self._send_all(queue), name="calls-publisher")

    async def _send_all(self, queue: collections.deque[Any]) -> None:
        while queue:
            layer, group, message = queue.popleft()
            try:
                await layer.group_send(group, message)
            except Exception:  # a channel-layer outage must not stop later events
                logger.exception("could not publish %s to %s", message.get("type"), group)

    def pending(self, loop: asyncio.AbstractEventLoop | None = None) -> int:
        """Messages not yet handed to the channel layer on ``loop`` (default: the running loop)."""
        queue = self._queues.get(loop or asyncio.get_running_loop())
        return len(queue) if queue is not None else 0


PUBLISHER = Publisher()


def send_to_call(call_id: int, message: dict[str, Any]) -> None:
    """Send a control message (summary delivery, recreate request, ...) to a live call's group."""
    send_to_group(call_group(call_id), message)



def enqueue(task_name: str, *args: Any) -> None:
    """Queue a Celery task by its registered name (calls.tasks calls the actions; the actions never
    import the tasks), on the queue its route names."""
    try:
        celery_app.tasks[task_name].delay(*args)
    except Exception:  # a broker outage must not break the call path; the record is committed
        logger.exception("could not queue %s for call %s", task_name, args[0] if args else "?")
