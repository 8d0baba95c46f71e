"""kill -9 of one daphne worker in the middle of calls, on the stack users run (`scripts/stack`):

- before the kill, `/metrics` from either worker shows both workers' live calls;
- the killed worker's calls are ended as lost by the reaper (here within the heartbeat timeout plus
  the reaper's period, set short for the test), with every record up to the kill;
- the other worker's call keeps its audio: no gap over 100 ms while the first worker dies;
- the run command starts a new worker, and the dead one's live calls stop counting in `/metrics`.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import signal
import time
from typing import Any

import httpx
import pytest

from bench.stack import Phone, Stack, place_twilio_call
from calls.models import Call, TranscriptItem
from tests.calls import conftest as calls_conftest

from .conftest import METRICS_TOKEN

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

#: Polls every 0.2 s: the stack's processes are read from /proc.
wait_for = functools.partial(calls_conftest.wait_for, interval=0.2)

LONG = " ".join(["one", "two", "three", "four", "five", "six", "seven", "eight"] * 12)


def live_calls(port: int) -> dict[str, float]:
    """contactcenter_live_calls by worker pid, as one scrape of /metrics reports them."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
                     timeout=10).text
    found: dict[str, float] = {}
    for labels, value in re.findall(r"^contactcenter_live_calls\{([^}]*)\} (\S+)$", text, re.MULTILINE):
        worker = re.search(r'worker="(\d+)"', labels)
        if worker:
            found[worker.group(1)] = found.get(worker.group(1), 0.0) + float(value)
    return found


def test_kill_9_of_one_worker_mid_call(stack: Stack, threaded_realtime_server: Any) -> None:
    server = threaded_realtime_server

    async def scenario() -> dict[str, Any]:
        phones: dict[int, list[Phone]] = {}
        every: list[Phone] = []
        try:
            for _ in range(16):  # calls until both workers hold at least one
                sid, path = await asyncio.to_thread(place_twilio_call, stack.port)
                phone = await Phone(stack.port, sid, path).open()
                every.append(phone)
                pid = await asyncio.to_thread(wait_for, lambda p=phone: stack.pid_holding(p.client_port), 10)
                phones.setdefault(pid, []).append(phone)
                if len(phones) == 2:
                    break
            assert len(phones) == 2, f"every call went to one worker: {list(phones)}"
            for phone in every:
                await phone.quiet()  # the greeting was heard
            (victim_pid, victims), (survivor_pid, survivors) = sorted(phones.items(), key=lambda kv: -len(kv[1]))[:2]
            scraped = await asyncio.to_thread(live_calls, stack.port)
            # One conversation turn on a call of the worker about to die: heard in full before the kill.
            server.call(_add_transcripts(server.server, "my order number is 4417"))
            heard_from = len(victims[0].arrivals)
            await victims[0].say()
            await asyncio.to_thread(wait_for, lambda: len(victims[0].arrivals) > heard_from, 10)
            await victims[0].quiet()
            # A long answer streams to a call on the other worker; the kill lands in the middle of it.
            server.call(_script(server.server, LONG))
            await survivors[0].say()
            streaming_from = len(survivors[0].arrivals)
            await asyncio.to_thread(wait_for, lambda: len(survivors[0].arrivals) > streaming_from + 10, 10)
            os.kill(victim_pid, signal.SIGKILL)
            killed_at = time.monotonic()
            await asyncio.sleep(1.0)
            gap = survivors[0].max_gap_ms(killed_at - 0.3, time.monotonic())
            frames_after = len([t for t in survivors[0].arrivals if t > killed_at])
            return {"scraped": scraped, "victim_pid": victim_pid, "survivor_pid": survivor_pid,
                    "victims": [p.call_sid for p in victims], "survivors": [p.call_sid for p in survivors],
                    "killed_at": killed_at, "gap": gap, "frames_after": frames_after,
                    "victim_closed": [p.close_code for p in victims]}
        finally:
            for phone in every:
                if phone.ws is not None and phone.client_port and not phone.closed.is_set():
                    await phone.hang_up()

    result = asyncio.run(scenario())
    victim_pid, survivor_pid = str(result["victim_pid"]), str(result["survivor_pid"])

    # Before the kill, one scrape answered for both workers.
    assert result["scraped"].get(victim_pid) == len(result["victims"]), result["scraped"]
    assert result["scraped"].get(survivor_pid) == len(result["survivors"]), result["scraped"]

    # The other worker's caller heard the answer go on through the kill.
    assert result["frames_after"] > 10
    assert result["gap"] < 100, f"audio gap of {result['gap']:.0f} ms on the surviving worker"

    # The killed worker's calls: ended as lost by the reaper, records up to the kill.
    victims = list(Call.objects.filter(external_id__in=result["victims"]))
    bound = 4 + 1 + 1 + 5  # heartbeat timeout + reaper period + heartbeat period + slack for a loaded machine

    def all_lost() -> bool:
        return all(c.status == Call.Status.ENDED for c in Call.objects.filter(pk__in=[v.pk for v in victims]))

    assert wait_for(all_lost, bound + 10), "the reaper did not end the killed worker's calls"
    for call in Call.objects.filter(pk__in=[v.pk for v in victims]):
        assert call.end_reason == "lost"
    talked = Call.objects.get(external_id=result["victims"][0])
    turns = list(TranscriptItem.objects.filter(call=talked).order_by("created_at", "id").values_list("role", "text"))
    assert turns[0][0] == "assistant" and turns[0][1]  # the greeting
    assert ("user", "my order number is 4417") in turns
    assert turns[-1] == ("assistant", "I heard: my order number is 4417")

    # The run command started a new worker; the dead one no longer counts.
    assert wait_for(lambda: len(stack.daphne_pids()) == 2 and int(victim_pid) not in stack.daphne_pids(), 30)
    after = wait_for(lambda: victim_pid not in live_calls(stack.port) and live_calls(stack.port), 30)
    assert after and victim_pid not in after
    assert Call.objects.filter(external_id__in=result["survivors"], status=Call.Status.ENDED).count() == len(
        result["survivors"])  # hung up by the test, ended normally
    assert not Call.objects.filter(external_id__in=result["survivors"], end_reason="lost").exists()


async def _add_transcripts(server: Any, text: str) -> None:
    server.add_transcripts(text)


async def _script(server: Any, text: str) -> None:
    from realtime.server import response

    server.script(response(text, delay_ms=20, ms_per_word=20))
