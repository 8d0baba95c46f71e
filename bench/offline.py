"""The offline engine under synthetic callers, over loopback.

    python -m bench.offline [--turns 3] [--levels 1-7] [--keep-going] [--budget-s 300]

An in-process offline server (`realtime.server.offline`) and synthetic callers on raw WebSockets:
each caller speaks piper-synthesised utterances at real-time pace (20 ms frames of audio/pcmu, as a
phone line sends them), server_vad with 500 ms of silence, and waits for each answer (function calls
are answered at once, as a tool would). Concurrency ramps 1, 2, 3, ... until p95 of the voice-to-
voice latency passes 1 s (or the level or time bound is reached); ``--keep-going`` runs every
level of ``--levels`` (e.g. ``1-7`` or ``1,4,6``) whatever its p95.

Voice-to-voice is what the caller perceives: from the end of the caller's speech in the audio (the
bench knows where each utterance's speech ends, and sends it in real time) to the first
``output_audio.delta`` received, the same definition as the dashboard's (which backdates
``speech_stopped`` by the silence window). It is shown with its parts: the silence window (end of
speech -> ``speech_stopped`` received: the VAD waiting for 500 ms of silence) and the answer after
it; on the server, waiting for the transcript (stopped -> transcription completed) and transcript
-> first audio (policy + first sentence of speech). Real-time factors: wall
seconds per audio second of recognition and synthesis, at one caller. CPU: the process's CPU
seconds per answered turn (server and callers together; the callers' share is small), steadier
than latency on a shared machine, with the number of recognitions and synthesised sentences per
turn. The load average is printed at the start and the end. The last line:
``RESULT v2v_p50_ms=... v2v_p95_ms=... stt_rtf=... tts_rtf=... max_concurrent_calls_p95_under_1s=...``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import statistics
import time
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "2")

from realtime import audio
from realtime.server import RealtimeServer
from realtime.server.offline import OfflineEngine, OfflineSettings, offline_server
from realtime.server.session import RealtimeSession
from realtime.server.testing import TEST_API_KEY

FMT = "audio/pcmu"
INSTRUCTIONS = (
    "You are the authentication agent for Acme Retail. Greet the caller with \"Welcome to Acme Retail! "
    "How can I help you today?\" Before helping, verify the customer's identity with their phone number "
    "and date of birth using verify_customer. Then transfer them to the right department."
)
TOOLS = [
    {
        "type": "function",
        "name": "verify_customer",
        "description": "Verify the customer's identity using their phone number and date of birth.",
        "parameters": {
            "type": "object",
            "properties": {
                "phone_number": {"type": "string", "description": "The customer's phone number", "pattern": r"^\+?[0-9]{10,15}$"},
                "date_of_birth": {"type": "string", "format": "date", "description": "The customer's date of birth"},
            },
            "required": ["phone_number", "date_of_birth"],
        },
    },
]
LEAD_MS = 300
UTTERANCES = [
    "Hi, I'd like to return the rain jacket I bought.",
    "My phone number is five five five one two three four five six seven, and I was born on March third nineteen eighty five.",
    "Yes, I want to return an order please.",
    "What are your opening hours on Sunday?",
]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def caller(url: str, speech: list[tuple[bytes, float]], turns: int, offset: int, timings: list[tuple[float, float]]) -> None:
    """One synthetic call: greeting, then ``turns`` utterances in real time, each answered.
    ``speech``: (audio, ms of speech from its start); appends (voice-to-voice ms measured from the
    end of speech, silence window ms) per answered turn to ``timings``."""
    from websockets.asyncio.client import connect

    async with connect(f"{url}?model=gpt-realtime-2", additional_headers={"Authorization": f"Bearer {TEST_API_KEY}"}, max_size=None) as ws:
        session = {
            "type": "realtime",
            "instructions": INSTRUCTIONS,
            "tools": TOOLS,
            "audio": {
                "input": {
                    "format": {"type": FMT},
                    "transcription": {"model": "gpt-4o-mini-transcribe"},
                    "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500},
                },
                "output": {"format": {"type": FMT}},
            },
        }
        await ws.send(json.dumps({"type": "session.update", "session": session}))
        await ws.send(json.dumps({"type": "response.create"}))
        done = asyncio.Event()
        rounds = [0]
        marks: dict[str, float] = {}

        async def reader() -> None:
            async for raw in ws:
                event = json.loads(raw)
                now = time.perf_counter()
                if event["type"] == "input_audio_buffer.speech_stopped" and "speech_end" in marks:
                    marks.setdefault("stopped", now)
                elif event["type"] == "response.output_audio.delta" and "stopped" in marks and "first_audio" not in marks:
                    marks["first_audio"] = now
                if event["type"] == "response.done":
                    calls = [o for o in event["response"]["output"] if o["type"] == "function_call"]
                    rounds[0] += 1
                    if rounds[0] > 3:  # a bounded tool loop per turn
                        calls = []
                    for call in calls:  # a tool that answers at once
                        output = {"verified": True}
                        item = {"type": "function_call_output", "call_id": call["call_id"], "output": json.dumps(output)}
                        await ws.send(json.dumps({"type": "conversation.item.create", "item": item}))
                    if calls:
                        await ws.send(json.dumps({"type": "response.create"}))
                    else:
                        done.set()

        task = asyncio.create_task(reader())
        try:
            await asyncio.wait_for(done.wait(), 30)
            frame = audio.ms_to_bytes(20, FMT)
            for turn in range(turns):
                done.clear()
                rounds[0] = 0
                data, speech_ms = speech[(offset + turn) % len(speech)]
                marks.clear()
                start = time.perf_counter()
                marks["speech_end"] = start + (LEAD_MS + speech_ms) / 1000
                for n, i in enumerate(range(0, len(data), frame)):  # real time, without drift
                    await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(data[i : i + frame]).decode()}))
                    delay = start + (n + 1) * 0.02 - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                await asyncio.wait_for(done.wait(), 60)
                if "first_audio" in marks and "stopped" in marks:
                    timings.append(((marks["first_audio"] - marks["speech_end"]) * 1000, (marks["stopped"] - marks["speech_end"]) * 1000))
                await asyncio.sleep(0.3)
        finally:
            task.cancel()


def breakdown(session: RealtimeSession) -> list[tuple[float, float, float]]:
    """(voice-to-voice, stopped -> transcript, transcript -> first audio) ms per answered turn."""
    out: list[tuple[float, float, float]] = []
    stopped: float | None = None
    transcript: float | None = None
    for event, at in zip(session.server_events, session.event_times, strict=False):
        kind = event["type"]
        if kind == "input_audio_buffer.speech_stopped":
            stopped, transcript = at, None
        elif kind == "conversation.item.input_audio_transcription.completed" and stopped is not None:
            transcript = at
        elif kind == "response.output_audio.delta" and stopped is not None:
            t = transcript if transcript is not None else stopped
            out.append(((at - stopped) * 1000, (t - stopped) * 1000, (at - t) * 1000))
            stopped = None
    return out


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def parse_levels(spec: str) -> list[int]:
    """``"1-7"``, ``"1,4,6"`` or ``"3"`` -> the levels, ascending (bad input: ValueError)."""
    levels: set[int] = set()
    for part in spec.split(","):
        lo, sep, hi = part.strip().partition("-")
        first, last = int(lo), int(hi) if sep else int(lo)
        if first < 1 or last < first:
            raise ValueError(f"bad level range {part!r}: levels count calls, from 1 up")
        levels.update(range(first, last + 1))
    return sorted(levels)


def rtf(pairs: list[tuple[float, float]]) -> float:
    audio_s = sum(a for a, _ in pairs)
    return sum(w for _, w in pairs) / audio_s if audio_s else float("nan")


async def main(args: argparse.Namespace) -> None:
    engine = OfflineEngine(
        OfflineSettings(
            workers=args.workers,
            stt_workers=args.stt_workers,
            stt_threads=args.stt_threads,
            tts_cache_seconds=args.tts_cache_s,
            max_sessions=64,
            speculate=not args.no_speculate,
        )
    )
    print(
        f"engine: {args.workers} synthesis workers, {args.stt_workers} recognition workers x {args.stt_threads} threads, "
        f"sentence cache {args.tts_cache_s:.0f} s, early transcription {'off' if args.no_speculate else 'on'}"
    )
    print(f"loading models: {engine.load():.1f} s")
    speech = []
    for text in UTTERANCES:
        pcm = (engine.synthesizer.synthesize_all(text) * 0.6).astype("int16")
        silence = bytes([0xFF]) * audio.ms_to_bytes(1000, FMT)  # mu-law silence
        speech.append((silence[: audio.ms_to_bytes(LEAD_MS, FMT)] + audio.encode_from_pcm16_24k(pcm, FMT) + silence, len(pcm) / 24))
    # the test peer on the engine: it keeps each session and its event times for the breakdown
    server = offline_server(engine=engine, server_class=RealtimeServer, api_key=TEST_API_KEY, max_session_seconds=600.0)
    await server.start("127.0.0.1", 0)
    responder: Any = server.deps.responder
    transcriber: Any = server.deps.transcriber
    synthesizer: Any = server.deps.synthesizer
    deadline = time.perf_counter() + args.budget_s
    first_level: list[float] = []
    first_silence = float("nan")
    stt_rtf = tts_rtf = float("nan")
    max_ok = 0
    failed = False
    levels = parse_levels(args.levels)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    try:
        for level in levels:
            if time.perf_counter() > deadline:
                print(f"time budget reached before level {level}")
                break
            before = len(server.sessions)
            transcriber.seconds.clear()
            synthesizer.seconds.clear()
            hits = responder.prefetch_hits
            tts_hits = synthesizer.hits
            t0 = time.perf_counter()
            cpu0 = cpu_seconds()
            timings: list[tuple[float, float]] = []
            await asyncio.gather(*(caller(server.url, speech, args.turns, i, timings) for i in range(level)))
            wall = time.perf_counter() - t0
            cpu = cpu_seconds() - cpu0
            rows = [row for s in server.sessions[before:] for row in breakdown(s)]
            v2v = [t[0] for t in timings]
            p50, p95 = percentile(v2v, 50), percentile(v2v, 95)
            silence_window = statistics.median(t[1] for t in timings) if timings else float("nan")
            stt_wait = statistics.median(r[1] for r in rows) if rows else float("nan")
            answer = statistics.median(r[2] for r in rows) if rows else float("nan")
            turns = max(len(v2v), 1)
            print(
                f"level {level}: {len(v2v)} turns in {wall:.1f} s  v2v from end of speech p50 {p50:.0f} ms  p95 {p95:.0f} ms"
                f"  (median: silence window {silence_window:.0f} ms, then on the server transcript wait {stt_wait:.0f} ms, transcript->audio {answer:.0f} ms)"
                f"  stt rtf {rtf(transcriber.seconds):.3f}  tts rtf {rtf(synthesizer.seconds):.3f}"
                f"  prepared answers used {responder.prefetch_hits - hits}"
                f"  cpu {cpu / turns:.2f} s/turn ({cpu / wall:.2f} cores)"
                f"  recognitions/turn {len(transcriber.seconds) / turns:.1f}  sentences synthesised/turn {len(synthesizer.seconds) / turns:.1f} (+{(synthesizer.hits - tts_hits) / turns:.1f} cached)"
                f"  load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            if not first_level:
                first_level = v2v
                first_silence = silence_window
                stt_rtf, tts_rtf = rtf(transcriber.seconds), rtf(synthesizer.seconds)
            if p95 > 1000 or not v2v:
                failed = True
                if not args.keep_going:
                    break
            elif not failed:
                max_ok = level
    finally:
        await server.stop()
        engine.close()
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"RESULT v2v_p50_ms={percentile(first_level, 50):.0f} v2v_p95_ms={percentile(first_level, 95):.0f} "
        f"silence_window_ms={first_silence:.0f} "
        f"stt_rtf={stt_rtf:.3f} tts_rtf={tts_rtf:.3f} max_concurrent_calls_p95_under_1s={max_ok}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.offline")
    parser.add_argument("--turns", type=int, default=4, help="utterances per caller")
    parser.add_argument("--levels", default="1-6", help="concurrent callers per level: 1-7, 1,4,6 or 3")
    parser.add_argument("--max-level", type=int, default=None, help="the same as --levels 1-N")
    parser.add_argument("--keep-going", action="store_true", help="run every level, not only until p95 passes 1 s")
    parser.add_argument("--budget-s", type=float, default=300.0, help="no new level after this many seconds")
    defaults = OfflineSettings()
    parser.add_argument("--workers", type=int, default=defaults.workers, help="synthesis and policy threads")
    parser.add_argument("--stt-workers", type=int, default=defaults.stt_workers, help="recognitions at once")
    parser.add_argument("--stt-threads", type=int, choices=(1, 2), default=defaults.stt_threads, help="threads per recognition")
    parser.add_argument("--tts-cache-s", type=float, default=defaults.tts_cache_seconds, help="seconds of synthesised audio kept (0: no cache)")
    parser.add_argument("--no-speculate", action="store_true", help="no early transcription during pauses")
    parsed = parser.parse_args()
    if parsed.max_level is not None:
        parsed.levels = f"1-{parsed.max_level}"
    try:
        parse_levels(parsed.levels)
    except ValueError as exc:
        parser.error(str(exc))
    asyncio.run(main(parsed))
