"""Benchmark of the live-call hot paths: caller audio through the consumer, and event fan-out.

``python -m bench.calls`` reports

1. Consumer audio path. N concurrent browser calls (``--levels 1,4,8``) go through the real ASGI
   application (``contactcenter.asgi.application``, driven in-process by channels'
   ``WebsocketCommunicator``: the token flow of the call page, session cookie, Origin check) with the
   in-process scripted protocol server (``realtime.server.testing.running_server``) as the upstream,
   reached by the engine over a real localhost WebSocket. Each call streams 20 ms frames of 24 kHz
   PCM16 (960 bytes) in real time for ``--seconds``. Every frame carries its call and frame number in
   its first samples (quiet enough that the server's VAD hears silence). The latency is the time from
   ``BrowserCallConsumer.receive`` getting the frame to the upstream session handling the matching
   ``input_audio_buffer.append``: p50/p99 per level, and frames lost (should be 0). Everything runs on
   one event loop in one process (consumer, engine, upstream server), so a level's latency includes
   the upstream's share of the CPU; daphne's own socket handling is not in the path.
2. Event fan-out. Actions (``do_record_transcript``, ``do_record_latency``) run the way the bridge
   runs them (``database_sync_to_async`` from the event loop); the time from the action's commit (its
   on-commit publish starting) to a listener on the call's group ``call.<id>`` (and, for the latency
   events, on the ``dashboard`` group) receiving the event over the channel layer (Redis when
   REDIS_URL is set, in-memory otherwise): p50/p99 paced one at a time, then a burst of back-to-back
   writes for the actions' write throughput (events/s) and the delivery latency under that burst,
   then the same burst with each action waiting for its channel-layer send, for comparison.

Database: DATABASE_URL when set (a PostgreSQL database is created and migrated if missing; nothing
is dropped), otherwise a temporary SQLite file removed at the end. The post-call summary task is
not queued (no Celery worker is part of this measurement).

The last line is ``RESULT audio_n1_p50_ms=... ... fanout_write_eps=...``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import struct
import sys
import tempfile
import time
from typing import Any

FRAME_BYTES = 960  # 20 ms of 24 kHz PCM16
FRAME_S = 0.020
MAGIC = 7  # first sample of every benchmark frame


def _pct(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- set-up ---------------------------------------------------------------------------------------


def _prepare_database() -> tuple[str, str | None]:
    """Point DATABASE_URL at the benchmark database; (description, temp dir to remove or None)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        tmp = tempfile.mkdtemp(prefix="bench-calls-")
        os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
        return "sqlite (temporary file)", tmp
    import environ

    config = environ.Env.db_url_config(url)
    if "postgresql" in config["ENGINE"]:
        import psycopg

        name = config["NAME"]
        params = {"host": config.get("HOST") or "127.0.0.1", "port": config.get("PORT") or 5432,
                  "user": config.get("USER") or "postgres", "dbname": "postgres"}
        if config.get("PASSWORD"):
            params["password"] = config["PASSWORD"]
        with psycopg.connect(**params, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql {name}" + ("" if exists else " (created)"), None
    return config["ENGINE"].rsplit(".", 1)[-1] + " " + str(config["NAME"]), None


def _setup_django() -> Any:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contactcenter.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from calls import publish
    from demo.loader import load_demo

    call_command("migrate", verbosity=0, interactive=False)
    load_demo()
    user_model = get_user_model()
    operator, created = user_model.objects.get_or_create(username="bench-operator")
    if created:
        operator.set_unusable_password()
        operator.save()
    # No Celery worker takes part: the post-call summary is not queued (with Redis it would sit
    # in the broker; in-memory it would run inline at hang-up).
    publish.enqueue = lambda task, *args: None
    return operator


# --- 1. consumer audio path -----------------------------------------------------------------------


def _frame(call_index: int, frame_index: int) -> bytes:
    return struct.pack("<hhh", MAGIC, call_index, frame_index) + b"\x00" * (FRAME_BYTES - 6)


def _marker(chunk: bytes) -> tuple[int, int] | None:
    if len(chunk) < 6:
        return None
    magic, call_index, frame_index = struct.unpack_from("<hhh", chunk)
    return (call_index, frame_index) if magic == MAGIC else None


class _Probe:
    """Timestamps at the consumer (frame in) and at the upstream session (append handled)."""

    def __init__(self) -> None:
        self.received: dict[tuple[int, int], float] = {}
        self.arrived: dict[tuple[int, int], float] = {}
        self.arrived_count = 0
        self.calls_so_far = 0

    def install(self) -> None:
        import base64

        from calls.consumers import BrowserCallConsumer
        from realtime.server.session import RealtimeSession

        probe = self
        consumer_receive = BrowserCallConsumer.receive
        server_append = RealtimeSession._on_input_audio_buffer_append

        async def receive(self: Any, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
            if bytes_data is not None and (key := _marker(bytes_data)) is not None:
                probe.received[key] = time.perf_counter()
            await consumer_receive(self, text_data=text_data, bytes_data=bytes_data)

        async def append(self: Any, data: dict[str, Any], event_id: str | None) -> None:
            now = time.perf_counter()
            try:
                chunk = base64.b64decode(data.get("audio") or "")
            except ValueError:
                chunk = b""
            # The engine sends each caller frame as its own append; a buffered batch (session not
            # yet up) would arrive as several appends too, each with its own marker.
            if (key := _marker(chunk)) is not None:
                probe.arrived.setdefault(key, now)
                probe.arrived_count += 1
            await server_append(self, data, event_id)

        BrowserCallConsumer.receive = receive  # type: ignore[method-assign]
        RealtimeSession._on_input_audio_buffer_append = append  # type: ignore[method-assign]


class _Call:
    def __init__(self, communicator: Any) -> None:
        self.communicator = communicator
        self.texts: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self.changed = asyncio.Event()
        self._pump = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            message = await self.communicator.output_queue.get()
            if message["type"] == "websocket.close":
                self.close_code = message.get("code", 1000)
                self.changed.set()
                return
            if message.get("text") is not None:
                self.texts.append(json.loads(message["text"]))
                self.changed.set()

    async def wait_for(self, predicate: Any, timeout: float) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        checked = 0
        while True:
            for frame in self.texts[checked:]:
                if predicate(frame):
                    return frame
            checked = len(self.texts)
            if self.close_code is not None or loop.time() > deadline:
                raise RuntimeError(f"no matching frame (close={self.close_code}); last: {self.texts[-5:]}")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), max(0.01, deadline - loop.time()))
            except TimeoutError:
                pass

    async def hang_up(self) -> None:
        await self.communicator.send_input({"type": "websocket.receive", "text": json.dumps({"type": "hangup"})})
        try:
            await asyncio.wait_for(asyncio.shield(self._pump), 10)
        except TimeoutError:
            self._pump.cancel()
        await self.communicator.send_input({"type": "websocket.disconnect", "code": self.close_code or 1000})
        try:
            await asyncio.wait_for(asyncio.shield(self.communicator.future), 5)
        except (TimeoutError, asyncio.CancelledError):
            self.communicator.future.cancel()


async def _open_call(operator: Any) -> _Call:
    """Log in, ask for a token like the page does, open the call socket (tests/calls/conftest.py)."""
    from channels.testing import WebsocketCommunicator
    from django.test import AsyncClient

    from contactcenter.asgi import application

    http = AsyncClient()
    await http.aforce_login(operator)
    response = await http.post("/calls/token/", {"scenario": "retail", "codec": "pcm16"})
    if response.status_code != 200:
        raise RuntimeError(f"token: {response.status_code} {response.content[:200]!r}")
    communicator = WebsocketCommunicator(application, response.json()["ws_url"], headers=[
        (b"origin", b"http://testserver"), (b"host", b"testserver"),
        (b"cookie", f"sessionid={http.cookies['sessionid'].value}".encode()),
    ])
    connected, _ = await communicator.connect(timeout=10)
    if not connected:
        raise RuntimeError("the call socket was refused")
    return _Call(communicator)


def _session_ready(frame: dict[str, Any]) -> bool:
    event = frame.get("event") or {}
    return (frame.get("type") == "event" and event.get("type") == "protocol" and event.get("direction") == "server"
            and (event.get("payload") or {}).get("type") == "session.updated")


async def _audio_level(n: int, seconds: float, operator: Any, probe: _Probe) -> dict[str, float]:
    calls = [await _open_call(operator) for _ in range(n)]
    for call in calls:  # stream only once the engine's session is configured (else frames are buffered)
        await call.wait_for(_session_ready, 15)
    frames = round(seconds / FRAME_S)
    base = len(probe.received)

    async def stream(index: int, call: _Call) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.005 * index  # calls not in lockstep, as real callers are not
        for k in range(frames):
            delay = start + k * FRAME_S - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await call.communicator.send_input({"type": "websocket.receive", "bytes": _frame(index, k)})

    loop = asyncio.get_running_loop()
    t0 = loop.time()
    offset = probe.calls_so_far  # call numbers stay unique across levels
    await asyncio.gather(*(stream(offset + i, call) for i, call in enumerate(calls)))
    send_s = loop.time() - t0
    keys = [(offset + i, k) for i in range(n) for k in range(frames)]
    deadline = loop.time() + 3.0
    while loop.time() < deadline and not all(key in probe.arrived for key in keys):
        await asyncio.sleep(0.05)
    latencies = [(probe.arrived[key] - probe.received[key]) * 1000 for key in keys
                 if key in probe.arrived and key in probe.received]
    lost = sum(1 for key in keys if key not in probe.arrived)
    late_starts = len(probe.received) - base - len(keys)
    await asyncio.gather(*(call.hang_up() for call in calls))
    probe.calls_so_far += n
    return {"p50": _pct(latencies, 0.5), "p99": _pct(latencies, 0.99), "max": max(latencies, default=float("nan")),
            "lost": lost, "frames": len(keys), "send_s": send_s, "extra": late_starts}



# --- 2. event fan-out -----------------------------------------------------------------------------


async def _fanout(operator: Any, paced: int, burst: int) -> dict[str, float]:
    from channels.db import database_sync_to_async
    from channels.layers import get_channel_layer

    from calls import actions, publish
    from calls.events import CALL_EVENT, DASHBOARD_CALL, DASHBOARD_GROUP
    from calls.models import Call, call_events_group
    from calls.scenarios import compile_for_call

    scenario, spec = await database_sync_to_async(compile_for_call)("retail")
    call = await database_sync_to_async(actions.do_start_call)(
        channel=Call.Channel.BROWSER, spec=spec.to_dict(), scenario=scenario, user=operator,
        caller_id="bench-fanout", codec="pcm16", consumer_channel="",
    )
    layer = get_channel_layer()
    call_channel = await layer.new_channel()
    dash_channel = await layer.new_channel()
    await layer.group_add(call_events_group(call.pk), call_channel)
    await layer.group_add(DASHBOARD_GROUP, dash_channel)

    committed: dict[tuple[str, int], float] = {}
    received: dict[tuple[str, int], float] = {}
    arrived = asyncio.Event()
    send_to_group = publish.send_to_group

    def timed_send(group: str, message: dict[str, Any]) -> None:
        # on_commit hooks run right after COMMIT: this is the commit time of the action's write.
        if message.get("call_id") == call.pk:
            committed[(group, message["seq"])] = time.perf_counter()
        send_to_group(group, message)

    publish.send_to_group = timed_send

    async def listen(channel: str, group: str, kind: str) -> None:
        while True:
            message = await layer.receive(channel)
            if message.get("type") == kind and message.get("call_id") == call.pk:
                received[(group, message["seq"])] = time.perf_counter()
                arrived.set()

    listeners = [asyncio.create_task(listen(call_channel, call_events_group(call.pk), CALL_EVENT)),
                 asyncio.create_task(listen(dash_channel, DASHBOARD_GROUP, DASHBOARD_CALL))]
    group = call_events_group(call.pk)

    async def wait_received(key: tuple[str, int], timeout: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while key not in received and loop.time() < deadline:
            arrived.clear()
            try:
                await asyncio.wait_for(arrived.wait(), max(0.01, deadline - loop.time()))
            except TimeoutError:
                pass

    def transcript(i: int) -> Any:
        return actions.do_record_transcript(call.pk, item_id=f"bench_{i}", role="user" if i % 2 else "assistant",
                                            text=f"Benchmark turn number {i}, a sentence of ordinary length.",
                                            agent="authentication")

    try:
        # Paced: one action at a time, the next once the event has arrived (unloaded latency).
        call_ms: list[float] = []
        dash_ms: list[float] = []
        action_ms: list[float] = []
        for i in range(paced):
            started = time.perf_counter()
            if i % 2:
                await database_sync_to_async(actions.do_record_latency)(call.pk, voice_to_voice_ms=600 + i)
            else:
                await database_sync_to_async(transcript)(i)
            seq = await database_sync_to_async(
                lambda: Call.objects.values_list("last_seq", flat=True).get(pk=call.pk))()
            await wait_received((group, seq))
            if (group, seq) in received:
                call_ms.append((received[(group, seq)] - committed[(group, seq)]) * 1000)
                action_ms.append((received[(group, seq)] - started) * 1000)
            if i % 2:
                await wait_received((DASHBOARD_GROUP, seq))
                if (DASHBOARD_GROUP, seq) in received:
                    dash_ms.append((received[(DASHBOARD_GROUP, seq)] - committed[(DASHBOARD_GROUP, seq)]) * 1000)
        paced_lost = paced - len(call_ms)

        # Burst: back-to-back writes from the bridge's kind of thread, the listener draining meanwhile.
        first_seq = await database_sync_to_async(
            lambda: Call.objects.values_list("last_seq", flat=True).get(pk=call.pk))() + 1

        def burst_writes() -> float:
            started = time.perf_counter()
            for i in range(burst):
                transcript(paced + i)
            return time.perf_counter() - started

        write_s = await database_sync_to_async(burst_writes)()
        last_seq = first_seq + burst - 1
        await wait_received((group, last_seq), 10)
        burst_ms = [(received[(group, s)] - committed[(group, s)]) * 1000
                    for s in range(first_seq, last_seq + 1) if (group, s) in received]
        burst_lost = burst - len(burst_ms)

        # The same burst with each action waiting for its channel-layer send (how actions published
        # before the server-loop publisher; still how Celery tasks publish), for comparison.
        server_loop = publish._server_loop
        publish._server_loop = lambda: None
        try:
            first_seq = last_seq + 1
            waiting_s = await database_sync_to_async(burst_writes)()
        finally:
            publish._server_loop = server_loop
        last_seq = first_seq + burst - 1
        await wait_received((group, last_seq), 10)
        burst_lost += burst - sum(1 for s in range(first_seq, last_seq + 1) if (group, s) in received)
    finally:
        publish.send_to_group = send_to_group
        for task in listeners:
            task.cancel()
        await layer.group_discard(group, call_channel)
        await layer.group_discard(DASHBOARD_GROUP, dash_channel)
        await database_sync_to_async(actions.do_end_call)(call.pk, "bench_done")
    return {
        "call_p50": _pct(call_ms, 0.5), "call_p99": _pct(call_ms, 0.99),
        "dash_p50": _pct(dash_ms, 0.5), "dash_p99": _pct(dash_ms, 0.99),
        "action_p50": _pct(action_ms, 0.5), "action_p99": _pct(action_ms, 0.99),
        "burst_p50": _pct(burst_ms, 0.5), "burst_p99": _pct(burst_ms, 0.99),
        "write_eps": burst / write_s, "waiting_write_eps": burst / waiting_s, "lost": paced_lost + burst_lost,
        "paced": len(call_ms), "dash": len(dash_ms), "burst": len(burst_ms),
    }


# --- main -----------------------------------------------------------------------------------------


async def _main(args: argparse.Namespace, operator: Any) -> list[tuple[str, str]]:
    from django.conf import settings

    from realtime.server.testing import running_server

    result: list[tuple[str, str]] = []
    probe = _Probe()
    probe.install()
    async with running_server(max_session_seconds=120.0, validate_outgoing=False) as server:
        settings.OPENAI_BASE_URL = server.base_url
        settings.OPENAI_API_KEY = server.api_key
        print(f"upstream: in-process protocol server at {server.base_url}")
        print(f"consumer audio path: {args.seconds:.1f} s of 20 ms PCM16 24 kHz frames per call, in real time")
        for n in args.levels:
            level = await _audio_level(n, args.seconds, operator, probe)
            print(f"  {n:2d} calls: receive->upstream append p50 {level['p50']:.2f} ms  p99 {level['p99']:.2f} ms"
                  f"  max {level['max']:.2f} ms  lost {level['lost']}/{level['frames']}"
                  f"  (sent in {level['send_s']:.2f} s for {args.seconds:.2f} s of audio)")
            result += [(f"audio_n{n}_p50_ms", f"{level['p50']:.2f}"), (f"audio_n{n}_p99_ms", f"{level['p99']:.2f}"),
                       (f"audio_n{n}_lost", str(level["lost"]))]
    fan = await _fanout(operator, args.events, args.burst)
    print(f"event fan-out ({fan['paced']} paced events, {fan['dash']} of them to the dashboard too; burst of {fan['burst']}):")
    print(f"  commit -> call group listener   p50 {fan['call_p50']:.2f} ms  p99 {fan['call_p99']:.2f} ms")
    print(f"  commit -> dashboard listener    p50 {fan['dash_p50']:.2f} ms  p99 {fan['dash_p99']:.2f} ms")
    print(f"  action called -> listener       p50 {fan['action_p50']:.2f} ms  p99 {fan['action_p99']:.2f} ms")
    print(f"  burst: commit -> listener       p50 {fan['burst_p50']:.2f} ms  p99 {fan['burst_p99']:.2f} ms")
    print(f"  action write throughput (do_record_transcript, one writer): {fan['write_eps']:.0f} events/s"
          f" (each action waiting for its send instead: {fan['waiting_write_eps']:.0f} events/s);"
          f" events lost {fan['lost']}")
    result += [("fanout_p50_ms", f"{fan['call_p50']:.2f}"), ("fanout_p99_ms", f"{fan['call_p99']:.2f}"),
               ("fanout_dashboard_p50_ms", f"{fan['dash_p50']:.2f}"),
               ("fanout_dashboard_p99_ms", f"{fan['dash_p99']:.2f}"),
               ("fanout_burst_p99_ms", f"{fan['burst_p99']:.2f}"),
               ("fanout_write_eps", f"{fan['write_eps']:.0f}"),
               ("fanout_write_eps_waiting_send", f"{fan['waiting_write_eps']:.0f}"), ("fanout_lost", str(fan["lost"]))]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.calls", description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1,4,8", help="concurrent browser calls per level (default 1,4,8)")
    parser.add_argument("--seconds", type=float, default=4.0, help="audio streamed per call per level (default 4)")
    parser.add_argument("--events", type=int, default=300, help="paced events for the fan-out latency (default 300)")
    parser.add_argument("--burst", type=int, default=300, help="back-to-back events for throughput (default 300)")
    args = parser.parse_args(argv)
    args.levels = [int(v) for v in args.levels.split(",") if v.strip()]

    import logging

    logging.getLogger("websockets").setLevel(logging.WARNING)  # one "connection open" per call otherwise
    database, tmp = _prepare_database()
    try:
        started = time.perf_counter()
        operator = _setup_django()
        from channels.layers import channel_layers
        from django.conf import settings

        channel_layers.backends.clear()  # the layer must belong to the benchmark's event loop
        layer = "redis " + settings.REDIS_URL if settings.REDIS_URL else "in-memory"
        print(f"database: {database}; channel layer: {layer}; python {sys.version.split()[0]}; "
              f"{os.cpu_count()} cores")
        result = asyncio.run(_main(args, operator))
        print(f"total {time.perf_counter() - started:.1f} s")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print("RESULT " + " ".join(f"{k}={v}" for k, v in result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
