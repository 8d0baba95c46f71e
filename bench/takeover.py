"""Taking a call over: how soon the agent is silenced, and how late the person is heard.

``python -m bench.takeover`` starts the platform as ``bench.listen`` does (``--workers``
workers on one socket, Celery, Redis from REDIS_URL, the timestamping upstream), places one phone
call (Twilio Media Streams, caller frames at real-time pace), then a supervisor takes it over from
a socket the workers accept as it comes (so across workers about half the time when there are
two) and speaks for ``--seconds``: 20 ms frames of pcm16 24 kHz, silent but for one loud frame
every 200 ms. It reports:

- clear delay: from the take-over request to Twilio's ``clear`` on the caller's socket;
- person -> caller delay p50/p95: from a loud frame leaving the person's socket to the first loud
  mu-law frame after it reaching the caller's socket (the frame's own 20 ms included);
- the person's frames sent and the caller's frames of the person's voice received.

The last line is ``RESULT ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import time
import uuid
from typing import Any

import numpy as np

from bench.bridge import FRAME_S, fmt, pct, prepare_bench, start_platform, webhook

LOUD_EVERY = 10  # frames: one loud frame every 200 ms


def loud_pcm() -> bytes:
    t = np.arange(480) / 24000.0
    return (np.sin(2 * np.pi * 440 * t) * 12000).astype("<i2").tobytes()


async def run(target: str, base: str, cookie: str, seconds: float) -> dict[str, Any]:
    import httpx
    import websockets
    from asgiref.sync import sync_to_async

    from calls.models import Call
    from realtime.audio import ulaw_decode

    async with httpx.AsyncClient() as http:
        url = (await webhook(http, base)).replace("wss://bench.invalid", target)
    sid = "MZ" + uuid.uuid4().hex
    result: dict[str, Any] = {"delays": [], "sent": 0, "heard": 0, "clear_ms": float("nan")}
    loud_sent: list[float] = []
    asked = 0.0
    async with websockets.connect(url, max_size=None, compression=None) as phone:
        await phone.send(json.dumps({"event": "start", "streamSid": sid, "start": {
            "streamSid": sid, "callSid": "CA" + uuid.uuid4().hex, "accountSid": "AC" + "0" * 32, "tracks": ["inbound"],
            "customParameters": {}, "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))
        taken = asyncio.Event()

        async def caller_side() -> None:
            async for raw in phone:
                message = json.loads(raw)
                event = message.get("event")
                now = time.time()
                if event == "clear" and taken.is_set() and result["clear_ms"] != result["clear_ms"]:
                    result["clear_ms"] = (time.monotonic() - asked) * 1000
                elif event == "media" and taken.is_set():
                    audio = ulaw_decode(base64.b64decode(message["media"]["payload"]))
                    result["heard"] += 1
                    if audio.size and float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) > 2000 and loud_sent:
                        result["delays"].append((now - loud_sent.pop(0)) * 1000)
                elif event == "mark":
                    await phone.send(json.dumps({"event": "mark", "streamSid": sid, "mark": message["mark"]}))

        async def caller_voice() -> None:
            silence = base64.b64encode(b"\xff" * 160).decode("ascii")
            n = 0
            begin = time.monotonic()
            while True:
                await phone.send(f'{{"event":"media","streamSid":"{sid}","media":{{"track":"inbound",'
                                 f'"payload":"{silence}"}}}}')
                n += 1
                await asyncio.sleep(max(0.0, begin + n * FRAME_S - time.monotonic()))

        tasks = [asyncio.ensure_future(caller_side()), asyncio.ensure_future(caller_voice())]
        call_id = None
        while call_id is None:
            call_id = await sync_to_async(lambda: Call.objects.filter(status=Call.Status.ACTIVE)
                                          .order_by("-pk").values_list("pk", flat=True).first())()
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # the agent greets
        asked = time.monotonic()
        taken.set()
        async with websockets.connect(f"{target}/ws/dashboard/calls/{call_id}/takeover/",
                                      additional_headers={"Cookie": cookie, "Origin": base}, max_size=None) as person:
            while True:
                message = await person.recv()
                if isinstance(message, str) and json.loads(message).get("type") == "taken_over":
                    break
            silent, loud = bytes(960), loud_pcm()
            begin, n = time.monotonic(), 0
            while time.monotonic() - begin < seconds:
                is_loud = n % LOUD_EVERY == LOUD_EVERY - 1
                if is_loud:
                    loud_sent.append(time.time())
                await person.send(loud if is_loud else silent)
                result["sent"] += 1
                n += 1
                await asyncio.sleep(max(0.0, begin + n * FRAME_S - time.monotonic()))
            await asyncio.sleep(0.5)
            await person.send(json.dumps({"type": "hand_back"}))
        await phone.send(json.dumps({"event": "stop", "streamSid": sid, "stop": {}}))
        for task in tasks:
            task.cancel()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.takeover", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database", default="", help="a PostgreSQL URL (default: SQLite in a temp dir)")
    args = parser.parse_args()

    bench = prepare_bench("takeover", args.database, "the channel layer and the listen pub/sub")
    from django.contrib.auth import get_user_model
    from django.test import Client

    person = get_user_model().objects.create_user("bench-person", password="bench-takes-over-123", is_staff=True)
    client = Client()
    client.force_login(person)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    platform = start_platform(bench.env, args.workers, bench.tmp)
    target, base = f"ws://127.0.0.1:{platform.port}", f"http://127.0.0.1:{platform.port}"
    print(f"bench.takeover: {args.workers} workers + Celery, {os.cpu_count()} cores; one phone call taken "
          f"over for {args.seconds:.0f} s", flush=True)
    try:
        r = asyncio.run(run(target, base, cookie, args.seconds))
    finally:
        platform.stop()
        bench.upstream.proc.terminate()
    delays = r["delays"]
    print(f"clear after {fmt(r['clear_ms'])} ms; person -> caller p50/p95 {fmt(pct(delays, 0.5))}/"
          f"{fmt(pct(delays, 0.95))} ms over {len(delays)} loud frames; frames sent {r['sent']}, "
          f"heard {r['heard']}", flush=True)
    print(f"RESULT takeover_clear_ms={fmt(r['clear_ms'])} person_to_caller_p50_ms={fmt(pct(delays, 0.5))} "
          f"person_to_caller_p95_ms={fmt(pct(delays, 0.95))} person_frames_sent={r['sent']} "
          f"person_frames_heard={r['heard']} loud_frames_measured={len(delays)}", flush=True)


if __name__ == "__main__":
    main()
