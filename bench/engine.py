"""Benchmark of the voice engine against the local protocol server, in-process.

``python -m bench.engine`` reports
- the engine's own overhead per caller audio frame (20 ms of 24 kHz PCM16): the time spent in
  ``CallSession.send_audio`` minus the time inside the WebSocket send (the network is excluded);
- the engine's own overhead per server event: the time spent in the session's event handling
  (transcript, audio, usage, guardrail checks, the raw protocol copy), the socket read excluded;
- the input tokens of the response at caller turns 5, 20 and 50, without and with rolling
  summaries (summarize every 5 turns, the server's token accounting).
The last line is ``RESULT engine_frame_p50_us=... ... tokens_t50_summary=...``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from realtime import events as ev
from realtime.config import EngineConfig
from realtime.server import RealtimeServer, response
from realtime.server.testing import running_server
from realtime.session import CallSession
from realtime.spec import AgentSpec, Guardrails, Limits, ScenarioSpec

FRAME = b"\x00\x00" * 480  # 20 ms of 24 kHz PCM16 silence (no VAD turn is started)


def _spec(modality: str, summarize_every: int) -> ScenarioSpec:
    session = {
        "type": "realtime",
        "instructions": "You are the front desk of a retail store. Be brief and friendly.",
        "output_modalities": [modality],
        "audio": {"input": {"turn_detection": None}, "output": {"voice": "marin"}},
        "tools": [],
        "tool_choice": "auto",
    }
    agent = AgentSpec(
        slug="front", name="Front", kind="realtime", instructions=session["instructions"], handoff_description="",
        model="", voice="marin", tool_choice="auto", tools=(), session=session,
    )
    return ScenarioSpec(
        slug="bench", name="Bench", root_agent="front", agents={"front": agent},
        limits=Limits(summarize_every_turns=summarize_every),
        guardrails=Guardrails(blocked_phrases=("guaranteed refund",), patterns=(r"\b\d{16}\b",)),
    )


def _config(server: RealtimeServer) -> EngineConfig:
    return EngineConfig(base_url=server.base_url, api_key=server.api_key or "sk-bench", model="gpt-realtime-2")


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class _Waiter:
    def __init__(self) -> None:
        self.events: list[ev.EngineEvent] = []
        self.usage: list[ev.Usage] = []
        self.changed = asyncio.Event()

    async def __call__(self, event: ev.EngineEvent) -> None:
        if isinstance(event, ev.Usage):
            self.usage.append(event)
            self.changed.set()

    async def responses(self, count: int, timeout: float = 10.0) -> None:
        async def loop() -> None:
            while len(self.usage) < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(loop(), timeout)


async def bench_frames(server: RealtimeServer, frames: int) -> list[float]:
    waiter = _Waiter()
    session = CallSession(_spec("text", 0), _config(server), emit=waiter)
    server.script(response("Hello."))
    await session.start()
    await waiter.responses(1)
    conn = session._conn
    assert conn is not None
    inner = [0]
    original = conn.send_json

    async def timed_send(data: str) -> None:
        started = time.perf_counter_ns()
        await original(data)
        inner[0] += time.perf_counter_ns() - started

    conn.send_json = timed_send  # type: ignore[method-assign]
    samples: list[float] = []
    for _ in range(frames):
        inner[0] = 0
        started = time.perf_counter_ns()
        await session.send_audio(FRAME)
        samples.append((time.perf_counter_ns() - started - inner[0]) / 1000.0)
    await session.close("bench")
    return samples


async def bench_events(server: RealtimeServer, turns: int) -> list[float]:
    waiter = _Waiter()
    session = CallSession(_spec("audio", 5), _config(server), emit=waiter)
    samples: list[float] = []
    handle = session._on_server_event

    async def timed(event: Any) -> None:
        started = time.perf_counter_ns()
        await handle(event)
        samples.append((time.perf_counter_ns() - started) / 1000.0)

    session._on_server_event = timed  # type: ignore[method-assign]
    sentence = "Thanks for calling, your order has shipped and should arrive by Thursday afternoon."
    server.script(*[response(sentence, ms_per_word=40) for _ in range(turns + 1)])
    await session.start()
    await waiter.responses(1)
    for n in range(turns):
        await session.send_text(f"Question {n}: where is my order?")
        await waiter.responses(n + 2)
    await session.close("bench")
    return samples


async def bench_tokens(server: RealtimeServer, turns: int, summarize_every: int) -> dict[int, int]:
    waiter = _Waiter()
    session = CallSession(_spec("text", summarize_every), _config(server), emit=waiter)
    await session.start()
    await waiter.responses(1)
    for n in range(turns):
        await session.send_text(
            f"Question {n} is about my order. I ordered a blue kettle and two mugs on day {n}, paid by card, "
            "and would like to know whether it has shipped and when it will arrive at my flat."
        )
        await waiter.responses(n + 2)
    await session.close("bench")
    # Response 0 is the greeting; response n answers caller turn n.
    return {n: waiter.usage[n].tokens["input_tokens"] for n in (5, 20, 50) if n < len(waiter.usage)}


async def main(frames: int, event_turns: int) -> str:
    async with running_server(validate_outgoing=False) as server:
        frame_us = await bench_frames(server, frames)
        event_us = await bench_events(server, event_turns)
        plain = await bench_tokens(server, 50, 0)
        summarized = await bench_tokens(server, 50, 5)
    print(f"audio frames: {len(frame_us)}  engine overhead p50 {_pct(frame_us, 0.5):.1f} us  p99 {_pct(frame_us, 0.99):.1f} us")
    print(f"server events: {len(event_us)}  engine overhead p50 {_pct(event_us, 0.5):.1f} us  p99 {_pct(event_us, 0.99):.1f} us"
          f"  mean {statistics.fmean(event_us):.1f} us")
    print("input tokens per response at caller turn:   5     20     50")
    print(f"  without rolling summaries            {plain[5]:>6} {plain[20]:>6} {plain[50]:>6}")
    print(f"  with summaries every 5 turns         {summarized[5]:>6} {summarized[20]:>6} {summarized[50]:>6}")
    return (
        f"RESULT engine_frame_p50_us={_pct(frame_us, 0.5):.1f} engine_frame_p99_us={_pct(frame_us, 0.99):.1f} "
        f"event_p50_us={_pct(event_us, 0.5):.1f} event_p99_us={_pct(event_us, 0.99):.1f} "
        f"tokens_t5={plain[5]} tokens_t20={plain[20]} tokens_t50={plain[50]} "
        f"tokens_t5_summary={summarized[5]} tokens_t20_summary={summarized[20]} tokens_t50_summary={summarized[50]}"
    )


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--event-turns", type=int, default=20)
    args = parser.parse_args()
    print(asyncio.run(main(args.frames, args.event_turns)))


if __name__ == "__main__":
    run()

