"""Listen in: a live call's audio, caller and agent, to supervisors on any daphne worker.

The route (docs/ARCHITECTURE.md, "Listening in"):

* On the call's worker, `ListenTap` (one per call, owned by `CallBridge`) sits beside the audio
  path. While nobody listens it is off and costs one attribute test per frame. When on, a frame is
  appended to a bounded deque (the oldest frame falls out when it is full) and an event is set:
  the call's audio path never awaits anything of the tap. One pump task per call publishes the
  frames, in order, to the call's pub/sub channel (Redis `PUBLISH`, one message per frame whatever
  the number of listeners). When a publish reaches nobody the tap turns itself off.
* A listener's socket (`ListenConsumer`, `/ws/dashboard/calls/<id>/listen/?mode=mixed|caller|agent`,
  any worker) subscribes to that channel, then asks the call to turn its tap on (`call.listen` on
  the call's group, repeated every LISTEN_KEEPALIVE_SECONDS). Frames go to a bounded queue; a
  listener whose queue overflows, or whose frames are older than LISTEN_MAX_LAG_SECONDS when
  sent, is too slow: it is closed with 4460, and the call never notices.

Wire format on the pub/sub channel: side (``c`` caller, ``a`` agent, ``e`` the call ended), audio
format (``p`` pcm16 24 kHz, ``u`` G.711 mu-law 8 kHz), the wall-clock time the frame passed the
call (a double, seconds), then the audio. To the page: side, one pad byte, the sample rate (uint16),
the same time in milliseconds (a double), then pcm16 little-endian: the page schedules each side on
its own clock and Web Audio mixes them.

Without Redis (`REDIS_URL` unset: one process, the in-memory channel layer) the channel is an
in-process hub with the same interface.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import struct
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from calls import actions
from calls.consumers import (
    CLOSE_BAD_MESSAGE,
    CLOSE_FORBIDDEN,
    CLOSE_NOT_FOUND,
    CLOSE_TOO_MANY,
    CLOSE_UNAUTHENTICATED,
    load_json,
)
from calls.limits import USER_SOCKETS, SlotHolder
from calls.models import Call, call_group

logger = logging.getLogger(__name__)

#: A listener that cannot keep up is closed with this code.
CLOSE_TOO_SLOW = 4460
CALL_LISTEN = "call.listen"
MODES = ("mixed", "caller", "agent")
HEADER = struct.Struct("!ccd")
PAGE_HEADER = struct.Struct("<cxHd")
FORMATS = {"audio/pcm": b"p", "audio/pcmu": b"u"}
RATES = {b"p": 24000, b"u": 8000}

#: The listeners' few queries (their audit rows, whether the call is still on) run here, not on the
#: thread the process shares for the ORM: a slow database never delays another consumer's dispatch.
LISTEN_DB_EXECUTOR = ThreadPoolExecutor(max_workers=2, thread_name_prefix="listen-db")


def off_shared_thread(fn: Any) -> Any:
    return database_sync_to_async(fn, thread_sensitive=False, executor=LISTEN_DB_EXECUTOR)


def listen_channel(call_id: int) -> str:
    """The call's pub/sub channel. Pub/sub is not per Redis database: the name carries the SQL
    database's so two deployments (or test runs) sharing a Redis never hear each other."""
    return f"cc:{settings.DATABASES['default']['NAME']}:listen:{call_id}"


# --- the pub/sub hub: Redis, or in-process without it ----------------------------------------------


class LocalSubscription:
    def __init__(self, hub: LocalHub, channel: str) -> None:
        self.hub, self.channel = hub, channel
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=max(1, settings.LISTEN_LISTENER_MAX_FRAMES))
        hub.subscribers.setdefault(channel, set()).add(self.queue)

    async def next(self) -> bytes:
        return await self.queue.get()

    async def close(self) -> None:
        queues = self.hub.subscribers.get(self.channel, set())
        queues.discard(self.queue)
        if not queues:
            self.hub.subscribers.pop(self.channel, None)


class LocalHub:
    """In-process pub/sub for a single process without Redis."""

    def __init__(self) -> None:
        self.subscribers: dict[str, set[asyncio.Queue[bytes]]] = {}

    async def publish(self, channel: str, data: bytes) -> int:
        queues = self.subscribers.get(channel, set())
        for queue in queues:
            if queue.full():
                queue.get_nowait()  # a listener that stopped reading loses its oldest frame
            queue.put_nowait(data)
        return len(queues)

    async def publish_many(self, channel: str, frames: list[bytes]) -> int:
        receivers = 0
        for frame in frames:
            receivers = await self.publish(channel, frame)
        return receivers

    async def subscribe(self, channel: str) -> LocalSubscription:
        return LocalSubscription(self, channel)


class RedisSubscription:
    def __init__(self, client: Any, pubsub: Any) -> None:
        self.client, self.pubsub = client, pubsub

    async def next(self) -> bytes:
        while True:
            message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None and isinstance(message.get("data"), bytes):
                return bytes(message["data"])

    async def close(self) -> None:
        try:
            await self.pubsub.aclose()
            await self.client.aclose()
        except Exception:  # the connection may already be gone; nothing else to release
            logger.debug("listen: closing a subscription failed", exc_info=True)


class RedisHub:
    """Redis pub/sub: one publishing client per event loop; one connection per listener."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self.url = url
        self.client = redis.Redis.from_url(url, socket_timeout=5)

    async def publish(self, channel: str, data: bytes) -> int:
        return int(await self.client.publish(channel, data))

    async def publish_many(self, channel: str, frames: list[bytes]) -> int:
        """Every frame in one round trip (a pipeline, in order); the listeners the last one reached."""
        async with self.client.pipeline(transaction=False) as pipe:
            for frame in frames:
                pipe.publish(channel, frame)
            results = await pipe.execute()
        return int(results[-1]) if results else 0

    async def subscribe(self, channel: str) -> RedisSubscription:
        """Subscribed when this returns: a frame published after it is received."""
        import redis.asyncio as redis

        client = redis.Redis.from_url(self.url)
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(channel)
        except BaseException:
            await client.aclose()
            raise
        return RedisSubscription(client, pubsub)


_HUBS: dict[int, LocalHub | RedisHub] = {}


def hub() -> LocalHub | RedisHub:
    """The process's hub for the running event loop (a Redis connection belongs to its loop)."""
    loop = asyncio.get_running_loop()
    found = _HUBS.get(id(loop))
    if found is None or getattr(found, "_loop", None) is not loop:
        for key, old in list(_HUBS.items()):  # hubs of loops that have ended (tests run one per test)
            if getattr(old, "_loop", loop).is_closed():
                del _HUBS[key]
        found = RedisHub(settings.REDIS_URL) if settings.REDIS_URL else LocalHub()
        found._loop = loop  # type: ignore[union-attr]
        _HUBS[id(loop)] = found
    return found


# --- the call's side --------------------------------------------------------------------------------


class ListenTap:
    """Beside one call's audio path: off until someone listens; then a bounded, drop-oldest queue
    of frames that one pump task publishes. Nothing here is awaited by the audio path."""

    def __init__(self, call_id: int, audio_format: str) -> None:
        self.call_id = call_id
        self.format = FORMATS.get(audio_format, b"p")
        self.active = False
        self.frames: deque[bytes] = deque(maxlen=max(1, settings.LISTEN_TAP_MAX_FRAMES))
        self.dropped = 0
        self.published = 0
        self._wake = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._closed = False
        #: The caller's frames also go here (a live translation's interpreter); never waits.
        self.also_caller: Callable[[bytes], None] | None = None

    def activate(self) -> None:
        """A listener asked (call.listen): start publishing, if the call is still on."""
        if self._closed:
            return
        self.active = True
        if self._pump is None or self._pump.done():
            self._pump = asyncio.ensure_future(self._run())

    def caller(self, audio: bytes) -> None:
        if self.also_caller is not None:
            self.also_caller(audio)
        if self.active:
            self._put(b"c", audio)

    def caller_base64(self, payload: str) -> None:
        if self.also_caller is not None:
            self.also_caller(base64.b64decode(payload))
        if self.active:
            self._put(b"c", base64.b64decode(payload))

    def translated(self, pcm24k: bytes) -> None:
        """The caller's words in the person's language (calls.translation), pcm16 24 kHz: side t."""
        if self.active:
            if len(self.frames) == self.frames.maxlen:
                self.dropped += 1
            self.frames.append(HEADER.pack(b"t", b"p", time.time()) + pcm24k)
            self._wake.set()

    def agent(self, audio: bytes) -> None:
        if self.active:
            self._put(b"a", audio)

    def _put(self, side: bytes, audio: bytes) -> None:
        if len(self.frames) == self.frames.maxlen:
            self.dropped += 1
        self.frames.append(HEADER.pack(side, self.format, time.time()) + audio)
        self._wake.set()

    async def close(self) -> None:
        """The call ended: tell the listeners, stop the pump."""
        if self._closed:
            return
        self._closed = True
        was_active, self.active = self.active, False
        self.frames.clear()
        if self._pump is not None:
            self._pump.cancel()
        if was_active:
            try:
                await asyncio.wait_for(hub().publish(listen_channel(self.call_id),
                                                     HEADER.pack(b"e", self.format, time.time())), 2)
            except Exception:  # Redis away or slow: the listeners see the call end from its record
                logger.info("call %s: could not tell the listeners that the call ended", self.call_id, exc_info=True)

    async def _run(self) -> None:
        channel = listen_channel(self.call_id)
        while self.active:
            await self._wake.wait()
            self._wake.clear()
            while self.frames:
                # What piled up while the last batch was on its way goes in one round trip.
                batch = list(self.frames)
                self.frames.clear()
                try:
                    receivers = await asyncio.wait_for(hub().publish_many(channel, batch), 2)
                except Exception:
                    logger.warning("call %s: could not publish audio to listeners", self.call_id, exc_info=True)
                    self.dropped += len(batch)
                    break
                self.published += len(batch)
                if receivers == 0:  # nobody listens any more: off until the next call.listen
                    self.active = False
                    self.frames.clear()
                    break


# --- the listener's side ----------------------------------------------------------------------------


def may_listen(user: Any) -> bool:
    """Supervisors (active staff). Callers never: they are not staff."""
    from calls.dashboard_views import is_supervisor

    return is_supervisor(user)


def page_frame(frame: bytes) -> bytes | None:
    """A pub/sub frame as the page gets it; None for a frame too short to be one."""
    if len(frame) < HEADER.size:
        return None
    side, fmt, sent = HEADER.unpack_from(frame)
    audio = frame[HEADER.size:]
    if fmt == b"u":
        from realtime.audio import ulaw_decode

        pcm = ulaw_decode(audio).astype("<i2").tobytes()
    else:
        pcm = audio[: len(audio) - len(audio) % 2]
    return PAGE_HEADER.pack(side, RATES.get(fmt, 24000), sent * 1000.0) + pcm


class ListenConsumer(SlotHolder):
    """`/ws/dashboard/calls/<id>/listen/?mode=mixed|caller|agent`: one supervisor listening."""

    call_id: int | None = None

    async def connect(self) -> None:
        self._tasks: list[asyncio.Task[Any]] = []
        self._closing = False
        self.action_id: int | None = None
        self.subscription: LocalSubscription | RedisSubscription | None = None
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(CLOSE_UNAUTHENTICATED, "not logged in")
            return
        if not await off_shared_thread(self.may_connect)(user):
            await self.refuse(CLOSE_FORBIDDEN, f"{user.get_username()} may not {self.what} calls")
            return
        if not self.hold(USER_SOCKETS, user.pk, settings.USER_MAX_SOCKETS):
            await self.refuse(CLOSE_TOO_MANY, f"{user.get_username()} has {settings.USER_MAX_SOCKETS} sockets open")
            return
        mode = self.query_mode()
        if mode is None:
            await self.refuse(CLOSE_BAD_MESSAGE, f"mode must be one of {', '.join(MODES)}")
            return
        self.mode = mode
        call_id = int(self.scope["url_route"]["kwargs"]["call_id"])
        try:
            subscription = await asyncio.wait_for(hub().subscribe(listen_channel(call_id)), 5)
        except Exception:
            logger.warning("call %s: could not subscribe a listener", call_id, exc_info=True)
            await self.refuse(CLOSE_TOO_SLOW, "could not reach the call's audio")
            return
        self.subscription = subscription
        try:
            record = await off_shared_thread(self.open_action)(call_id, user, mode)
        except Call.DoesNotExist:
            await self.refuse(CLOSE_NOT_FOUND, f"no call {call_id}")
            return
        except actions.SupervisorActionRefused as refused:
            await self.refuse(CLOSE_NOT_FOUND, str(refused))
            return
        self.call_id, self.action_id = call_id, record.pk
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=max(1, settings.LISTEN_LISTENER_MAX_FRAMES))
        await self.accept()
        await self.send_json({"type": "listening", "call_id": call_id, "mode": mode})
        self._tasks.append(asyncio.ensure_future(self._read()))
        self._tasks.append(asyncio.ensure_future(self._send()))
        self._tasks.append(asyncio.ensure_future(self._keepalive()))
        await self.connected()

    # --- what a subclass changes (calls.takeover: a person taking the call over) -------------------

    what = "listen to"

    def may_connect(self, user: Any) -> bool:
        return may_listen(user)

    def open_action(self, call_id: int, user: Any, mode: str) -> Any:
        """The audit row (sync, on the listeners' thread); raises SupervisorActionRefused."""
        return actions.do_listen(call_id, user=user, mode=mode)

    def close_action(self, action_id: int, reason: str) -> None:
        actions.do_stop_listening(action_id, reason)

    def wants(self, side: bytes) -> bool:
        """Whether this listener gets frames of ``side`` (c caller, a agent, t translated caller)."""
        return self.mode == "mixed" or side == (b"c" if self.mode == "caller" else b"a")

    async def connected(self) -> None:
        """Accepted and listening."""

    async def keep(self) -> None:
        """Every keepalive round while connected."""

    def query_mode(self) -> str | None:
        from urllib.parse import parse_qs

        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        mode = (query.get("mode") or ["mixed"])[0]
        return mode if mode in MODES else None

    async def refuse(self, code: int, reason: str) -> None:
        logger.warning("listen socket refused (%s): %s", code, reason)
        self._closing = True
        await self._wind_down(reason)
        await self.accept()
        await self.send_json({"type": "refused", "code": code, "reason": reason})
        await self.close(code=code)

    async def send_json(self, data: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(data))

    # --- tasks -------------------------------------------------------------------------------------

    async def _read(self) -> None:
        """Pub/sub -> the bounded queue; a full queue means the page cannot keep up."""
        assert self.subscription is not None
        while True:
            frame = await self.subscription.next()
            if frame[:1] == b"e":
                await self.stop(1000, "the call ended", ended=True)
                return
            if self.wants(frame[:1]):
                try:
                    self.queue.put_nowait(frame)
                except asyncio.QueueFull:
                    await self.stop(CLOSE_TOO_SLOW, "this listener fell behind the call; listen again")
                    return

    async def _send(self) -> None:
        while True:
            frame = await self.queue.get()
            data = page_frame(frame)
            if data is None:
                continue
            lag = time.time() - HEADER.unpack_from(frame)[2]
            if lag > settings.LISTEN_MAX_LAG_SECONDS:
                await self.stop(CLOSE_TOO_SLOW, f"this listener is {lag:.1f} s behind the call; listen again")
                return
            await self.send(bytes_data=data)

    async def _keepalive(self) -> None:
        """Ask the call to publish, now and every few seconds; stop when the call has ended."""
        assert self.call_id is not None
        while True:
            status = await off_shared_thread(
                lambda: Call.objects.filter(pk=self.call_id).values_list("status", flat=True).first())()
            if status in (None, Call.Status.ENDED):
                await self.stop(1000, "the call ended", ended=True)
                return
            await self.channel_layer.group_send(call_group(self.call_id), {"type": CALL_LISTEN})
            await self.keep()
            await asyncio.sleep(settings.LISTEN_KEEPALIVE_SECONDS)

    # --- the page's frames -------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self._closing:
            return
        if bytes_data is not None or len(text_data or "") > 1024:
            await self.stop(CLOSE_BAD_MESSAGE, "a listener sends only small JSON messages (mode, stop)")
            return
        try:
            message = load_json(text_data or "")
        except ValueError:
            message = None
        if not isinstance(message, dict):
            await self.stop(CLOSE_BAD_MESSAGE, "expected a JSON object")
            return
        if message.get("type") == "stop":
            await self.stop(1000, "stopped listening")
        elif message.get("type") == "mode" and message.get("mode") in MODES:
            self.mode = str(message["mode"])
            await self.send_json({"type": "listening", "call_id": self.call_id, "mode": self.mode})
        else:
            await self.stop(CLOSE_BAD_MESSAGE, f"messages are {{type: mode, mode: {'|'.join(MODES)}}} or {{type: stop}}")

    async def stop(self, code: int, reason: str, *, ended: bool = False) -> None:
        if self._closing:
            return
        self._closing = True
        await self.send_json({"type": "ended" if ended else "stopped", "reason": reason})
        await self.close(code=code)
        await self._wind_down(reason)

    async def _wind_down(self, reason: str) -> None:
        if not hasattr(self, "_tasks"):  # the consumer never connected
            return
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        if self.subscription is not None:
            subscription, self.subscription = self.subscription, None
            try:  # bounded: a Redis connection closed under a cancelled read must not hold the rest
                await asyncio.wait_for(subscription.close(), 2)
            except TimeoutError:
                logger.warning("call %s: closing a listener's subscription timed out", self.call_id)
        if self.action_id is not None:
            action_id, self.action_id = self.action_id, None
            await off_shared_thread(self.close_action)(action_id, reason)

    async def disconnect(self, code: int) -> None:
        self._closing = True
        await self._wind_down("the listener left")

    async def on_application_end(self) -> None:
        await self._wind_down("the listener left")
