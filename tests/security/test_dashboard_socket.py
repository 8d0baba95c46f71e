"""Finding 11: deeply nested JSON on the dashboard call socket is answered with a clear close
(4400), and the socket's group membership is removed on every exit path (clean close, refused
frame, or the server cancelling the consumer)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from calls.actions import do_start_call
from calls.events import DASHBOARD_GROUP
from calls.models import Call, call_events_group
from tests.dashboard.conftest import dashboard_socket

pytestmark = pytest.mark.django_db(transaction=True)


async def group_members(group: str) -> list[str]:
    """Who Redis (or the in-memory layer) has in the channel group right now."""
    layer = get_channel_layer()
    if hasattr(layer, "groups"):  # InMemoryChannelLayer
        return list(layer.groups.get(group, {}))
    connection = layer.connection(layer.consistent_hash(group))
    return [m.decode() for m in await connection.zrange(layer._group_key(group), 0, -1)]


async def a_call() -> int:
    call = await database_sync_to_async(do_start_call)(channel=Call.Channel.BROWSER, spec={"slug": "retail"})
    return call.pk


@pytest.mark.parametrize("frame", ["[" * 20_000 + "]" * 20_000, '{"a":' * 5_000 + "1" + "}" * 5_000,
                                   '{"type": "action", "action": "whisper", "text": ' + "[" * 40 + "]" * 40 + "}"])
async def test_deep_json_closes_the_call_socket_clearly(live_demo: Any, supervisor: Any, frame: str) -> None:
    call_id = await a_call()
    before = set(await group_members(call_events_group(call_id)))  # left by other runs on this Redis db
    client, connected = await dashboard_socket(supervisor, f"/ws/dashboard/calls/{call_id}/")
    assert connected
    await client.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "snapshot")
    assert set(await group_members(call_events_group(call_id))) - before
    await client.communicator.send_to(text_data=frame)
    code = await client.wait_closed(5)
    if client.communicator.future.done() and not client.communicator.future.cancelled():
        client.communicator.future.result()  # the consumer did not crash
    assert code == 4400
    reply = client.texts()[-1]
    assert reply["type"] == "action_result" and reply["ok"] is False and "nested" in reply["detail"]
    assert set(await group_members(call_events_group(call_id))) - before == set()


@pytest.mark.parametrize("path", ["/ws/dashboard/", "/ws/dashboard/calls/{call_id}/"])
async def test_group_membership_ends_when_the_consumer_is_cancelled(live_demo: Any, supervisor: Any,
                                                                     path: str) -> None:
    call_id = await a_call()
    group = DASHBOARD_GROUP if path == "/ws/dashboard/" else call_events_group(call_id)
    before = set(await group_members(group))  # left by other runs on this Redis db
    client, connected = await dashboard_socket(supervisor, path.format(call_id=call_id))
    assert connected
    await client.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "snapshot")
    assert len(set(await group_members(group)) - before) == 1
    # The server goes away under the consumer (a worker shutdown, a lost connection): no disconnect.
    client.communicator.future.cancel()
    await asyncio.sleep(0.2)
    assert set(await group_members(group)) - before == set()
