"""The fuzz suite's peers, in a process of their own so the fuzzer's work never delays them:
the local protocol server (the calls' upstream), and one good browser call that measures how
evenly its agent audio arrives while the sockets and webhooks around it are being fuzzed.

The good call is a conversation: each agent turn is GOOD_TURN_WORDS words of audio at real-time
pace (20 ms of audio every 20 ms); when a turn is done the caller types the next one. The gaps
measured are those between consecutive audio frames of the same agent turn (between turns the
line is quiet by design). ``max_gap_net_ms`` is the largest gap less the time this process's own
event loop was seen running late inside it (it measures the platform, not the peer's starvation
on a shared machine).

``python -m tests.security.fuzz_peer``; it speaks JSON lines:
  out {"base_url", "api_key"}                 the upstream is listening
  in  {"ws_url", "cookie", "origin"}          open the good call
  out {"started": true, "call_id"}            its first agent audio arrived
  in  "stop"                                  hang up
  out {"audio_frames", "turns", "max_gap_ms", "max_gap_net_ms", "p99_gap_ms", "median_gap_ms", ...}
  in  EOF                                     the upstream stops
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import Any

import websockets

from realtime.server import RealtimeServer, response

GOOD_TURN_WORDS = 150  # three seconds of agent audio per turn
GOOD_TURNS = 200


def say(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


async def read_line() -> str:
    return (await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)).strip()


def agent_turn(n: int) -> Any:
    return response(" ".join([f"turn{n}"] * GOOD_TURN_WORDS), delay_ms=20, ms_per_word=20)


async def loop_lag(lags: list[tuple[float, float]]) -> None:
    """How late this process's own event loop wakes up (a starved peer, not a slow server)."""
    while True:
        before = time.monotonic()
        await asyncio.sleep(0.01)
        late = (time.monotonic() - before - 0.01) * 1000
        if late > 15:
            lags.append((round(time.time(), 2), round(late, 1)))


def net_of_own_lateness(gaps: list[tuple[float, float]], lags: list[tuple[float, float]]) -> list[float]:
    """Each gap less the time this process's own event loop was measured running late within it
    (the machine did not run the peer: the frames may have been waiting for it, not late)."""
    net = []
    for gap, ended in gaps:
        late = sum(ms for at, ms in lags if ended - gap / 1000 - 0.01 <= at <= ended + 0.01)
        net.append(max(0.0, gap - late))
    return net


async def good_call(server: RealtimeServer, ws_url: str, cookie: str, origin: str) -> None:
    gaps: list[tuple[float, float]] = []  # (gap ms, wall time it ended)
    lags: list[tuple[float, float]] = []
    lag_task = asyncio.ensure_future(loop_lag(lags))
    stop = asyncio.ensure_future(read_line())
    call_id, item, last, frames, turns, scripted = None, None, 0.0, 0, 0, False
    async with websockets.connect(ws_url, additional_headers={"Cookie": cookie, "Origin": origin},
                                  max_size=None) as ws:
        try:
            while not stop.done():
                receive = asyncio.ensure_future(ws.recv())
                done, _ = await asyncio.wait({receive, stop}, return_when=asyncio.FIRST_COMPLETED)
                if receive not in done:
                    receive.cancel()
                    with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                        await receive
                    break
                frame, now = receive.result(), time.monotonic()
                if not scripted and server.sessions:  # the call's own turns, not the fuzzed calls'
                    server.sessions[0].script(*[agent_turn(n) for n in range(1, GOOD_TURNS)])
                    scripted = True
                if isinstance(frame, bytes):
                    if frames == 0:
                        say({"started": True, "call_id": call_id})
                    if last:
                        gaps.append(((now - last) * 1000, time.time()))
                    last, frames = now, frames + 1
                    continue
                message = json.loads(frame)
                if message.get("type") == "call":
                    call_id = message["call_id"]
                elif message.get("type") == "audio" and message.get("item_id") != item:
                    item, last = message.get("item_id"), 0.0  # a new agent turn: its first frame starts afresh
                elif message.get("type") == "event" and message["event"].get("type") == "transcript.done" \
                        and message["event"].get("role") == "assistant":
                    turns += 1
                    await ws.send(json.dumps({"type": "text", "text": "Please go on."}))
                elif message.get("type") == "ended":
                    break
            await ws.send(json.dumps({"type": "hangup"}))
            async for _ in ws:
                pass
        except websockets.ConnectionClosed:
            pass
    lag_task.cancel()
    ordered = sorted(g for g, _ in gaps)
    net = sorted(net_of_own_lateness(gaps, lags))
    say({"audio_frames": frames, "turns": turns,
         "max_gap_ms": round(ordered[-1], 1) if ordered else None,
         "p99_gap_ms": round(ordered[int(len(ordered) * 0.99)], 1) if ordered else None,
         "median_gap_ms": round(ordered[len(ordered) // 2], 1) if ordered else None,
         "max_gap_net_ms": round(net[-1], 1) if net else None,
         "worst_gaps": [(round(g, 1), round(t, 2)) for g, t in sorted(gaps)[-5:]], "peer_loop_lag": lags[-10:],
         "close_code": ws.close_code, "ended_early": not stop.done(), "call_id": call_id})


async def main() -> None:
    server = RealtimeServer(api_key="sk-fuzz-peer", max_session_seconds=600.0)
    server.script(agent_turn(0))  # the good call's greeting: it is the only session then
    await server.start("127.0.0.1", 0)
    say({"base_url": server.base_url, "api_key": server.api_key})
    request = json.loads(await read_line())
    await good_call(server, request["ws_url"], request["cookie"], request["origin"])
    while await read_line():
        pass
    await server.stop()


if __name__ == "__main__":
    asyncio.run(main())
