"""``python -m bench.server_memory``: the local Realtime server as a service that runs for weeks.

Starts ``python -m realtime.server`` (the production server under daphne; ``--engine offline`` by
default) in its own process and reads its resident memory (VmRSS of ``/proc/PID/status``):

1. sequential calls (``--calls``, 100): each sets server VAD, sends ``--audio-seconds`` (30) of
   quiet caller audio in 100 ms appends as fast as the socket takes them (the VAD and the input
   buffer see all of it; no turn is long enough to transcribe), asks for one spoken answer, then
   hangs up;
2. sessions sending junk (``--junk-sessions``, 20): two 16 MB frames that are not JSON each, in
   batches of four;
3. cancel latency (``--cancels``, 40): a long spoken answer is cancelled at its first audio delta;
   the time from sending ``response.cancel`` to receiving ``response.done`` (cancelled).

Target: RSS at the end <= RSS after the first call + 20 MB. Last line:
``RESULT rss_first_call_mb=... rss_end_mb=... growth_mb=... target_met=... cancel_p50_ms=... cancel_p99_ms=... cancelled=N``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

API_KEY = "sk-bench-server-memory"
LONG_ANSWER = (
    "Say exactly the following words: Thank you for calling the store. Your order left our warehouse this "
    "morning and should arrive within three working days. You will get a message with the tracking number "
    "as soon as the carrier scans the parcel. If anything is missing when it arrives, call us and we will "
    "send the missing part the same day. Is there anything else I can help you with today?"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def recv_until(ws: ClientConnection, kind: str, timeout: float = 60.0) -> dict[str, Any]:
    async def loop() -> dict[str, Any]:
        while True:
            event: dict[str, Any] = json.loads(await ws.recv())
            if event["type"] == kind:
                return event

    return await asyncio.wait_for(loop(), timeout)


def quiet_audio(ms: int, seed: int) -> bytes:
    """24 kHz PCM16 noise far under any VAD threshold (amplitude about 0.001 of full scale)."""
    rng = random.Random(seed)
    samples = 24 * ms
    return b"".join(rng.randint(-30, 30).to_bytes(2, "little", signed=True) for _ in range(samples))


async def one_call(url: str, audio_chunk: bytes, chunks: int) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with connect(url, additional_headers=headers, max_size=None) as ws:
        await recv_until(ws, "session.created")
        await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
            "turn_detection": {"type": "server_vad", "create_response": True}}}}}))
        await recv_until(ws, "session.updated")
        append = json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(audio_chunk).decode()})
        for _ in range(chunks):
            await ws.send(append)
        await ws.send(json.dumps({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Where is my order?"}]}}))
        await ws.send(json.dumps({"type": "response.create", "response": {
            "instructions": "Say exactly the following words: Your order ships today. Goodbye."}}))
        await recv_until(ws, "response.done")


async def junk_session(url: str, frame: bytes) -> None:
    async with connect(url, additional_headers={"Authorization": f"Bearer {API_KEY}"}, max_size=None) as ws:
        await recv_until(ws, "session.created")
        for _ in range(2):
            await ws.send(frame)
            error = await recv_until(ws, "error")
            assert error["error"]["code"], error


async def cancel_latencies(url: str, count: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    late = 0
    async with connect(url, additional_headers={"Authorization": f"Bearer {API_KEY}"}, max_size=None) as ws:
        await recv_until(ws, "session.created")
        await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}}}))
        await recv_until(ws, "session.updated")
        for _ in range(count):
            await ws.send(json.dumps({"type": "response.create", "response": {"instructions": LONG_ANSWER, "conversation": "none"}}))
            await recv_until(ws, "response.output_audio.delta")
            sent = time.perf_counter()
            await ws.send(json.dumps({"type": "response.cancel"}))
            done = await recv_until(ws, "response.done")
            if done["response"]["status"] == "cancelled":
                latencies.append((time.perf_counter() - sent) * 1000)
            else:
                late += 1  # finished before the cancel arrived
            await asyncio.sleep(0.05)
    return latencies, late


def start_server(args: argparse.Namespace, port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "realtime.server", "--port", str(port), "--api-key", API_KEY,
           "--engine", args.engine, "--max-sessions", "4", "--max-session-seconds", "600", "--log-level", "WARNING"]
    proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit("the server did not start")


async def main(args: argparse.Namespace) -> None:
    port = free_port()
    proc = start_server(args, port)
    url = f"ws://127.0.0.1:{port}/v1/realtime?model=gpt-realtime-2"
    try:
        chunk = quiet_audio(100, seed=7)
        chunks = int(args.audio_seconds * 10)
        t0 = time.perf_counter()
        await one_call(url, chunk, chunks)
        await asyncio.sleep(0.5)
        first = rss_mb(proc.pid)
        print(f"after call 1: RSS {first:.1f} MB")
        for n in range(2, args.calls + 1):
            await one_call(url, chunk, chunks)
            if n % max(1, args.calls // 10) == 0:
                print(f"after call {n}: RSS {rss_mb(proc.pid):.1f} MB ({time.perf_counter() - t0:.0f} s)")
        after_calls = rss_mb(proc.pid)
        frame = os.urandom(1024) * (16 * 1024)  # 16 MB that is not JSON
        for start in range(0, args.junk_sessions, 4):
            await asyncio.gather(*(junk_session(url, frame) for _ in range(min(4, args.junk_sessions - start))))
        await asyncio.sleep(0.5)
        after_junk = rss_mb(proc.pid)
        print(f"after {args.junk_sessions} junk sessions: RSS {after_junk:.1f} MB (peak {after_calls:.1f} MB before them)")
        latencies, late = await cancel_latencies(url, args.cancels)
        await asyncio.sleep(0.5)
        end = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    growth = end - first
    p50, p99 = (statistics.median(latencies) if latencies else float("nan")), percentile(latencies, 99)
    print(f"cancel -> response.done: p50 {p50:.1f} ms, p99 {p99:.1f} ms over {len(latencies)} cancels ({late} answers ended first)")
    print(f"RSS: {first:.1f} MB after the first call, {end:.1f} MB at the end ({growth:+.1f} MB; target <= +20 MB)")
    print(
        f"RESULT rss_first_call_mb={first:.1f} rss_after_calls_mb={after_calls:.1f} rss_after_junk_mb={after_junk:.1f} "
        f"rss_end_mb={end:.1f} growth_mb={growth:.1f} target_met={int(growth <= 20)} calls={args.calls} "
        f"cancel_p50_ms={p50:.1f} cancel_p99_ms={p99:.1f} cancelled={len(latencies)}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.server_memory", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--engine", choices=("offline", "scripted"), default="offline")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--audio-seconds", type=float, default=30.0)
    parser.add_argument("--junk-sessions", type=int, default=20)
    parser.add_argument("--cancels", type=int, default=40)
    asyncio.run(main(parser.parse_args()))
