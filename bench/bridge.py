"""Phone calls at scale through the whole platform, against a minimal forwarder as the baseline.

``python -m bench.bridge`` starts the platform as ``make run`` does (``--workers`` workers on one
listening socket opened here, ``contactcenter.worker --fd``; ``--server uvicorn,daphne`` starts one
such set per server, sharing one Celery worker, and runs each level on each in turn; a Celery
worker; Redis from REDIS_URL; SQLite in a temporary directory unless ``--database`` names a PostgreSQL URL), a local
upstream that speaks the Realtime protocol and timestamps every frame both ways (its own process),
and a minimal forwarder (its own process: parse Twilio's JSON, wrap the payload as
``input_audio_buffer.append``, send it upstream; agent audio back as ``media`` + ``mark``; no
platform). This process plays Twilio: a signed ``POST /twilio/voice``, then ``/twilio/media`` at
real-time pace (a 160-byte mu-law frame every 20 ms, its first bytes the send time).

For each mode and level (concurrent calls) it reports, for the platform and the forwarder:

- ``caller``: caller audio only; ``duplex``: the upstream streams agent audio back (responses of
  one second, each ending with usage) and marks are echoed as they arrive (playback time);
  ``churn``: calls of 1.5-3 s arriving and hanging up throughout the window.
- frame latency p50/p95/p99/max caller->upstream (``up``) and upstream->caller (``down``), frames
  lost each way, CPU seconds per call-minute of delivered caller audio summed over every process of
  the platform (the workers and the Celery worker; the forwarder's own process for the
  baseline), the same in the steady state alone (``steady``: from 2.5 s into the window, once every
  call has started, to 0.5 s before the hang-ups; the frame path without set-up and teardown),
  webhook latency, and the upstream sessions still open 3 s after the last hang-up.
- Once: set-up plus teardown CPU per call (calls that connect, start and hang up).
- ``--records N`` (default 100) calls of churn, then whether every call has its session segment,
  its usage and its post-call summary.

Latency counts the frames after a call's first 500 ms (the first ones wait for the upstream to
open and are sent as soon as it does); loss counts every frame. The bench, the upstream and the
platform share this machine's cores, so the heavy levels measure the machine as much as the code.

The last line is ``RESULT ...`` with the figures of every level (``<mode>_n<level>_<what>``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import multiprocessing
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FRAME_S = 0.020
FRAME_BYTES = 160
SKIP_FRAMES = 25  # a call's first 500 ms: not in the latency figures
AUTH_TOKEN = "bench-twilio-auth-token"
HEADER = struct.Struct("<dI")  # send time (wall clock), level epoch


def pct(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def frame(epoch: int) -> str:
    body = HEADER.pack(time.time(), epoch) + b"\xff" * (FRAME_BYTES - HEADER.size)
    return base64.b64encode(body).decode("ascii")


def read_frame(payload: str) -> tuple[float, int, int] | None:
    """(latency in ms, epoch, frame number) of a bench frame, or None."""
    try:
        raw = base64.b64decode(payload)
    except ValueError:
        return None
    if len(raw) < HEADER.size:
        return None
    sent, epoch = HEADER.unpack_from(raw)
    seq = raw[HEADER.size] if len(raw) > HEADER.size else 0
    return (time.time() - sent) * 1000.0, epoch, seq


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


# --- the upstream: the Realtime protocol, timestamping frames both ways ---------------------------


def run_upstream(port: int, conn: Any) -> None:
    """Child process: a lean Realtime-protocol server; commands and stats over ``conn``."""
    import threading

    import websockets

    state: dict[str, Any] = {"mode": "caller", "epoch": 0, "up": [], "up_frames": 0, "down_sent": 0,
                             "open": 0, "stream": True}

    async def session(ws: Any) -> None:
        state["open"] += 1
        counter = 0
        streamer: asyncio.Task[None] | None = None

        async def respond(stream_audio: bool) -> None:
            nonlocal counter
            counter += 1
            rid, item = f"resp_{counter}", f"item_{uuid.uuid4().hex[:12]}"
            await ws.send(json.dumps({"type": "response.created", "event_id": f"e{counter}",
                                      "response": {"id": rid, "status": "in_progress", "output": []}}))
            if stream_audio:
                started = time.monotonic()
                for n in range(50):
                    if not state["stream"]:
                        break
                    body = HEADER.pack(time.time(), state["epoch"]) + b"\xff" * (FRAME_BYTES - HEADER.size)
                    await ws.send(json.dumps({"type": "response.output_audio.delta", "response_id": rid,
                                              "item_id": item, "output_index": 0, "content_index": 0,
                                              "delta": base64.b64encode(body).decode("ascii")}))
                    state["down_sent"] += 1
                    await asyncio.sleep(max(0.0, started + (n + 1) * FRAME_S - time.monotonic()))
            usage = {"total_tokens": 60, "input_tokens": 40, "output_tokens": 20,
                     "input_token_details": {"text_tokens": 30, "audio_tokens": 10, "cached_tokens": 0},
                     "output_token_details": {"text_tokens": 5, "audio_tokens": 15}}
            await ws.send(json.dumps({"type": "response.done", "event_id": f"d{counter}",
                                      "response": {"id": rid, "status": "completed", "output": [],
                                                   "usage": usage}}))

        async def stream_loop() -> None:
            while True:
                if state["mode"] == "duplex" and state["stream"]:
                    await respond(True)
                else:
                    await asyncio.sleep(0.1)

        try:
            await ws.send(json.dumps({"type": "session.created", "event_id": "c0",
                                      "session": {"type": "realtime", "id": f"sess_{uuid.uuid4().hex[:12]}"}}))
            streamer = asyncio.ensure_future(stream_loop())
            async for raw in ws:
                if '"input_audio_buffer.append"' in raw[:60]:
                    event = json.loads(raw)
                    got = read_frame(event.get("audio", ""))
                    if got is not None and got[1] == state["epoch"]:
                        state["up_frames"] += 1
                        if got[2] >= SKIP_FRAMES:
                            state["up"].append(got[0])
                    continue
                event = json.loads(raw)
                kind = event.get("type")
                if kind == "session.update":
                    await ws.send(json.dumps({"type": "session.updated", "event_id": "u",
                                              "session": event.get("session") or {}}))
                elif kind == "response.create":
                    await respond(False)
        except websockets.ConnectionClosed:
            pass
        finally:
            if streamer is not None:
                streamer.cancel()
            state["open"] -= 1

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def commands() -> None:
            while True:
                try:
                    command, value = conn.recv()
                except EOFError:
                    os._exit(0)
                done = threading.Event()
                reply: list[Any] = []

                def apply(command: str = command, value: Any = value, reply: list[Any] = reply,
                          done: threading.Event = done) -> None:
                    if command == "stats":
                        reply.append({"up": list(state["up"]), "up_frames": state["up_frames"],
                                      "down_sent": state["down_sent"], "open": state["open"]})
                    elif command == "level":
                        state.update(mode=value[0], epoch=value[1], up=[], up_frames=0, down_sent=0, stream=True)
                    elif command == "quiet":
                        state["stream"] = False
                    done.set()

                loop.call_soon_threadsafe(apply)
                done.wait()
                conn.send(reply[0] if reply else None)

        threading.Thread(target=commands, daemon=True).start()
        async with websockets.serve(session, "127.0.0.1", port, max_size=None, compression=None):
            await asyncio.Future()

    asyncio.run(main())


class Upstream:
    def __init__(self) -> None:
        self.port = free_port()
        self.conn, child = multiprocessing.Pipe()
        self.proc = multiprocessing.get_context("fork").Process(target=run_upstream, args=(self.port, child),
                                                                daemon=True)
        self.proc.start()

    def ask(self, command: str, value: Any = None) -> Any:
        self.conn.send((command, value))
        return self.conn.recv()


# --- the minimal forwarder (the baseline) ---------------------------------------------------------


def run_forwarder(port: int, upstream_port: int) -> None:
    import websockets

    async def call(twilio: Any) -> None:
        async with websockets.connect(f"ws://127.0.0.1:{upstream_port}/v1/realtime?model=bench",
                                      max_size=None, compression=None) as upstream:
            sid = ""
            marks = 0

            async def back() -> None:
                nonlocal marks
                async for raw in upstream:
                    event = json.loads(raw)
                    if event.get("type") == "response.output_audio.delta" and sid:
                        await twilio.send(json.dumps({"event": "media", "streamSid": sid,
                                                      "media": {"payload": event["delta"]}}))
                        marks += 1
                        await twilio.send(json.dumps({"event": "mark", "streamSid": sid,
                                                      "mark": {"name": f"m{marks}"}}))

            reader = asyncio.ensure_future(back())
            try:
                async for raw in twilio:
                    message = json.loads(raw)
                    event = message.get("event")
                    if event == "media":
                        await upstream.send(json.dumps({"type": "input_audio_buffer.append",
                                                        "audio": message["media"]["payload"]}))
                    elif event == "start":
                        sid = message.get("streamSid", "")
                    elif event == "stop":
                        break
            except websockets.ConnectionClosed:
                pass
            finally:
                reader.cancel()

    async def main() -> None:
        async with websockets.serve(call, "127.0.0.1", port, max_size=None, compression=None):
            await asyncio.Future()

    asyncio.run(main())


# --- the platform --------------------------------------------------------------------------------


@dataclass
class Platform:
    port: int
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    listener: socket.socket | None = None

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]

    def stop(self) -> None:
        if self.listener is not None:
            self.listener.close()
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


PROFILED_WORKER = """
import cProfile, runpy, signal, sys, time
out = sys.argv.pop(1)
sys.argv[0] = "contactcenter.worker"
profile = cProfile.Profile(time.thread_time)
signal.signal(signal.SIGUSR1, lambda *_: profile.enable())  # from the first measured call on
try:
    runpy.run_module("contactcenter.worker", run_name="__main__", alter_sys=True)
finally:
    profile.disable()
    profile.dump_stats(out)
"""


@dataclass
class BenchSetup:
    tmp: Path
    env: dict[str, str]
    upstream: Upstream
    redis_url: str


def prepare_bench(name: str, database: str, redis_use: str) -> BenchSetup:
    """What `bench.bridge` and `bench.listen` start from: a temp dir, the local upstream, a migrated
    database with the demo loaded (SQLite in the temp dir unless ``database`` names one), the
    workers' environment, and Django set up in this process against the same database and Redis."""
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        raise SystemExit(f"bench.{name} needs REDIS_URL ({redis_use})")
    upstream = Upstream()
    env = {**os.environ, "DATABASE_URL": database or f"sqlite:///{tmp / 'bench.sqlite3'}", "REDIS_URL": redis_url,
           "LOG_LEVEL": "WARNING", "OPENAI_BASE_URL": f"http://127.0.0.1:{upstream.port}/v1",
           "OPENAI_API_KEY": "sk-bench", "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "PUBLIC_BASE_URL": "https://bench.invalid",
           "CALL_CAPACITY_PER_WORKER": "0", "DJANGO_SETTINGS_MODULE": "contactcenter.settings"}
    from bench.stack import with_raised_rate_limits

    env = with_raised_rate_limits(env)  # one caller number for every call, hundreds a minute
    env.pop("TEST_DATABASE_NAME", None)
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "TWILIO_AUTH_TOKEN", "PUBLIC_BASE_URL",
                                           "DJANGO_SETTINGS_MODULE", "LOG_LEVEL")})
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([sys.executable, "manage.py", "loaddemo"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    import django

    django.setup()
    return BenchSetup(tmp, env, upstream, redis_url)


def start_platform(env: dict[str, str], workers: int, log_dir: Path, server: str = "uvicorn",
                   celery: bool = True) -> Platform:
    from contactcenter.management.commands.runcontactcenter import listening_socket, wait_for_http

    port = free_port()
    listener = listening_socket("127.0.0.1", port)
    platform = Platform(port=port, listener=listener)
    fd = listener.fileno()
    for number in range(workers):
        log = open(log_dir / f"{server}-{number + 1}.log", "wb")  # noqa: SIM115 (lives with the process)
        # BENCH_PROFILE=/path/prefix: each worker's event-loop thread under cProfile, timed in CPU
        # seconds of that thread (wall-clock times mostly measure the other work of a shared machine)
        profile = ["-c", PROFILED_WORKER, f"{os.environ['BENCH_PROFILE']}-{number + 1}.prof"] if os.environ.get(
            "BENCH_PROFILE") else ["-m", "contactcenter.worker"]
        platform.procs.append(subprocess.Popen([sys.executable, *profile, "--fd", str(fd), "--server", server],
                                               env=env, cwd=ROOT, pass_fds=(fd,), stdout=log,
                                               stderr=subprocess.STDOUT))
    if celery:
        log = open(log_dir / "celery.log", "wb")  # noqa: SIM115
        platform.procs.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "contactcenter", "worker", "-P", "solo", "--without-gossip",
             "--without-mingle", "--without-heartbeat", "-l", "WARNING", "-n", f"bench-{os.getpid()}@%h"],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))
    if not wait_for_http("127.0.0.1", port, timeout=60):
        platform.stop()
        raise SystemExit(f"the platform did not start; see {log_dir}")
    return platform


# --- Twilio's side --------------------------------------------------------------------------------


@dataclass
class Tally:
    up_sent: int = 0
    down: list[float] = field(default_factory=list)
    down_frames: int = 0
    webhook_ms: list[float] = field(default_factory=list)
    calls: int = 0
    failures: int = 0


async def webhook(http: Any, base: str) -> str:
    from calls.twilio import compute_signature

    params = {"CallSid": "CA" + uuid.uuid4().hex, "AccountSid": "AC" + "0" * 32, "From": "+15550100001",
              "To": "+15550100002", "CallStatus": "ringing", "Direction": "inbound"}
    path = "/twilio/voice?scenario=retail"
    signature = compute_signature(AUTH_TOKEN, base + path, params.items())
    answer = await http.post(base + path, data=params, headers={"X-Twilio-Signature": signature})
    answer.raise_for_status()
    text = answer.text
    start = text.index('url="') + 5
    return text[start:text.index('"', start)].replace("&amp;", "&")


async def phone_call(target: str, http: Any, base: str | None, seconds: float, epoch: int, tally: Tally,
                     stop: asyncio.Event | None = None) -> None:
    import websockets

    if base is not None:
        started = time.perf_counter()
        url = await webhook(http, base)
        tally.webhook_ms.append((time.perf_counter() - started) * 1000)
        url = url.replace("wss://bench.invalid", target)
    else:
        url = target
    sid = "MZ" + uuid.uuid4().hex
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        tally.calls += 1
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await ws.send(json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": sid, "start": {
            "streamSid": sid, "callSid": "CA" + uuid.uuid4().hex, "accountSid": "AC" + "0" * 32,
            "tracks": ["inbound"], "customParameters": {},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))

        async def listen() -> None:
            async for raw in ws:
                message = json.loads(raw)
                event = message.get("event")
                if event == "media":
                    got = read_frame(message["media"]["payload"])
                    if got is not None and got[1] == epoch:
                        tally.down_frames += 1
                        tally.down.append(got[0])
                elif event == "mark":
                    await ws.send(json.dumps({"event": "mark", "streamSid": sid, "mark": message["mark"]}))

        listener = asyncio.ensure_future(listen())
        begin = time.monotonic()
        n = 0
        try:
            while time.monotonic() - begin < seconds and not (stop is not None and stop.is_set()):
                body = HEADER.pack(time.time(), epoch) + bytes([min(n, 255)]) + b"\xff" * (
                    FRAME_BYTES - HEADER.size - 1)
                payload = base64.b64encode(body).decode("ascii")
                await ws.send(f'{{"event":"media","streamSid":"{sid}","media":{{"track":"inbound",'
                              f'"chunk":"{n}","timestamp":"{n * 20}","payload":"{payload}"}}}}')
                tally.up_sent += 1
                n += 1
                await asyncio.sleep(max(0.0, begin + n * FRAME_S - time.monotonic()))
            if stop is not None:
                await stop.wait()
            await ws.send(json.dumps({"event": "stop", "streamSid": sid, "stop": {}}))
            with contextlib.suppress(asyncio.TimeoutError, websockets.ConnectionClosed):
                await asyncio.wait_for(listener, 5)
        finally:
            listener.cancel()


async def run_level(mode: str, level: int, seconds: float, epoch: int, upstream: Upstream, target: str,
                    base: str | None, pids: list[int]) -> dict[str, float]:
    import httpx

    upstream.ask("level", (mode, epoch))
    tally = Tally()
    steady0 = steady1 = (0.0, 0)
    async with httpx.AsyncClient(timeout=30) as http:
        cpu0, t0 = cpu_seconds(pids), time.monotonic()
        if mode == "churn":
            deadline = time.monotonic() + seconds

            async def slot() -> None:
                await asyncio.sleep(random.uniform(0, 1.5))
                while time.monotonic() < deadline:
                    try:
                        await phone_call(target, http, base, random.uniform(1.5, 3.0), epoch, tally)
                    except Exception:  # noqa: BLE001 — counted, the slot goes on
                        tally.failures += 1
                        await asyncio.sleep(0.2)

            await asyncio.gather(*(slot() for _ in range(level)))
            await asyncio.sleep(1.0)
            upstream.ask("quiet")
        else:
            stop = asyncio.Event()

            async def one(i: int) -> None:
                await asyncio.sleep(i * min(0.02, 1.0 / level))  # arrivals spread over up to a second
                try:
                    await phone_call(target, http, base, seconds, epoch, tally, stop)
                except Exception:  # noqa: BLE001
                    tally.failures += 1

            calls = [asyncio.ensure_future(one(i)) for i in range(level)]
            # The steady state: every call connected and started, none hanging up yet (the frame
            # path alone, without the calls' set-up and teardown).
            settle = min(2.5, seconds / 3)
            await asyncio.sleep(settle)
            steady0 = cpu_seconds(pids), tally.up_sent
            await asyncio.sleep(max(0.0, seconds - settle - 0.5))
            steady1 = cpu_seconds(pids), tally.up_sent
            await asyncio.sleep(max(0.0, seconds + 1.5 - (time.monotonic() - t0)))
            upstream.ask("quiet")
            await asyncio.sleep(1.5)  # let frames in flight arrive
            stats = upstream.ask("stats")
            stop.set()
            await asyncio.gather(*calls)
        cpu1, t1 = cpu_seconds(pids), time.monotonic()
    if mode == "churn":
        stats = upstream.ask("stats")
    await asyncio.sleep(3.0)
    left_open = upstream.ask("stats")["open"]
    open_after = float("nan")  # when sessions were still open: the seconds until the last closed
    if left_open:
        waited = 3.0
        while waited < 60.0 and upstream.ask("stats")["open"]:
            await asyncio.sleep(1.0)
            waited += 1.0
        open_after = waited if not upstream.ask("stats")["open"] else float("inf")
    call_minutes = stats["up_frames"] * FRAME_S / 60.0
    steady_minutes = (steady1[1] - steady0[1]) * FRAME_S / 60.0
    up = stats["up"]
    return {
        "calls": tally.calls, "failed": tally.failures,
        "up_p50": pct(up, 0.5), "up_p95": pct(up, 0.95), "up_p99": pct(up, 0.99), "up_max": max(up or [0.0]),
        "up_lost": max(0, tally.up_sent - stats["up_frames"]),
        "down_p50": pct(tally.down, 0.5), "down_p95": pct(tally.down, 0.95), "down_p99": pct(tally.down, 0.99),
        "down_max": max(tally.down or [0.0]),
        "down_lost": max(0, stats["down_sent"] - tally.down_frames) if mode != "caller" else 0,
        "cpu_per_call_min": (cpu1 - cpu0) / call_minutes if call_minutes else float("nan"),
        "cpu_cores": (cpu1 - cpu0) / (t1 - t0),
        "steady_cpu_per_call_min": (steady1[0] - steady0[0]) / steady_minutes if steady_minutes else float("nan"),
        "webhook_p50": pct(tally.webhook_ms, 0.5), "webhook_p99": pct(tally.webhook_ms, 0.99),
        "left_open": left_open, "open_cleared_s": open_after,
    }


async def setup_cpu(target: str, base: str | None, pids: list[int], calls: int, epoch: int,
                    upstream: Upstream) -> float:
    """CPU milliseconds per call of connecting, starting and hanging up (no audio)."""
    import httpx

    upstream.ask("level", ("caller", epoch))
    tally = Tally()
    async with httpx.AsyncClient(timeout=30) as http:
        before = cpu_seconds(pids)
        sem = asyncio.Semaphore(4)

        async def one() -> None:
            async with sem:
                await phone_call(target, http, base, 0.3, epoch, tally)

        await asyncio.gather(*(one() for _ in range(calls)))
        await asyncio.sleep(3.0)  # records, summaries
        return (cpu_seconds(pids) - before) * 1000 / calls


def setup_split(pids: list[int], run: Any) -> tuple[float, list[float]]:
    """``run()`` (a set-up measure) and the CPU milliseconds each process of ``pids`` spent in it."""
    before = [cpu_seconds([pid]) for pid in pids]
    total = run()
    return total, [(cpu_seconds([pid]) - b) * 1000 for pid, b in zip(pids, before, strict=True)]


def check_records(expected_after: int) -> dict[str, int]:
    from django.db.models import Q

    from calls.models import Call, SessionSegment, Summary

    calls = Call.objects.filter(pk__gt=expected_after, channel=Call.Channel.TWILIO).exclude(
        end_reason__startswith="refused")
    ids = list(calls.values_list("pk", flat=True))
    ended = calls.filter(status=Call.Status.ENDED).count()
    with_segment = set(SessionSegment.objects.filter(call_id__in=ids).values_list("call_id", flat=True))
    with_summary = set(Summary.objects.filter(call_id__in=ids, kind=Summary.Kind.POST_CALL)
                       .values_list("call_id", flat=True))
    no_usage = calls.filter(Q(usage__isnull=True) | Q(usage={})).count()
    return {"calls": len(ids), "not_ended": len(ids) - ended, "no_segment": len(set(ids) - with_segment),
            "no_usage": no_usage, "no_summary": len(set(ids) - with_summary)}


def fmt(value: float) -> str:
    import math

    return "nan" if math.isnan(value) else (f"{value:.0f}" if abs(value) >= 100 else f"{value:.2f}".rstrip("0").rstrip("."))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bridge", description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,10,50,100,200")
    parser.add_argument("--modes", default="caller,duplex,churn")
    parser.add_argument("--seconds", type=float, default=10.0, help="each level's window")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--database", default="", help="a PostgreSQL URL (default: SQLite in a temp dir)")
    parser.add_argument("--records", type=int, default=100, help="churn calls whose records are checked (0: skip)")
    parser.add_argument("--setup-calls", type=int, default=40)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--server", default="uvicorn",
                        help="the workers' ASGI server (contactcenter.worker --server); a list (uvicorn,daphne) "
                             "runs one platform per server, each level on each in turn (A/B under the same load)")
    args = parser.parse_args()
    servers = [name for name in args.server.split(",") if name]

    bench = prepare_bench("bridge", args.database, "the channel layer and the Celery broker")
    tmp, env, upstream, redis_url = bench.tmp, bench.env, bench.upstream, bench.redis_url
    import redis

    from calls.models import Call

    redis.Redis.from_url(redis_url).delete("celery")  # tasks queued by an earlier run
    # The first server's platform has the Celery worker; the others share it (counted in each).
    platforms = {name: start_platform(env, args.workers, tmp, name, celery=number == 0)
                 for number, name in enumerate(servers)}
    platform = platforms[servers[0]]
    celery_pid = platform.procs[-1].pid
    target = f"ws://127.0.0.1:{platform.port}"
    base = f"http://127.0.0.1:{platform.port}"
    forwarder = None
    forwarder_port = 0
    if not args.no_baseline:
        forwarder_port = free_port()
        forwarder = multiprocessing.get_context("fork").Process(target=run_forwarder,
                                                                args=(forwarder_port, upstream.port), daemon=True)
        forwarder.start()
        time.sleep(1.0)
    sign_base = base  # the webhook is signed for the URL it is sent to (the view accepts either)
    results: dict[str, float] = {}
    epoch = 1
    print(f"bench.bridge: {args.workers} workers ({'; '.join(servers)}) + Celery, database {env['DATABASE_URL'].split(':')[0]}, "
          f"{os.cpu_count()} cores; levels {args.levels}; {args.seconds:.0f} s windows", flush=True)
    if os.environ.get("BENCH_PROFILE"):
        for proc in platform.procs[:-1]:  # the workers (Celery's is last)
            proc.send_signal(signal.SIGUSR1)
    try:
        pids = platform.pids
        results["setup_cpu_ms"], split = setup_split(pids, lambda: asyncio.run(setup_cpu(
            target, sign_base, pids, args.setup_calls, epoch, upstream)))
        results["setup_cpu_ms_celery"] = split[-1] / args.setup_calls  # the last process is Celery's
        epoch += 1
        if forwarder is not None:
            results["fwd_setup_cpu_ms"] = asyncio.run(setup_cpu(
                f"ws://127.0.0.1:{forwarder_port}/", None, [forwarder.pid or 0], args.setup_calls, epoch, upstream))
            epoch += 1
        print(f"set-up + teardown CPU per call: platform {results['setup_cpu_ms']:.1f} ms"
              f" (of which Celery {results['setup_cpu_ms_celery']:.1f} ms)"
              + (f", forwarder {results['fwd_setup_cpu_ms']:.1f} ms" if forwarder is not None else ""), flush=True)
        for name in servers[1:]:
            other = platforms[name]
            other_pids = [*other.pids, celery_pid]
            results[f"setup_cpu_ms_{name}"] = asyncio.run(setup_cpu(
                f"ws://127.0.0.1:{other.port}", f"http://127.0.0.1:{other.port}", other_pids, args.setup_calls,
                epoch, upstream))
            epoch += 1
            print(f"set-up + teardown CPU per call on {name}: {results[f'setup_cpu_ms_{name}']:.1f} ms", flush=True)
        header = ("mode   calls  who  up p50/p95/p99/max ms      down p50/p95/p99/max ms    lost up/down  "
                  "cpu s/call-min  steady  cores  webhook p50/p99 ms  open")
        print(header, flush=True)
        for mode in [m for m in args.modes.split(",") if m]:  # --modes '': set-up and records only
            for level in [int(x) for x in args.levels.split(",")]:
                runs = [("cc" if number == 0 else f"cc_{name}", f"ws://127.0.0.1:{platforms[name].port}",
                         f"http://127.0.0.1:{platforms[name].port}",
                         platforms[name].pids + ([] if number == 0 else [celery_pid]))
                        for number, name in enumerate(servers)]
                runs.append(("fwd", f"ws://127.0.0.1:{forwarder_port}/", None,
                             [forwarder.pid or 0] if forwarder else []))
                for who, tgt, sign, pids in runs:
                    if who == "fwd" and forwarder is None:
                        continue
                    r = asyncio.run(run_level(mode, level, args.seconds, epoch, upstream, tgt, sign, pids))
                    epoch += 1
                    for key, value in r.items():
                        results[f"{who}_{mode}_n{level}_{key}"] = value
                    print(f"{mode:6} {level:5}  {who.removeprefix('cc_')[:3]:3}  "
                          f"{fmt(r['up_p50'])}/{fmt(r['up_p95'])}/{fmt(r['up_p99'])}/{fmt(r['up_max'])}".ljust(50)
                          + f"{fmt(r['down_p50'])}/{fmt(r['down_p95'])}/{fmt(r['down_p99'])}/{fmt(r['down_max'])}"
                          .ljust(27)
                          + f"{r['up_lost']}/{r['down_lost']}".ljust(14)
                          + f"{fmt(r['cpu_per_call_min'])}".ljust(16)
                          + f"{fmt(r['steady_cpu_per_call_min'])}".ljust(8) + f"{fmt(r['cpu_cores'])}".ljust(7)
                          + f"{fmt(r['webhook_p50'])}/{fmt(r['webhook_p99'])}".ljust(20)
                          + f"{r['left_open']}" + (f" (0 after {fmt(r['open_cleared_s'])} s)" if r["left_open"] else "")
                          + (f"  ({r['failed']} failed)" if r["failed"] else ""),
                          flush=True)
        if args.records:
            last = Call.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
            epoch += 1

            async def records() -> None:
                import httpx

                tally = Tally()
                sem = asyncio.Semaphore(10)
                async with httpx.AsyncClient(timeout=30) as http:
                    async def one() -> None:
                        async with sem:
                            await phone_call(target, http, sign_base, random.uniform(1.0, 2.0), epoch, tally)

                    await asyncio.gather(*(one() for _ in range(args.records)), return_exceptions=True)

            upstream.ask("level", ("caller", epoch))
            asyncio.run(records())
            deadline = time.monotonic() + 60
            check = check_records(last)
            while time.monotonic() < deadline and (check["no_summary"] or check["not_ended"]):
                time.sleep(1.0)
                check = check_records(last)
            for key, value in check.items():
                results[f"records_{key}"] = value
            print("records after {calls} churn calls: not ended {not_ended}, no segment {no_segment}, "
                  "no usage {no_usage}, no summary {no_summary}".format(**check), flush=True)
    finally:
        for each in reversed(list(platforms.values())):
            each.stop()
        if forwarder is not None:
            forwarder.terminate()
        upstream.proc.terminate()
        shutil.rmtree(tmp, ignore_errors=True)
    print("RESULT " + " ".join(f"{k}={fmt(v) if isinstance(v, float) else v}" for k, v in results.items()))


if __name__ == "__main__":
    main()
