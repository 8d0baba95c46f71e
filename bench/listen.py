"""Listening in: what it costs and what it does to the call.

``python -m bench.listen`` starts the platform as ``bench.bridge`` does (``--workers``
workers on one socket, Celery, Redis from REDIS_URL, SQLite in a temporary directory unless
``--database`` names a PostgreSQL URL) and its timestamping upstream, then runs one phone call in
``duplex`` mode (caller frames at real-time pace, the upstream streaming agent audio back) for
``--seconds`` three times: with no listener, with ``--listeners`` supervisors listening (mixed) on
sockets the workers accept as they come (so across workers when there are several), and with none
again. It reports:

- listen delay p50/p95: from the frame passing the call's consumer (the time in each listen frame)
  to the listener's socket receiving it, over every listener;
- CPU per listener: the platform's CPU (every worker and Celery) with listeners minus the
  mean of the two runs without, per listener, in milliseconds of CPU per second;
- the call's own frame latency (caller -> upstream and upstream -> caller, p50/p95) without and with
  listeners, and the frames lost each way.

The last line is ``RESULT ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import time
from typing import Any

from bench.bridge import Upstream, cpu_seconds, fmt, pct, prepare_bench, run_level, start_platform

PAGE_HEADER = struct.Struct("<cxHd")


async def listeners(base_ws: str, cookie: str, count: int, seconds: float, delays: list[float],
                    frames: list[int]) -> None:
    """Wait for the newest call to be active, then listen to it with ``count`` sockets for ``seconds``."""
    import websockets
    from asgiref.sync import sync_to_async

    from calls.models import Call

    def active_call() -> int | None:
        return Call.objects.filter(status=Call.Status.ACTIVE).order_by("-pk").values_list("pk", flat=True).first()

    call_id = None
    while call_id is None:
        call_id = await sync_to_async(active_call)()
        if call_id is None:
            await asyncio.sleep(0.05)

    async def one() -> None:
        async with websockets.connect(f"{base_ws}/ws/dashboard/calls/{call_id}/listen/?mode=mixed",
                                      additional_headers={"Cookie": cookie, "Origin": base_ws.replace("ws:", "http:")},
                                      max_size=None, compression=None) as ws:
            deadline = time.monotonic() + seconds
            received = 0
            while (left := deadline - time.monotonic()) > 0:
                try:
                    data = await asyncio.wait_for(ws.recv(), left)
                except (TimeoutError, websockets.ConnectionClosed):
                    break
                if isinstance(data, bytes):
                    _, _, sent_ms = PAGE_HEADER.unpack_from(data)
                    delays.append(time.time() * 1000.0 - sent_ms)
                    received += 1
            frames.append(received)

    await asyncio.gather(*(one() for _ in range(count)))


def listener_process(target: str, cookie: str, count: int, seconds: float, results: Any) -> None:
    """Child process: the listeners, apart from the caller's loop (neither delays the other)."""
    from django.db import connections

    connections.close_all()
    delays: list[float] = []
    frames: list[int] = []
    try:
        asyncio.run(listeners(target, cookie, count, seconds, delays, frames))
    finally:
        results.put((delays, frames))


async def run_call(upstream: Upstream, target: str, base: str, pids: list[int], seconds: float, epoch: int,
                   cookie: str, count: int) -> dict[str, float]:
    import multiprocessing

    from django.db import connections

    delays: list[float] = []
    frames: list[int] = []
    child = None
    if count:
        connections.close_all()
        context = multiprocessing.get_context("fork")
        results = context.Queue()
        child = context.Process(target=listener_process, args=(target, cookie, count, seconds, results), daemon=True)
        child.start()
    cpu0, t0 = cpu_seconds(pids), time.monotonic()
    result = await run_level("duplex", 1, seconds, epoch, upstream, target, base, pids)
    cpu1, t1 = cpu_seconds(pids), time.monotonic()
    if child is not None:
        delays, frames = await asyncio.to_thread(results.get, True, 30)
        child.join(10)
    result["cores"] = (cpu1 - cpu0) / (t1 - t0)
    result["delay_p50"], result["delay_p95"] = pct(delays, 0.5), pct(delays, 0.95)
    result["listen_frames"] = sum(frames)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.listen", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--listeners", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database", default="", help="a PostgreSQL URL (default: SQLite in a temp dir)")
    args = parser.parse_args()

    bench = prepare_bench("listen", args.database, "the channel layer and the listeners' pub/sub")
    tmp, env, upstream = bench.tmp, bench.env, bench.upstream
    from django.contrib.auth import get_user_model
    from django.test import Client

    supervisor = get_user_model().objects.create_user("bench-listener", password="bench-listens-123", is_staff=True)
    client = Client()
    client.force_login(supervisor)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    platform = start_platform(env, args.workers, tmp)
    target = f"ws://127.0.0.1:{platform.port}"
    base = f"http://127.0.0.1:{platform.port}"
    print(f"bench.listen: {args.workers} workers + Celery, {os.cpu_count()} cores; one duplex call of "
          f"{args.seconds:.0f} s with 0, {args.listeners}, 0 listeners", flush=True)
    runs: list[dict[str, Any]] = []
    try:
        for epoch, count in ((1, 0), (2, args.listeners), (3, 0)):
            r = asyncio.run(run_call(upstream, target, base, platform.pids, args.seconds, epoch, cookie, count))
            runs.append(r)
            print(f"listeners {count}: call up p50/p95 {fmt(r['up_p50'])}/{fmt(r['up_p95'])} ms, down p50/p95 "
                  f"{fmt(r['down_p50'])}/{fmt(r['down_p95'])} ms, lost {r['up_lost']}/{r['down_lost']}, "
                  f"platform {fmt(r['cores'] * 1000)} ms CPU/s"
                  + (f"; listen delay p50/p95 {fmt(r['delay_p50'])}/{fmt(r['delay_p95'])} ms over "
                     f"{r['listen_frames']} frames" if count else ""), flush=True)
    finally:
        platform.stop()
        upstream.proc.terminate()
    quiet, loud = (runs[0], runs[2]), runs[1]
    baseline = sum(r["cores"] for r in quiet) / 2
    per_listener_ms = (loud["cores"] - baseline) * 1000 / max(1, args.listeners)
    up0 = pct([quiet[0]["up_p50"], quiet[1]["up_p50"]], 0.0)
    down0 = pct([quiet[0]["down_p50"], quiet[1]["down_p50"]], 0.0)
    print(f"RESULT listen_delay_p50_ms={fmt(loud['delay_p50'])} listen_delay_p95_ms={fmt(loud['delay_p95'])} "
          f"listen_frames={loud['listen_frames']} cpu_ms_per_s_per_listener={fmt(per_listener_ms)} "
          f"call_up_p50_ms_0={fmt(up0)} call_up_p50_ms_{args.listeners}={fmt(loud['up_p50'])} "
          f"call_up_p95_ms_{args.listeners}={fmt(loud['up_p95'])} call_down_p50_ms_0={fmt(down0)} "
          f"call_down_p50_ms_{args.listeners}={fmt(loud['down_p50'])} "
          f"call_down_p95_ms_{args.listeners}={fmt(loud['down_p95'])} "
          f"call_lost_{args.listeners}={loud['up_lost'] + loud['down_lost']}", flush=True)


if __name__ == "__main__":
    main()
