"""A Redis restart (no persistence) under a worker: a channel's receive waits instead of raising,
and once Redis is back the worker's channels are in their groups again, so a group message sent
after the restart arrives."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from contactcenter.layers import ResilientRedisChannelLayer

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


class PrivateRedis:
    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None


@pytest.fixture
def redis_server() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_receive_outlives_a_redis_restart_and_groups_come_back(redis_server: PrivateRedis) -> None:
    layer = ResilientRedisChannelLayer(hosts=[{"address": f"redis://127.0.0.1:{redis_server.port}/0"}])
    channel = await layer.new_channel()
    await layer.group_add("call.7", channel)
    await layer.group_send("call.7", {"type": "call.event", "n": 1})
    assert (await asyncio.wait_for(layer.receive(channel), 5))["n"] == 1

    receiving = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0.2)
    redis_server.stop()  # everything Redis held is gone, the group included
    await asyncio.sleep(1.0)
    assert not receiving.done()  # waiting, not failed
    redis_server.start()
    await asyncio.sleep(1.5)  # the receive loop reconnects and adds the channel back to its group
    await layer.group_send("call.7", {"type": "call.event", "n": 2})
    message = await asyncio.wait_for(receiving, 10)
    assert message["n"] == 2
    await layer.group_discard("call.7", channel)
    assert channel not in layer.memberships
    await layer.flush()
