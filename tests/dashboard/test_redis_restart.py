"""Dashboards through a Redis restart (a private redis-server without persistence, as the channel
layer): the sockets stay open, and once Redis answers again a call's socket sends the events that
were published while it was away, from the event log, in order, with no event lost or sent twice,
without waiting for a later event; the calls list gets a fresh snapshot."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async

from calls import actions
from calls.models import Call
from tests.dashboard.conftest import close, dashboard_socket
from tests.platform.test_channel_layer_restart import PrivateRedis

SPEC = {"slug": "retail", "root_agent": "authentication", "hash": "d" * 64, "limits": {}, "agents": {}}

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")]


@pytest.fixture
def private_layer(settings: Any) -> Iterator[PrivateRedis]:
    from channels.layers import channel_layers

    server = PrivateRedis()
    server.start()
    settings.CHANNEL_LAYERS = {"default": {
        "BACKEND": "contactcenter.layers.ResilientRedisChannelLayer",
        "CONFIG": {"hosts": [{"address": f"redis://127.0.0.1:{server.port}/0", "socket_timeout": 30}],
                   "capacity": 1000, "expiry": 30}}}
    channel_layers.backends.clear()
    try:
        yield server
    finally:
        server.stop()
        channel_layers.backends.clear()


def say(call_id: int, n: int) -> None:
    actions.do_record_transcript(call_id, item_id=f"item_{n}", role="user", text=f"turn {n}", agent="authentication")


def events(client: Any) -> list[dict[str, Any]]:
    return [f for f in client.texts() if f.get("type") == "event"]


async def test_dashboards_catch_up_from_the_log_after_a_redis_restart(supervisor: Any,
                                                                       private_layer: PrivateRedis) -> None:
    call = await database_sync_to_async(actions.do_start_call)(channel=Call.Channel.BROWSER, spec=SPEC)
    watcher, connected = await dashboard_socket(supervisor, f"/ws/dashboard/calls/{call.pk}/?last_seq=0")
    assert connected
    board, connected = await dashboard_socket(supervisor, "/ws/dashboard/")
    assert connected
    await watcher.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "snapshot")
    await board.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "snapshot")
    for n in (2, 3):
        await database_sync_to_async(say)(call.pk, n)
    await watcher.wait_for(lambda f: isinstance(f, dict) and f.get("seq") == 3 and f.get("type") == "event")

    private_layer.stop()  # everything Redis held is gone: groups, queued messages
    await asyncio.sleep(0.5)
    for n in (4, 5, 6):  # logged, but their messages go nowhere
        await database_sync_to_async(say)(call.pk, n)
    await database_sync_to_async(actions.do_end_call)(call.pk, "caller_hung_up")  # seq 7, a row change
    await asyncio.sleep(0.5)
    assert [f["seq"] for f in events(watcher)] == [2, 3]
    private_layer.start()

    # No new event is needed: the socket is told Redis is back and sends what it missed.
    await watcher.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "event" and f["seq"] == 7, timeout=15)
    seen = events(watcher)
    assert [f["seq"] for f in seen] == [2, 3, 4, 5, 6, 7]
    assert [f["event"].get("text") for f in seen[:5]] == [f"turn {n}" for n in range(2, 7)]
    assert seen[-1]["event"]["type"] == "call_ended"
    fresh = await board.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "snapshot"
                                 and any(r["id"] == call.pk and r["status"] == "ended" for r in f["recent"]),
                                 timeout=15)
    assert fresh

    # Live delivery works again, and nothing already sent comes twice.
    await database_sync_to_async(actions.do_record_latency)(call.pk, voice_to_voice_ms=321)
    await watcher.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "event" and f["seq"] == 8)
    await asyncio.sleep(0.3)
    assert [f["seq"] for f in events(watcher)] == [2, 3, 4, 5, 6, 7, 8]
    await close(watcher)
    await close(board)
