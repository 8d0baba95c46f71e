"""A stalled channel layer never stalls audio. Redis itself is paused (CLIENT PAUSE: every command of
every client waits) while a browser call is under way: the caller's audio still reaches the Realtime
session at once and the agent's answer still reaches the caller; the records and the published
events, which go through Redis, catch up when it resumes, in order and with nothing lost."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from calls.models import Call, TranscriptItem, call_events_group
from realtime.server import response
from tests.calls.conftest import browser_call, speech_frames

pytestmark = pytest.mark.django_db(transaction=True)

PAUSE_MS = 3000


async def rows_within(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := await database_sync_to_async(predicate)()) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return value


def appended(upstream: Any) -> int:
    return sum(1 for e in upstream.sessions[0].client_events if e.get("type") == "input_audio_buffer.append")


async def test_audio_flows_both_ways_while_redis_is_paused(live_demo: Any, upstream: Any, operator: Any) -> None:
    if "RedisChannelLayer" not in settings.CHANNEL_LAYERS["default"]["BACKEND"]:
        pytest.skip("needs the Redis channel layer (REDIS_URL)")
    upstream.script(response("Hello, thanks for calling."), response("Of course. Let me check that for you."))
    upstream.add_transcripts("I would like to return my headphones")
    call = await browser_call(operator)
    hello = await call.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "call")
    greeting = await call.wait_event("transcript.done", role="assistant")
    await call.communicator.send_json_to({"type": "playback", "item_id": greeting["item_id"], "played_ms": 99999})
    # A supervisor's view of the call: its events' channel group.
    layer = get_channel_layer()
    watcher = await layer.new_channel()
    await layer.group_add(call_events_group(hello["call_id"]), watcher)
    assert await rows_within(lambda: TranscriptItem.objects.filter(call_id=hello["call_id"]).count() == 1)
    before = appended(upstream)

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.execute_command("CLIENT", "PAUSE", PAUSE_MS, "ALL")
    paused_at = time.monotonic()
    try:
        frames = speech_frames()
        for frame in frames:
            await call.communicator.send_to(bytes_data=frame)
        # Every caller frame reaches the Realtime session while Redis is still paused.
        while appended(upstream) < before + len(frames):
            assert time.monotonic() - paused_at < PAUSE_MS / 1000 - 0.5, "caller audio waited for the channel layer"
            await asyncio.sleep(0.01)
        # The caller is heard, and the agent's answer (audio and words) comes back, still during the pause.
        answer = await call.wait_event("transcript.done", role="assistant", timeout=PAUSE_MS / 1000,
                                       text="Of course. Let me check that for you.")
        audio = [f for f in call.frames if isinstance(f, bytes)]
        during = time.monotonic() - paused_at
        assert during < PAUSE_MS / 1000, f"the answer came {during:.2f}s after the pause began"
        assert audio and answer["item_id"]
    finally:
        client.execute_command("CLIENT", "UNPAUSE")
        client.close()

    # Once Redis is back, what was recorded meanwhile is published to the group, in order, no gap.
    published: list[dict[str, Any]] = []
    while not any(m["event"].get("text") == "Of course. Let me check that for you." for m in published):
        message = await asyncio.wait_for(layer.receive(watcher), 15)
        if message.get("type") == "call.event":
            published.append(message)
    seqs = [m["seq"] for m in published]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    roles = [m["event"]["role"] for m in published if m["event"]["type"] == "transcript"]
    assert roles[-2:] == ["user", "assistant"]
    await layer.group_discard(call_events_group(hello["call_id"]), watcher)
    await call.communicator.send_json_to({"type": "hangup"})
    await call.wait_closed()
    rows = await database_sync_to_async(lambda: list(
        TranscriptItem.objects.filter(call_id=hello["call_id"]).values_list("role", "text")))()
    assert rows == [("assistant", "Hello, thanks for calling."), ("user", "I would like to return my headphones"),
                    ("assistant", "Of course. Let me check that for you.")]
    record = await database_sync_to_async(Call.objects.get)(pk=hello["call_id"])
    assert record.status == "ended"


async def test_audio_flows_while_a_tool_waits_on_a_locked_row(live_demo: Any, upstream: Any, operator: Any) -> None:
    """A Python tool handler stuck on the database (another transaction holds the order's row) does
    not hold the caller's audio: handlers run on their own threads."""
    import psycopg
    from django.db import connection

    from calls.scenarios import compile_for_call
    from realtime.server import function_call
    from tests.calls.conftest import transfer_arguments

    _, spec = await database_sync_to_async(compile_for_call)("retail")
    upstream.script(
        response("Hello."),
        response(function_call("transfer_to_returns", transfer_arguments(spec, "authentication", "returns"))),
        response(function_call("start_return", {"order_id": "ORD-10231", "reason": "arrived damaged"})),
        response("Your return is started."),
    )
    call = await browser_call(operator)
    await call.wait_event("transcript.done", role="assistant")
    db = connection.settings_dict
    holder = psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"] or "postgres",
                             dbname=db["NAME"], autocommit=False)
    try:
        holder.execute("SELECT id FROM agents_order WHERE number = 'ORD-10231' FOR UPDATE")
        locked_at = time.monotonic()
        await call.communicator.send_json_to({"type": "text", "text": "I want to return order ORD-10231"})
        await call.wait_event("tool.started", name="start_return")
        before = appended(upstream)
        silence = [bytes(960)] * 25  # half a second of 20 ms frames
        for frame in silence:
            await call.communicator.send_to(bytes_data=frame)
        while appended(upstream) < before + len(silence):
            assert time.monotonic() - locked_at < 2.5, "caller audio waited for the tool"
            await asyncio.sleep(0.01)
        # the handler is still waiting for the row
        assert not [e for e in call.events("tool.finished") if e["name"] == "start_return"]
    finally:
        holder.rollback()
        holder.close()
    finished = await call.wait_event("tool.finished", name="start_return", timeout=10)
    assert finished.get("error") is None  # the caller's view: the output itself is for staff
    await call.wait_event("transcript.done", role="assistant", text="Your return is started.")
    await call.communicator.send_json_to({"type": "hangup"})
    await call.wait_closed()
