"""Dashboards at load: ``python -m bench.dashboards [--calls 200] [--supervisors 20] [--seconds 30]``.

The multi-process stack (``scripts/stack``: two daphne workers sharing one socket, a Celery worker and
beat; PostgreSQL and Redis from DATABASE_URL / REDIS_URL; the local protocol server, scripted engine,
in a process of its own as the upstream) carries ``--calls`` Twilio phone calls. Each caller presses a key every ``--period`` seconds
(staggered): the call records the caller's turn, the agent answers (spoken, short), and the call
publishes its events (transcripts, usage...) from the worker that holds it, as in production.

Two windows of ``--seconds`` with the same call load:

1. no supervisor connected: the CPU the stack's processes use;
2. ``--supervisors`` dashboard sockets, half on the calls list (``/ws/dashboard/``: every row
   change of every call) and half on one call's page each (``/ws/dashboard/calls/<id>/``), opened
   the way the page opens them (session cookie of a staff user, same Origin), spread by the kernel
   over the two workers, read by a process of their own (the callers' process is busy with 200
   calls' audio: its clock would measure its own backlog): the CPU again, and every event's
   delivery latency, from its commit (the
   ``at`` the publisher stamps in the transaction, which commits just after) to its arrival on the
   supervisor's socket (same machine, same clock): p50 / p99 / max, and for the call pages the
   sequence numbers seen (none missing, none twice).

The dashboards' cost is the CPU of window 2 minus window 1, per second and per delivered message.
The last line is ``RESULT dash_p50_ms=... dash_p99_ms=... dash_cpu_cost=...``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.faults import _django, pct


def _cpu_seconds(root: int) -> float:
    """utime + stime of ``root`` and every process below it (children counted while alive)."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    total = 0.0
    for pid, cpu in times.items():
        node = pid
        while node > 1:
            if node == root:
                total += cpu
                break
            node = parents.get(node, 0)
    return total


def _supervisor_cookies(count: int) -> list[str]:
    """Session cookies of ``count`` staff users (a user may hold USER_MAX_SOCKETS sockets)."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model

    engine = import_module(settings.SESSION_ENGINE)
    cookies = []
    for n in range(count):
        user, _ = get_user_model().objects.get_or_create(username=f"bench-supervisor-{n}",
                                                         defaults={"is_staff": True})
        user.is_staff = True
        user.set_password(uuid.uuid4().hex)
        user.save()
        session = engine.SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        cookies.append(f"{settings.SESSION_COOKIE_NAME}={session.session_key}")
    return cookies


class Supervisor:
    """One dashboard socket: each frame's arrival time, kept for scoring after the run."""

    def __init__(self, port: int, path: str, cookie: str) -> None:
        self.port, self.path, self.cookie = port, path, cookie
        self.frames: list[tuple[float, dict[str, Any]]] = []
        self.client_port = 0

    async def open(self) -> Supervisor:
        import websockets

        self.ws = await websockets.connect(
            f"ws://127.0.0.1:{self.port}{self.path}", max_size=2**24, open_timeout=30,
            additional_headers={"Cookie": self.cookie, "Origin": f"http://127.0.0.1:{self.port}"})
        self.client_port = int(self.ws.local_address[1])
        self.reader = asyncio.ensure_future(self._read())
        return self

    async def _read(self) -> None:
        import websockets

        try:
            async for message in self.ws:
                self.frames.append((time.time(), json.loads(message)))
        except websockets.ConnectionClosed:
            pass

    async def close(self) -> None:
        await self.ws.close()
        await self.reader


def _spawn(module: str, *args: str, **options: Any) -> Any:
    """``python -m module args`` in a process of its own."""
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-m", module, *args], **options)


async def _supervise(spec_path: str) -> None:
    """The supervisors' process: open the sockets the spec names, say their client ports, record
    every frame until the spec's seconds are over, write them next to the spec."""
    spec = json.loads(Path(spec_path).read_text())
    supervisors = [await Supervisor(spec["port"], path, cookie).open() for path, cookie in spec["sockets"]]
    print(json.dumps([s.client_port for s in supervisors]), flush=True)
    await asyncio.sleep(spec["seconds"])
    await asyncio.gather(*(s.close() for s in supervisors), return_exceptions=True)
    Path(spec_path + ".out").write_text(json.dumps([[s.path, s.frames] for s in supervisors]))


async def _press_keys(phones: list[Any], period: float, stop: asyncio.Event) -> int:
    """Each caller presses a key every ``period`` seconds, staggered; how many presses."""
    pressed = 0

    async def caller(phone: Any) -> None:
        nonlocal pressed
        await asyncio.sleep(random.random() * period)
        while not stop.is_set() and not phone.closed.is_set():
            await phone.ws.send(json.dumps({"event": "dtmf", "streamSid": phone.stream_sid,
                                            "dtmf": {"track": "inbound_track", "digit": str(random.randint(0, 9))}}))
            pressed += 1
            try:
                await asyncio.wait_for(stop.wait(), period)
            except TimeoutError:
                pass

    await asyncio.gather(*(caller(p) for p in phones), return_exceptions=True)
    return pressed


async def _window(stack: Any, phones: list[Any], seconds: float, period: float) -> tuple[float, int]:
    """CPU seconds the stack used over ``seconds`` of key presses, and the presses."""
    assert stack.proc is not None
    stop = asyncio.Event()
    pressing = asyncio.ensure_future(_press_keys(phones, period, stop))
    await asyncio.sleep(min(period, 5.0))  # every caller under way
    before = _cpu_seconds(stack.proc.pid)
    started = time.monotonic()
    await asyncio.sleep(seconds)
    used = _cpu_seconds(stack.proc.pid) - before
    elapsed = time.monotonic() - started
    stop.set()
    presses = await pressing
    return used / elapsed, presses


def _commit_times(keys: set[tuple[int, int]]) -> dict[tuple[int, int], float]:
    from calls.models import CallEvent

    found = {}
    call_ids = {c for c, _ in keys}
    for call_id, seq, event in CallEvent.objects.filter(call_id__in=call_ids).values_list("call_id", "seq", "event"):
        if (call_id, seq) in keys:
            found[(call_id, seq)] = datetime.fromisoformat(event["at"]).timestamp()
    return found


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    _django()
    import subprocess

    from asgiref.sync import sync_to_async

    from bench.stack import Phone, Stack, free_port, place_twilio_call
    from calls.models import Call

    upstream_port = free_port()
    upstream = _spawn("realtime.server", "--port", str(upstream_port), "--engine", "scripted", "--api-key",
                      "sk-bench-dashboards", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {**os.environ, "OPENAI_BASE_URL": f"http://127.0.0.1:{upstream_port}/v1",
           "OPENAI_API_KEY": "sk-bench-dashboards", "OFFLINE_ENGINE_URL": f"http://127.0.0.1:{upstream_port}/v1",
           "LOG_LEVEL": "WARNING", "CALL_CAPACITY_PER_WORKER": str(args.calls * 2),
           "TWILIO_VOICE_RATE_LIMIT": "1000000", "TWILIO_VOICE_CALLER_RATE_LIMIT": "1000000"}
    for name in ("CALL_HEARTBEAT_SECONDS", "CALL_HEARTBEAT_TIMEOUT_SECONDS", "CALL_REAPER_SECONDS"):
        env.pop(name, None)  # the defaults users get
    stack = Stack(env, workdir / "stack.log").start()
    phones: list[Any] = []
    results: list[tuple[str, list[tuple[float, dict[str, Any]]]]] = []
    spread: dict[int, int] = {}
    try:
        async def call() -> Any:
            sid, path = await asyncio.to_thread(place_twilio_call, stack.port)
            return await Phone(stack.port, sid, path).open()

        while len(phones) < args.calls:  # ten callers at a time
            phones += await asyncio.gather(*(call() for _ in range(min(10, args.calls - len(phones)))))
        await asyncio.gather(*(phone.quiet(timeout=120) for phone in phones))  # every greeting heard
        holders = {stack.pid_holding(p.client_port) for p in phones}
        calls = await sync_to_async(lambda: dict(Call.objects.filter(
            external_id__in=[p.call_sid for p in phones]).values_list("external_id", "pk")))()
        print(f"{len(phones)} calls up on workers {sorted(h for h in holders if h)}", flush=True)

        idle_cpu, idle_presses = await _window(stack, phones, args.seconds, args.period)
        print(f"window 1, no supervisor: stack CPU {idle_cpu:.2f} s/s, {idle_presses} key presses", flush=True)

        cookies = await sync_to_async(_supervisor_cookies)(max(1, -(-args.supervisors // 4)))
        watched = random.sample(phones, min(len(phones), args.supervisors - args.supervisors // 2))
        sockets = []
        for n in range(args.supervisors):
            path = "/ws/dashboard/" if n < args.supervisors // 2 else \
                f"/ws/dashboard/calls/{calls[watched[n - args.supervisors // 2].call_sid]}/"
            sockets.append((path, cookies[n // 4]))
        spec_path = workdir / "supervisors.json"
        spec_path.write_text(json.dumps({"port": stack.port, "sockets": sockets,
                                         "seconds": args.seconds + min(args.period, 5.0) + 3}))
        child = _spawn("bench.dashboards", "--supervise", str(spec_path), stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        ports = json.loads(await asyncio.to_thread(child.stdout.readline))
        for client_port in ports:
            pid = stack.pid_holding(client_port) or 0
            spread[pid] = spread.get(pid, 0) + 1
        await asyncio.sleep(1.0)
        opened = time.time()
        busy_cpu, busy_presses = await _window(stack, phones, args.seconds, args.period)
        print(f"window 2, {len(sockets)} supervisors (by worker {spread}): stack CPU {busy_cpu:.2f} s/s, "
              f"{busy_presses} key presses", flush=True)
        await asyncio.to_thread(child.wait, 120)
        results = json.loads(Path(str(spec_path) + ".out").read_text())
    finally:
        await asyncio.gather(*(phone.hang_up() for phone in phones), return_exceptions=True)
        stack.stop()
        upstream.terminate()
        upstream.wait(10)

    # Score: every event frame that arrived after the supervisors were up.
    arrivals: list[tuple[int, int, float, str]] = []  # call, seq, arrival, socket kind
    missing = repeated = 0
    for path, frames in results:
        kind = "list" if path == "/ws/dashboard/" else "call"
        seqs = []
        for at, frame in frames:
            if kind == "call" and frame.get("type") == "event":
                seqs.append(int(frame["seq"]))
                call_id = int(path.rstrip("/").rsplit("/", 1)[1])
                arrivals.append((call_id, int(frame["seq"]), at, kind))
            elif kind == "list" and frame.get("type") == "call":
                arrivals.append((int(frame["call"]["id"]), int(frame["seq"]), at, kind))
        if seqs:
            repeated += len(seqs) - len(set(seqs))
            missing += (max(seqs) - min(seqs) + 1) - len(set(seqs))
    arrivals = [a for a in arrivals if a[2] >= opened]
    commits = await sync_to_async(_commit_times)({(c, s) for c, s, _, _ in arrivals})
    latencies = {"list": [], "call": []}  # type: dict[str, list[float]]
    for call_id, seq, at, kind in arrivals:
        if (call_id, seq) in commits:
            latencies[kind].append((at - commits[(call_id, seq)]) * 1000)
    every = latencies["list"] + latencies["call"]
    return {"calls": len(phones), "supervisors": len(results), "spread": spread, "seconds": args.seconds,
            "idle_cpu": idle_cpu, "busy_cpu": busy_cpu, "messages": len(every),
            "p50": pct(every, 50), "p99": pct(every, 99), "max": max(every, default=0.0),
            "list_p99": pct(latencies["list"], 99), "call_p99": pct(latencies["call"], 99),
            "missing": missing, "repeated": repeated, "presses": busy_presses}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboards", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--supervisors", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--period", type=float, default=10.0, help="seconds between a caller's key presses")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--supervise", help=argparse.SUPPRESS)  # the supervisors' own process
    args = parser.parse_args(argv)
    if args.supervise:
        asyncio.run(_supervise(args.supervise))
        return
    random.seed(args.seed)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-dashboards-") as workdir:
        r = asyncio.run(run(args, Path(workdir)))
    cost = r["busy_cpu"] - r["idle_cpu"]
    per_message_ms = cost * r["seconds"] / r["messages"] * 1000 if r["messages"] else float("nan")
    print(f"{r['calls']} calls, {r['supervisors']} supervisor sockets (by worker pid {r['spread']}), "
          f"{r['presses']} key presses in {r['seconds']:g} s: {r['messages']} event messages delivered; "
          f"commit -> supervisor socket p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, max {r['max']:.0f} ms "
          f"(list p99 {r['list_p99']:.1f}, call pages p99 {r['call_p99']:.1f}); call pages: {r['missing']} "
          f"missing, {r['repeated']} repeated; stack CPU {r['idle_cpu']:.2f} s/s without supervisors, "
          f"{r['busy_cpu']:.2f} with ({cost:+.2f} s/s, {per_message_ms:.2f} ms per message); "
          f"load average at start {load[0]:.1f}, at end {os.getloadavg()[0]:.1f}", flush=True)
    print(f"RESULT dash_calls={r['calls']} dash_supervisors={r['supervisors']} dash_messages={r['messages']} "
          f"dash_p50_ms={r['p50']:.1f} dash_p99_ms={r['p99']:.1f} dash_max_ms={r['max']:.0f} "
          f"dash_missing={r['missing']} dash_repeated={r['repeated']} dash_cpu_idle={r['idle_cpu']:.2f} "
          f"dash_cpu_busy={r['busy_cpu']:.2f} dash_cpu_cost={cost:.2f} dash_cpu_ms_per_message={per_message_ms:.2f}")


if __name__ == "__main__":
    main()
