"""The after-commit publisher inside the server: actions hand their events to the server loop and
return at once; the loop sends them in commit order; a stalled layer queues them up to a limit,
then drops the oldest (the CallEvent log keeps them all)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from asgiref.sync import sync_to_async

from calls import publish
from calls.publish import Publisher


class SlowLayer:
    """A channel layer whose sends take a while (what a stalled Redis looks like from here)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.sent: list[tuple[str, int]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        await self.gate.wait()
        await asyncio.sleep(self.delay)
        self.sent.append((group, message["seq"]))


async def test_a_thread_of_the_server_hands_events_over_without_waiting_and_they_go_in_order() -> None:
    layer = SlowLayer(delay=0.01)
    publisher = Publisher()

    server_loop = asyncio.get_running_loop()
    publish.bind_server_loop()  # what the ASGI application does for each connection

    def writer() -> float:
        loop = publish._server_loop()
        assert loop is server_loop  # a thread launched from the server's loop by sync_to_async
        began = time.perf_counter()
        for seq in range(1, 51):
            publisher.submit(loop, layer, f"call.{seq % 3}", {"type": "call.event", "seq": seq})
        return time.perf_counter() - began

    took = await sync_to_async(writer, thread_sensitive=False)()
    assert took < 0.25  # 50 sends at 10 ms each would take 0.5 s: the writer did not wait for them
    for _ in range(200):
        if len(layer.sent) == 50:
            break
        await asyncio.sleep(0.01)
    assert [seq for _, seq in layer.sent] == list(range(1, 51))
    assert publisher.pending() == 0


async def test_past_the_limit_the_oldest_unsent_events_are_dropped() -> None:
    layer = SlowLayer(delay=0)
    layer.gate.clear()  # the layer is stalled
    publisher = Publisher(limit=5)
    loop = asyncio.get_running_loop()
    publisher.submit(loop, layer, "call.1", {"type": "call.event", "seq": 1})
    await asyncio.sleep(0.05)  # the first event is being sent (and waits for the layer)
    for seq in range(2, 13):
        publisher.submit(loop, layer, "call.1", {"type": "call.event", "seq": seq})
    await asyncio.sleep(0.05)
    # The first event is in flight; of the rest, only the newest five still wait.
    assert publisher.pending() == 5 and publisher.dropped == 6
    layer.gate.set()
    for _ in range(100):
        if len(layer.sent) == 6:
            break
        await asyncio.sleep(0.01)
    assert [seq for _, seq in layer.sent] == [1, 8, 9, 10, 11, 12]


def test_outside_the_server_actions_publish_before_returning() -> None:
    assert publish._server_loop() is None  # a Celery task or a command: no server loop to hand over to


async def test_a_thread_of_an_unmarked_loop_sends_itself() -> None:
    """Only connections the server marked hand their events over; other loops' threads send directly."""
    assert await sync_to_async(publish._server_loop, thread_sensitive=False)() is None
