"""Faults, and what must hold through them: ``python -m bench.faults [--only drops,expiry,kill]``.

1. ``drops``: the upstream connection is aborted (TCP reset, as a network failure) at ``--drops``
   random points across ``--calls`` concurrent calls (engine + the local protocol server, one
   process). Each caller says ``--turns`` utterances in real time (20 ms frames); each utterance is a
   tone whose pitch names the turn, and the server's transcriber describes what it was given
   ("turn 3 for 8": pitch and length in tenths of a second), so a transcript item that lost part of
   its audio, went missing or came twice is seen. Figures: recoveries, items lost / damaged /
   repeated (must be 0), and the caller-side gap per recreation: from the last caller frame the old
   session took to the first one the new session took.
2. ``expiry``: the same calls, no drops; the server ends every session after ``--session-seconds``
   (close 1001, as OpenAI's session limit), mid-sentence. Figures: recreations, the caller-side gap
   p50/p99 (must be under 500 ms), items lost (must be 0: the words in progress are carried).
3. ``kill``: the multi-process stack (``scripts/stack``: two daphne workers, Celery worker and beat,
   PostgreSQL and Redis from DATABASE_URL / REDIS_URL, default reaper settings), phone calls on
   both workers, ``kill -9`` of one worker while the other streams an answer. Figures: seconds from
   the kill to the reaper ending the killed calls as lost (must be under 60), their records whole,
   the longest audio gap on the other worker's call around the kill (must be under 100 ms).

The last line is ``RESULT drops=... drop_items_lost=... expiry_gap_p99_ms=... kill_reaped_s=...``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FRAME_MS = 20
UTTERANCE_MS = 800
BASE_HZ, STEP_HZ = 300.0, 80.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class TurnDescriber:
    """The protocol server's transcriber for these runs: "turn K for L" from the tone's pitch and
    length (zero crossings per 20 ms window; silent windows skipped)."""

    async def transcribe(self, data: bytes, audio_format: str) -> str | None:
        from realtime import audio as fmt

        samples = fmt.decode_float(data, audio_format)
        window = fmt.sample_rate(audio_format) * FRAME_MS // 1000
        pitches = []
        for start in range(0, len(samples) - window + 1, window):
            chunk = samples[start:start + window]
            if fmt.rms(chunk) >= 0.05:
                pitches.append(int(np.count_nonzero(np.diff(np.signbit(chunk)))) * 1000 / FRAME_MS / 2)
        if not pitches:
            return None
        turn = round((statistics.median(pitches) - BASE_HZ) / STEP_HZ)
        return f"turn {turn} for {round(len(pitches) * FRAME_MS / 100)}"


@dataclass
class CallRun:
    number: int
    session: Any = None
    client_times: list[tuple[float, str]] = field(default_factory=list)  # (time, client event type)
    recreations: int = 0
    user_texts: list[str] = field(default_factory=list)


async def run_calls(server: Any, calls: int, turns: int, inject: Any = None) -> list[CallRun]:
    """``calls`` concurrent engine calls, each saying ``turns`` utterances in real time."""
    from realtime import audio as fmt
    from realtime import events as ev
    from realtime.config import EngineConfig
    from realtime.session import CallSession
    from tests.engine.factories import SERVER_VAD, retail_spec

    spec = retail_spec(turn_detection=SERVER_VAD)
    runs = [CallRun(n) for n in range(calls)]

    async def one(run: CallRun) -> None:
        async def emit(event: Any) -> None:
            if isinstance(event, ev.ProtocolEvent) and event.direction == "client":
                run.client_times.append((time.monotonic(), str(event.payload.get("type"))))
            elif isinstance(event, ev.SessionRecreated):
                run.recreations += 1

        config = EngineConfig(base_url=server.base_url, api_key=server.api_key, model="gpt-realtime-2",
                              greet_on_start=False, retry_backoff_s=0.05, retry_backoff_max_s=0.2,
                              retry_budget=8, emit_protocol_events=True, protocol_audio_events=True)
        session = run.session = CallSession(spec, config, emit=emit)
        await session.start()
        await asyncio.sleep(random.random() * 0.5)
        frame = fmt.sample_rate(fmt.PCM) * FRAME_MS // 1000 * 2
        next_at = time.monotonic()
        for turn in range(1, turns + 1):
            data = (fmt.tone(UTTERANCE_MS, fmt.PCM, frequency=BASE_HZ + STEP_HZ * turn, amplitude=0.3)
                    + fmt.silence(700, fmt.PCM))
            for offset in range(0, len(data), frame):
                await session.send_audio(data[offset:offset + frame])
                next_at += FRAME_MS / 1000
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(_user_texts(session)) < turns:
            await asyncio.sleep(0.1)
        run.user_texts = _user_texts(session)
        await session.close()

    async def bounded(run: CallRun) -> None:
        try:  # a call that never finishes counts with what it had (its missing items are lost)
            await asyncio.wait_for(one(run), turns * (UTTERANCE_MS + 700) / 1000 * 4 + 30)
        except TimeoutError:
            run.user_texts = _user_texts(run.session) if run.session is not None else []
            print(f"call {run.number} did not finish in time", flush=True)

    injector = asyncio.ensure_future(inject(server)) if inject is not None else None
    try:
        await asyncio.gather(*(bounded(run) for run in runs))
    finally:
        if injector is not None:
            injector.cancel()
    return runs


def _user_texts(session: Any) -> list[str]:
    return [i.text for i in session.transcript if i.role == "user" and i.text]


def caller_gaps(run: CallRun) -> list[float]:
    """Per recreation: ms from the last caller frame before the new session's first event
    (session.update) to the first caller frame after it."""
    gaps = []
    last_append: float | None = None
    opened_after: float | None = None  # the last caller frame before a new session opened
    for index, (moment, kind) in enumerate(run.client_times):
        if kind == "session.update" and index > 0 and last_append is not None and opened_after is None:
            opened_after = last_append
        elif kind == "input_audio_buffer.append":
            if opened_after is not None:
                gaps.append((moment - opened_after) * 1000)
                opened_after = None
            last_append = moment
    return gaps


def score(runs: list[CallRun], turns: int) -> dict[str, Any]:
    expected = [f"turn {k} for {UTTERANCE_MS // 100}" for k in range(1, turns + 1)]
    lost = damaged = repeated = 0
    for run in runs:
        for text in expected:
            count = run.user_texts.count(text)
            lost += count == 0
            repeated += max(0, count - 1)
        damaged += len([t for t in run.user_texts if t not in expected])
    gaps = [g for run in runs for g in caller_gaps(run)]
    return {"recreations": sum(r.recreations for r in runs), "lost": lost, "damaged": damaged,
            "repeated": repeated, "gap_p50": pct(gaps, 50), "gap_p99": pct(gaps, 99), "gap_max": max(gaps, default=0.0),
            "gaps": len(gaps)}


async def drops(calls: int, turns: int, count: int) -> dict[str, Any]:
    from realtime.server.testing import running_server

    seconds = turns * (UTTERANCE_MS + 700) / 1000

    async def inject(server: Any) -> None:
        moments = sorted(random.uniform(0.5, seconds - 0.5) for _ in range(count))
        started = time.monotonic()
        done = 0
        for moment in moments:
            await asyncio.sleep(max(0.0, started + moment - time.monotonic()))
            open_sessions = [s for s in server.sessions if not s.closed]
            if open_sessions:
                await random.choice(open_sessions).drop()
                done += 1
        inject.done = done  # type: ignore[attr-defined]

    async with running_server(transcriber=TurnDescriber(), max_session_seconds=3600.0) as server:
        runs = await run_calls(server, calls, turns, inject)
    result = score(runs, turns)
    result["dropped"] = getattr(inject, "done", 0)
    return result


async def expiry(calls: int, turns: int, session_seconds: float) -> dict[str, Any]:
    from realtime.server.testing import running_server

    async with running_server(transcriber=TurnDescriber(), max_session_seconds=session_seconds) as server:
        runs = await run_calls(server, calls, turns)
    return score(runs, turns)


# --- faults of the processes, on the stack --------------------------------------------------------------


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contactcenter.settings")
    import django

    django.setup()


class StackBench:
    """The stack on this machine's PostgreSQL and Redis (or a private redis-server), with the local
    protocol server in a thread as the upstream."""

    def __init__(self, workdir: Path, redis_url: str = "", **env: str) -> None:
        import threading

        _django()
        from django.conf import settings

        from bench.stack import Stack
        from realtime.server import RealtimeServer

        if "postgresql" not in settings.DATABASES["default"]["ENGINE"] or not settings.REDIS_URL:
            raise SystemExit("the stack faults need PostgreSQL and Redis (DATABASE_URL, REDIS_URL)")
        self.loop = asyncio.new_event_loop()
        self.server = RealtimeServer(api_key="sk-bench-faults")
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.on_server(self.server.start("127.0.0.1", 0))
        environment = {**os.environ, "OPENAI_BASE_URL": self.server.base_url, "OPENAI_API_KEY": "sk-bench-faults",
                       "OFFLINE_ENGINE_URL": self.server.base_url, "LOG_LEVEL": "WARNING", **env}
        if redis_url:
            environment["REDIS_URL"] = redis_url
        for name in ("CALL_HEARTBEAT_SECONDS", "CALL_HEARTBEAT_TIMEOUT_SECONDS", "CALL_REAPER_SECONDS"):
            if name not in env:
                environment.pop(name, None)  # the defaults users get
        self.stack = Stack(environment, workdir / "stack.log").start()

    def on_server(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def add_transcripts(self, text: str) -> None:
        async def add() -> None:
            self.server.add_transcripts(text)

        self.on_server(add())

    def script(self, text: str, *, spoken: bool = True, delay_ms: float = 20) -> None:
        from realtime.server import response

        async def add() -> None:
            if spoken:
                self.server.script(response(text, delay_ms=delay_ms, ms_per_word=20))
            else:
                self.server.script_text(response(text, delay_ms=delay_ms))

        self.on_server(add())

    def close(self) -> None:
        self.stack.stop()
        self.on_server(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)

    async def phones_on_both_workers(self, least: int = 4) -> dict[int, list[Any]]:
        from bench.stack import Phone, place_twilio_call

        holders: dict[int, list[Any]] = {}
        for _ in range(16):
            sid, path = await asyncio.to_thread(place_twilio_call, self.stack.port)
            phone = await Phone(self.stack.port, sid, path).open()
            pid = None
            for _ in range(50):
                pid = self.stack.pid_holding(phone.client_port)
                if pid:
                    break
                await asyncio.sleep(0.2)
            holders.setdefault(pid or 0, []).append(phone)
            if len([p for p in holders if p]) >= 2 and sum(map(len, holders.values())) >= least:
                break
        for phones in holders.values():
            for phone in phones:
                await phone.quiet()
        return holders

    async def stream_long_answer(self, phone: Any) -> None:
        """The agent starts a long answer (a frame every 20 ms) on ``phone``'s call."""
        self.script(" ".join(["one", "two", "three", "four", "five", "six", "seven", "eight"] * 12))
        streaming = len(phone.arrivals)
        await phone.say()
        while len(phone.arrivals) <= streaming + 10:
            await asyncio.sleep(0.02)


async def _hang_up_all(holders: dict[int, list[Any]]) -> None:
    for phones in holders.values():
        for phone in phones:
            if not phone.closed.is_set():
                await phone.hang_up()


def kill(workdir: Path) -> dict[str, Any]:
    _django()
    from calls.models import Call, TranscriptItem

    bench = StackBench(workdir)

    async def scenario() -> dict[str, Any]:
        holders = await bench.phones_on_both_workers()
        try:
            (victim_pid, victims), (_, survivors) = sorted(
                ((p, c) for p, c in holders.items() if p), key=lambda kv: -len(kv[1]))[:2]
            bench.add_transcripts("my order number is 4417")
            heard = len(victims[0].arrivals)
            await victims[0].say()
            while len(victims[0].arrivals) <= heard:
                await asyncio.sleep(0.05)
            await victims[0].quiet()
            await bench.stream_long_answer(survivors[0])
            os.kill(victim_pid, 9)
            killed = time.monotonic()
            await asyncio.sleep(1.5)
            gap = survivors[0].max_gap_ms(killed - 0.3, time.monotonic())
            return {"victims": [p.call_sid for p in victims], "survivors": [p.call_sid for p in survivors],
                    "killed": killed, "gap": gap}
        finally:
            await _hang_up_all(holders)

    try:
        result = asyncio.run(scenario())
        deadline = result["killed"] + 120
        reaped_s = None
        while time.monotonic() < deadline:
            if not Call.objects.filter(external_id__in=result["victims"]).exclude(status=Call.Status.ENDED).exists():
                reaped_s = time.monotonic() - result["killed"]
                break
            time.sleep(0.5)
        lost = Call.objects.filter(external_id__in=result["victims"], end_reason="lost").count()
        talked = Call.objects.get(external_id=result["victims"][0])
        turns = list(TranscriptItem.objects.filter(call=talked).order_by("created_at", "id")
                     .values_list("role", "text"))
        whole = ("user", "my order number is 4417") in turns and turns[-1] == (
            "assistant", "I heard: my order number is 4417")
        survivors_lost = Call.objects.filter(external_id__in=result["survivors"], end_reason="lost").count()
    finally:
        bench.close()
    return {"calls": len(result["victims"]) + len(result["survivors"]), "killed_calls": len(result["victims"]),
            "reaped_s": reaped_s if reaped_s is not None else float("inf"), "lost": lost, "records_whole": whole,
            "survivor_gap_ms": result["gap"], "survivors_lost": survivors_lost}


def celery(workdir: Path) -> dict[str, Any]:
    """kill -9 of the Celery process running a post-call summary (the model is slow to answer);
    the worker starts a new process, the task is delivered again; each summary exists once."""
    import subprocess

    _django()
    from calls.models import Call, Summary

    bench = StackBench(workdir)
    try:
        async def calls() -> list[str]:
            holders = await bench.phones_on_both_workers(least=3)
            sids = [p.call_sid for phones in holders.values() for p in phones]
            for _ in sids:  # each summary: the model takes 4 s to answer
                bench.script('{"summary": "The caller asked about an order.", "disposition": "resolved"}',
                             spoken=False, delay_ms=4000)
            await _hang_up_all(holders)
            return sids

        sids = asyncio.run(calls())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not Call.objects.filter(external_id__in=sids).exclude(
                summary_task_id="").exists():
            time.sleep(0.1)
        master = bench.stack.celery_worker_pid()
        pool = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True,
                              check=False).stdout.split()
        for pid in pool:
            os.kill(int(pid), 9)
        killed = len(pool)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and Summary.objects.filter(
                call__external_id__in=sids, kind=Summary.Kind.POST_CALL).values("call").distinct().count() < len(sids):
            time.sleep(0.5)
        time.sleep(3)
        counts = [Summary.objects.filter(call__external_id=sid, kind=Summary.Kind.POST_CALL).count() for sid in sids]
    finally:
        bench.close()
    return {"calls": len(sids), "killed_processes": killed, "exactly_once": sum(c == 1 for c in counts),
            "missing": sum(c == 0 for c in counts), "repeated": sum(max(0, c - 1) for c in counts)}


def redis_restart(workdir: Path) -> dict[str, Any]:
    """A private redis-server under the stack is stopped and started again while calls talk: the
    agent's audio on a call keeps flowing (audio never crosses Redis); the calls go on."""
    import shutil
    import subprocess

    _django()
    from bench.stack import free_port
    from calls.models import Call

    server_bin = shutil.which("redis-server")
    if server_bin is None:
        raise SystemExit("the redis fault needs redis-server")
    port = free_port()
    argv = [server_bin, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]

    def start_redis() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
            time.sleep(0.05)
        return proc

    redis_proc = start_redis()
    bench = StackBench(workdir, redis_url=f"redis://127.0.0.1:{port}/0")
    try:
        async def scenario() -> dict[str, Any]:
            holders = await bench.phones_on_both_workers(least=2)
            try:
                phones = [p for ps in holders.values() for p in ps]
                await bench.stream_long_answer(phones[0])
                nonlocal redis_proc
                redis_proc.kill()
                redis_proc.wait(5)
                stopped = time.monotonic()
                await asyncio.sleep(0.5)
                redis_proc = start_redis()
                await asyncio.sleep(1.0)
                gap = phones[0].max_gap_ms(stopped - 0.3, time.monotonic())
                # After the restart a caller still talks to the agent.
                bench.add_transcripts("are you still there")
                heard = len(phones[-1].arrivals)
                await phones[-1].say()
                answered = False
                for _ in range(100):
                    if len(phones[-1].arrivals) > heard:
                        answered = True
                        break
                    await asyncio.sleep(0.1)
                closed_early = sum(p.closed.is_set() for p in phones)
                return {"sids": [p.call_sid for p in phones], "gap": gap, "answered": answered,
                        "closed_early": closed_early}
            finally:
                await _hang_up_all(holders)

        result = asyncio.run(scenario())
        time.sleep(2)
        reasons = list(Call.objects.filter(external_id__in=result["sids"]).values_list("end_reason", flat=True))
    finally:
        bench.close()
        redis_proc.kill()
    return {**result, "end_reasons": reasons}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="drops,expiry,kill,celery,redis")
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--drops", type=int, default=100)
    parser.add_argument("--session-seconds", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args(argv)
    random.seed(args.seed)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    only = set(args.only.split(","))
    fields_: list[str] = []
    if "drops" in only:
        r = asyncio.run(drops(args.calls, args.turns, args.drops))
        print(f"drops: {r['dropped']} drops over {args.calls} calls x {args.turns} turns: {r['recreations']} "
              f"recoveries; transcript items lost {r['lost']}, damaged {r['damaged']}, repeated {r['repeated']}; "
              f"caller-side gap p50 {r['gap_p50']:.0f} ms, p99 {r['gap_p99']:.0f} ms ({r['gaps']} gaps)", flush=True)
        fields_ += [f"drops={r['dropped']}", f"drop_recoveries={r['recreations']}", f"drop_items_lost={r['lost']}",
                    f"drop_items_damaged={r['damaged']}", f"drop_items_repeated={r['repeated']}",
                    f"drop_gap_p99_ms={r['gap_p99']:.0f}"]
    if "expiry" in only:
        r = asyncio.run(expiry(args.calls, args.turns, args.session_seconds))
        print(f"expiry: sessions end every {args.session_seconds:g} s, {args.calls} calls x {args.turns} turns: "
              f"{r['recreations']} recreations; caller-side gap p50 {r['gap_p50']:.0f} ms, p99 {r['gap_p99']:.0f} ms, "
              f"max {r['gap_max']:.0f} ms; items lost {r['lost']}, damaged {r['damaged']}, repeated {r['repeated']}",
              flush=True)
        fields_ += [f"expiry_recreations={r['recreations']}", f"expiry_gap_p50_ms={r['gap_p50']:.0f}",
                    f"expiry_gap_p99_ms={r['gap_p99']:.0f}", f"expiry_items_lost={r['lost']}",
                    f"expiry_items_damaged={r['damaged']}", f"expiry_items_repeated={r['repeated']}"]
    if "kill" in only:
        with tempfile.TemporaryDirectory(prefix="bench-faults-") as workdir:
            r = kill(Path(workdir))
        print(f"kill: {r['calls']} phone calls on two workers, kill -9 of the worker holding {r['killed_calls']}: "
              f"reaped as lost after {r['reaped_s']:.1f} s ({r['lost']}/{r['killed_calls']} lost), records whole: "
              f"{r['records_whole']}; the other worker's caller: longest audio gap {r['survivor_gap_ms']:.0f} ms, "
              f"calls lost there {r['survivors_lost']}", flush=True)
        fields_ += [f"kill_reaped_s={r['reaped_s']:.1f}", f"kill_records_whole={int(r['records_whole'])}",
                    f"kill_survivor_gap_ms={r['survivor_gap_ms']:.0f}"]
    if "celery" in only:
        with tempfile.TemporaryDirectory(prefix="bench-faults-") as workdir:
            r = celery(Path(workdir))
        print(f"celery: {r['calls']} calls ended, their summaries' Celery process killed mid-summary "
              f"({r['killed_processes']} processes): exactly once {r['exactly_once']}/{r['calls']}, "
              f"missing {r['missing']}, repeated {r['repeated']}", flush=True)
        fields_ += [f"celery_summaries_once={r['exactly_once']}/{r['calls']}", f"celery_missing={r['missing']}",
                    f"celery_repeated={r['repeated']}"]
    if "redis" in only:
        with tempfile.TemporaryDirectory(prefix="bench-faults-") as workdir:
            r = redis_restart(Path(workdir))
        print(f"redis: restarted mid-call (no persistence): longest agent-audio gap {r['gap']:.0f} ms, a caller "
              f"answered after it: {r['answered']}, calls cut: {r['closed_early']}, end reasons {r['end_reasons']}",
              flush=True)
        fields_ += [f"redis_audio_gap_ms={r['gap']:.0f}", f"redis_answered_after={int(r['answered'])}",
                    f"redis_calls_cut={r['closed_early']}"]
    print("RESULT " + " ".join(fields_))


if __name__ == "__main__":
    main()
