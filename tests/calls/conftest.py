"""Fixtures of the live-calls tests: demo scenarios, an operator, group listeners, a Celery worker."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from calls.models import call_events_group, call_group


@pytest.fixture(autouse=True)
def fresh_channel_layer() -> Any:
    """A channel layer per test: each async test has its own event loop, and channels_redis's
    receive locks belong to the loop that made them (one loop per process in production)."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def demo(db: Any) -> list[tuple[str, str]]:
    from demo.loader import load_demo

    return load_demo()


@pytest.fixture
def operator(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("operator", password="call-me-maybe-123")


class GroupListener:
    """A channel subscribed to a call's groups, its own (control messages) and its events' (or to
    another group: the dashboard's), to see exactly what actions publish."""

    def __init__(self, call_id: int | None = None, *, group: str | None = None) -> None:
        if (call_id is None) == (group is None):
            raise TypeError("GroupListener takes a call id or a group name")
        self.layer = get_channel_layer()
        self.groups = [group] if group is not None else [call_group(call_id), call_events_group(call_id)]  # type: ignore[arg-type]
        self.channel = async_to_sync(self.layer.new_channel)()
        for name in self.groups:
            async_to_sync(self.layer.group_add)(name, self.channel)

    def drain(self, wait_s: float = 0.3, until: str | None = None) -> list[dict[str, Any]]:
        """Messages received until `wait_s` passes (or, with `until`, a message of that type arrives)."""
        import redis.exceptions

        async def collect() -> list[dict[str, Any]]:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + wait_s
            messages: list[dict[str, Any]] = []
            while (remaining := deadline - loop.time()) > 0:
                try:
                    message = await asyncio.wait_for(self.layer.receive(self.channel), min(remaining, 1.0))
                except (TimeoutError, redis.exceptions.TimeoutError):
                    continue
                messages.append(message)
                if until is not None and message.get("type") == until:
                    break
            return messages

        return async_to_sync(collect)()

    def close(self) -> None:
        for name in self.groups:
            async_to_sync(self.layer.group_discard)(name, self.channel)


@pytest.fixture
def listen() -> Any:
    listeners: list[GroupListener] = []

    def make(call_id: int) -> GroupListener:
        listener = GroupListener(call_id)
        listeners.append(listener)
        return listener

    yield make
    for listener in listeners:
        listener.close()


# --- a protocol server in a thread (for sync tests and the Celery worker) --------------------------


class ThreadedRealtimeServer:
    """The local protocol server on its own event loop in a thread, reachable from any process."""

    def __init__(self) -> None:
        import threading

        from realtime.server import RealtimeServer

        self.loop = asyncio.new_event_loop()
        self.server = RealtimeServer(api_key="sk-calls-tests", validate_outgoing=True)
        self._thread = threading.Thread(target=self.loop.run_forever, name="realtime-server", daemon=True)
        self._thread.start()
        self.call(self.server.start("127.0.0.1", 0))

    def call(self, coroutine: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def script_text(self, *responses: Any) -> None:
        self.loop.call_soon_threadsafe(self.server.script_text, *responses)

    def stop(self) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@pytest.fixture(scope="session")
def threaded_realtime_server() -> Any:
    server = ThreadedRealtimeServer()
    yield server
    server.stop()


# --- a real Celery worker on Redis, using the test database ---------------------------------------


WORKER = {"running": False}


def wait_for_worker_idle(timeout: float = 20.0) -> bool:
    """Wait until the session's Celery worker has no task queued or running.

    Tasks that a test's calls queued (post-call summaries, escalations) must not write to the
    database while the test's teardown truncates it: the two would deadlock, or the rows would leak
    into the next test. With late acks a task stays in the broker's `unacked` hash until it is done.
    """
    import time

    import redis
    from django.conf import settings

    if not WORKER["running"] or not settings.REDIS_URL:  # a test running without Redis queues nothing
        return True
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        deadline = time.monotonic() + timeout
        quiet = 0
        while time.monotonic() < deadline:
            busy = sum(client.llen(queue) for queue in settings.TASK_QUEUES_CONSUMED) + client.hlen("unacked")
            quiet = quiet + 1 if busy == 0 else 0
            if quiet >= 3:
                return True
            time.sleep(0.05)
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def celery_worker(django_db_setup: Any, django_db_blocker: Any, threaded_realtime_server: Any,
                  tmp_path_factory: Any) -> Any:
    """`celery worker` in a subprocess, on this test run's Redis db and test database.

    Tests using it must be transactional (`django_db(transaction=True)`) so the worker sees their rows.
    """
    import os
    import subprocess
    import sys
    import time

    from django.conf import settings
    from django.db import connection

    if not settings.REDIS_URL:
        pytest.skip("the Celery worker tests need REDIS_URL")
    with django_db_blocker.unblock():
        db = connection.settings_dict
    if "postgresql" not in db["ENGINE"]:
        pytest.skip("the Celery worker tests need PostgreSQL (DATABASE_URL)")
    database_url = f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"

    import redis

    purge = redis.Redis.from_url(settings.REDIS_URL)  # tasks queued by earlier runs refer to rows now gone
    purge.delete(*settings.TASK_QUEUES_CONSUMED, "unacked", "unacked_index")
    purge.close()
    log_path = tmp_path_factory.mktemp("celery") / "worker.log"
    server = threaded_realtime_server.server
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "OPENAI_BASE_URL": server.base_url,
        "OPENAI_API_KEY": server.api_key,
        "LOG_LEVEL": "INFO",
    }
    env.pop("TEST_DATABASE_NAME", None)
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "contactcenter", "worker", "-P", "solo", "--without-gossip",
             "--without-mingle", "--without-heartbeat", "-n", f"calls-tests-{os.getpid()}@%h", "-l", "INFO",
             "-Q", ",".join(settings.TASK_QUEUES_CONSUMED)],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(settings.BASE_DIR),
        )
    try:
        deadline = time.monotonic() + 30
        while b" ready." not in log_path.read_bytes():
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Celery worker did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        WORKER["running"] = True
        yield worker
    finally:
        WORKER["running"] = False
        worker.terminate()
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(5)


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy (the worker runs in another process)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


# --- live calls over real WebSockets against the in-process protocol server ------------------------


@pytest.fixture
def live_demo(transactional_db: Any) -> None:
    from demo.loader import load_demo

    load_demo()


@pytest.fixture
async def upstream(settings: Any) -> Any:
    """The protocol server on an ephemeral port of this test's event loop, configured as upstream."""
    from realtime.server.testing import running_server

    async with running_server(max_session_seconds=60.0) as server:
        settings.OPENAI_BASE_URL = server.base_url
        settings.OPENAI_API_KEY = server.api_key
        yield server
        assert not server.validation_failures, server.validation_failures


class CallClient:
    """A WebSocket call as the page (or Twilio) sees it: every frame it received, kept in order."""

    def __init__(self, communicator: Any) -> None:
        self.communicator = communicator
        self.frames: list[dict[str, Any] | bytes] = []
        self.close_code: int | None = None

    async def pump(self, timeout: float) -> bool:
        """Receive one frame; False on close or timeout."""
        import json as _json

        # Not receive_output(timeout): on a timeout it cancels the application (the call).
        if self.communicator.future.done():
            self.communicator.future.result()
        try:
            message = await asyncio.wait_for(self.communicator.output_queue.get(), timeout)
        except TimeoutError:
            return False
        if message["type"] == "websocket.close":
            self.close_code = message.get("code", 1000)
            return False
        if message.get("text") is not None:
            self.frames.append(_json.loads(message["text"]))
        elif message.get("bytes") is not None:
            self.frames.append(message["bytes"])
        return True

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> Any:
        """The first frame (already received or next) for which predicate(frame) is true."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        checked = 0
        while True:
            for frame in self.frames[checked:]:
                if predicate(frame):
                    return frame
            checked = len(self.frames)
            remaining = deadline - loop.time()
            if remaining <= 0 or self.close_code is not None:
                raise AssertionError(f"no matching frame; last frames: {self.texts()[-8:]}; close={self.close_code}")
            await self.pump(min(remaining, 0.5))

    async def wait_event(self, event_type: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        frame = await self.wait_for(
            lambda f: isinstance(f, dict) and f.get("type") == "event" and f["event"].get("type") == event_type
            and all(f["event"].get(k) == v for k, v in fields.items()), timeout)
        return frame["event"]

    async def wait_closed(self, timeout: float = 10.0) -> int | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.close_code is None and loop.time() < deadline:
            await self.pump(0.2)
        if self.close_code is not None and not self.communicator.future.done():
            # What a server does after the close handshake: tell the consumer, let it finish.
            await self.communicator.send_input({"type": "websocket.disconnect", "code": self.close_code})
            try:
                await asyncio.wait_for(asyncio.shield(self.communicator.future), 3)
            except TimeoutError:
                # The consumer has closed; only its channel-layer receive may still be winding down.
                self.communicator.future.cancel()
        return self.close_code

    async def drain(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline and self.close_code is None:
            await self.pump(min(0.1, max(deadline - loop.time(), 0.01)))

    def texts(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if isinstance(f, dict)]

    def events(self, event_type: str) -> list[dict[str, Any]]:
        return [f["event"] for f in self.texts() if f.get("type") == "event" and f["event"].get("type") == event_type]


def transfer_arguments(spec: Any, from_agent: str, to_agent: str) -> dict[str, Any]:
    """Arguments satisfying the generated transfer tool's contract."""
    tool = spec.agent(from_agent).tool(f"transfer_to_{to_agent}")
    properties = tool.parameters.get("properties", {})
    values = {"reason": "The caller wants to return an order.",
              "conversation_summary": "Ada Lovelace, verified, wants to return order ORD-10231."}
    return {name: values.get(name, "ORD-10231") for name in tool.parameters.get("required", properties)}


async def browser_call(operator: Any, scenario: str = "retail", codec: str = "pcm16") -> CallClient:
    """Log in, ask for a token like the page does, open the call socket."""
    from channels.testing import WebsocketCommunicator
    from django.test import AsyncClient

    from contactcenter.asgi import application

    http = AsyncClient()
    await http.aforce_login(operator)
    response = await http.post("/calls/token/", {"scenario": scenario, "codec": codec})
    assert response.status_code == 200, response.content
    communicator = WebsocketCommunicator(application, response.json()["ws_url"], headers=[
        (b"origin", b"http://testserver"), (b"host", b"testserver"),
        (b"cookie", f"sessionid={http.cookies['sessionid'].value}".encode()),
    ])
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    return CallClient(communicator)


def speech_frames(ms: int = 400, silence_ms: int = 600, fmt: str = "audio/pcm") -> list[bytes]:
    """Caller speech (a loud tone the server's VAD hears) then silence, in 20 ms frames."""
    from realtime.server.testing import chunks, speech_then_silence

    return chunks(speech_then_silence(ms, silence_ms, fmt=fmt), 960 if fmt == "audio/pcm" else 160)
