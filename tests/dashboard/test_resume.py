"""Resume after a disconnect: `?last_seq=N` gives exactly the events after N, in order, then the live
deltas, with no gap and no duplicate, even when a delta is lost on the way."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db.models import F

from calls import actions
from calls.models import Call, CallEvent, call_events_group, call_group
from tests.dashboard.conftest import close, dashboard_socket

SPEC = {"slug": "retail", "root_agent": "authentication", "hash": "d" * 64, "limits": {}, "agents": {}}

pytestmark = pytest.mark.django_db(transaction=True)


def say(call_id: int, n: int) -> None:
    actions.do_record_transcript(call_id, item_id=f"item_{n}", role="user", text=f"turn {n}", agent="authentication")


async def events_until(client: Any, seq: int) -> list[dict[str, Any]]:
    await client.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "event" and f["seq"] == seq)
    return [f for f in client.texts() if f.get("type") == "event"]


async def test_last_seq_gives_exactly_the_missing_events_in_order(supervisor: Any) -> None:
    call = await database_sync_to_async(actions.do_start_call)(channel=Call.Channel.BROWSER, spec=SPEC)
    for n in range(2, 7):
        await database_sync_to_async(say)(call.pk, n)  # seq 2..6

    # A page that saw up to seq 3, then lost its connection.
    client, connected = await dashboard_socket(supervisor, f"/ws/dashboard/calls/{call.pk}/?last_seq=3")
    assert connected
    snapshot = await client.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "snapshot")
    assert snapshot["after"] == 3
    assert [e["seq"] for e in snapshot["events"]] == [4, 5, 6]
    assert [e["event"]["text"] for e in snapshot["events"]] == ["turn 4", "turn 5", "turn 6"]
    assert snapshot["call"]["seq"] == 6

    for n in range(7, 10):
        await database_sync_to_async(say)(call.pk, n)
    live = await events_until(client, 9)
    assert [f["seq"] for f in live] == [7, 8, 9]
    assert [f["event"]["text"] for f in live] == ["turn 7", "turn 8", "turn 9"]
    await close(client)


async def test_a_lost_delta_is_filled_from_the_log_and_none_is_sent_twice(supervisor: Any) -> None:
    call = await database_sync_to_async(actions.do_start_call)(channel=Call.Channel.BROWSER, spec=SPEC)
    client, connected = await dashboard_socket(supervisor, f"/ws/dashboard/calls/{call.pk}/?last_seq=0")
    assert connected
    snapshot = await client.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "snapshot")
    assert [e["seq"] for e in snapshot["events"]] == [1]

    def lose_two_deltas() -> None:
        """Events 2 and 3 are logged but their channel-layer messages never arrive."""
        for seq in (2, 3):
            Call.objects.filter(pk=call.pk).update(last_seq=F("last_seq") + 1)
            CallEvent.objects.create(call_id=call.pk, seq=seq, type="transcript", event={
                "type": "transcript", "at": "2026-01-01T00:00:00+00:00", "item_id": f"lost_{seq}", "role": "user",
                "text": f"lost {seq}", "agent": "authentication", "truncated": False})

    await database_sync_to_async(lose_two_deltas)()
    await database_sync_to_async(say)(call.pk, 4)
    live = await events_until(client, 4)
    assert [f["seq"] for f in live] == [2, 3, 4]
    assert [f["event"]["text"] for f in live] == ["lost 2", "lost 3", "turn 4"]

    # A duplicate delivery (the same envelope again) is not forwarded twice.
    from channels.layers import get_channel_layer

    envelope = {"type": "call.event", "call_id": call.pk, "seq": 4, "event": live[-1]["event"]}
    await get_channel_layer().group_send(call_events_group(call.pk), envelope)
    await database_sync_to_async(say)(call.pk, 5)
    live = await events_until(client, 5)
    assert [f["seq"] for f in live] == [2, 3, 4, 5]
    await close(client)


async def test_control_messages_of_the_call_group_are_ignored(supervisor: Any) -> None:
    from channels.layers import get_channel_layer

    call = await database_sync_to_async(actions.do_start_call)(channel=Call.Channel.BROWSER, spec=SPEC)
    client, _ = await dashboard_socket(supervisor, f"/ws/dashboard/calls/{call.pk}/")
    await client.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "snapshot")
    layer = get_channel_layer()
    for message in ({"type": "call.recreate", "reason": "x"}, {"type": "call.summary", "request_id": "r", "text": "t"},
                    {"type": "call.hangup"}, {"type": "call.supervisor", "action": "whisper"}):
        await layer.group_send(call_group(call.pk), message)
    await database_sync_to_async(say)(call.pk, 2)
    live = await events_until(client, 2)
    assert [f["seq"] for f in live] == [2]
    assert not client.communicator.future.done(), "the consumer is still running"
    await close(client)
