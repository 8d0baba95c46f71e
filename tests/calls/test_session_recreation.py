"""Cutting the upstream connection mid-call recreates the Realtime session with nothing lost; a
recreate request arriving through the channel layer (the beat sweep) does the same ahead of time."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from calls.events import RECREATE_MESSAGE
from calls.models import SessionSegment, TranscriptItem, call_group
from realtime.server import response
from tests.calls.conftest import browser_call

pytestmark = pytest.mark.django_db(transaction=True)


async def test_dropped_upstream_is_recreated_and_the_call_goes_on(live_demo: Any, upstream: Any,
                                                                 operator: Any) -> None:
    upstream.script(response("Hello, how can I help?"))
    call = await browser_call(operator)
    started = await call.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "call")
    await call.wait_event("transcript.done", role="assistant", text="Hello, how can I help?")
    await call.communicator.send_json_to({"type": "text", "text": "I want to return my headphones"})
    await call.wait_event("transcript.done", role="assistant", text="I heard: I want to return my headphones")

    await upstream.sessions[0].drop()
    recreated = await call.wait_event("session.recreated")
    assert recreated["attempts"] >= 1 and recreated["restored_items"] >= 3
    assert call.close_code is None
    restored = str(upstream.sessions[1].client_events)
    assert "I want to return my headphones" in restored and "Hello, how can I help?" in restored

    await call.communicator.send_json_to({"type": "text", "text": "Are you still there?"})
    await call.wait_event("transcript.done", role="assistant", text="I heard: Are you still there?")

    # The beat sweep's request, through the channel layer: recreated again, ahead of the limit.
    await get_channel_layer().group_send(call_group(started["call_id"]),
                                         {"type": RECREATE_MESSAGE, "reason": "max_session_length"})
    await call.wait_event("session.recreated", reason="max_session_length")
    await call.communicator.send_json_to({"type": "text", "text": "One more thing"})
    await call.wait_event("transcript.done", role="assistant", text="I heard: One more thing")
    await call.communicator.send_json_to({"type": "hangup"})
    assert await call.wait_closed() == 1000

    def rows() -> tuple[list[Any], list[Any]]:
        return (list(SessionSegment.objects.filter(call_id=started["call_id"])
                     .values_list("index", "end_reason", "gap_ms")),
                list(TranscriptItem.objects.filter(call_id=started["call_id"]).values_list("role", "text")))

    segments, transcript = await database_sync_to_async(rows)()
    assert [s[0] for s in segments] == [0, 1, 2]
    assert segments[1][1] == "max_session_length" and segments[2][1] == "hangup"
    assert segments[0][1] and segments[0][1] != "hangup"
    assert segments[1][2] is not None and segments[2][2] is not None
    for turn in [("assistant", "Hello, how can I help?"), ("user", "I want to return my headphones"),
                 ("assistant", "I heard: I want to return my headphones"), ("user", "Are you still there?"),
                 ("assistant", "I heard: Are you still there?"), ("user", "One more thing"),
                 ("assistant", "I heard: One more thing")]:
        assert turn in transcript
