"""Finding 2: playback reports are accepted only for assistant items the engine produced, the
tracker keeps a bounded number of items and marks, reports are rate-limited, and the tracker is
emptied when the call ends."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from calls.consumers import BrowserCallConsumer
from realtime.playback import MAX_TRACKED_ITEMS, MAX_TRACKED_MARKS, PlaybackTracker
from realtime.server import response
from tests.calls.conftest import browser_call


def test_the_tracker_ignores_items_it_did_not_produce() -> None:
    tracker = PlaybackTracker("audio/pcm")
    tracker.on_audio_generated("item_real", 4800)
    assert tracker.report_played_ms("item_real", 50.0) is True
    for n in range(1000):
        assert tracker.report_played_ms(f"item_fake_{n}", 1.0) is False
    assert list(tracker.items) == ["item_real"]
    assert tracker.audio_end_ms("item_real") == 50


def test_the_tracker_keeps_a_bounded_number_of_items_and_marks() -> None:
    tracker = PlaybackTracker("audio/pcmu")
    for n in range(MAX_TRACKED_ITEMS * 3):
        tracker.on_audio_generated(f"item_{n}", 160)
        tracker.mark_sent(f"item_{n}:1", f"item_{n}")
    assert len(tracker.items) == MAX_TRACKED_ITEMS
    assert tracker.current_item_id == f"item_{MAX_TRACKED_ITEMS * 3 - 1}" in tracker.items
    for n in range(MAX_TRACKED_MARKS * 2):  # marks Twilio never acknowledges
        tracker.mark_sent(f"latest:{n}")
    assert len(tracker._marks) <= MAX_TRACKED_MARKS
    tracker.clear()
    assert not tracker.items and not tracker._marks and tracker.current_item_id is None


def consumer_of(call_id: int) -> BrowserCallConsumer:
    found = [o for o in gc.get_objects() if isinstance(o, BrowserCallConsumer) and o.call_id == call_id]
    assert len(found) == 1
    return found[0]


@pytest.mark.django_db(transaction=True)
async def test_a_flood_of_playback_reports_holds_no_memory(live_demo: Any, upstream: Any, operator: Any) -> None:
    upstream.script(response("Hello, thanks for calling."))
    call = await browser_call(operator)
    hello = await call.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "call")
    audio = await call.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "audio")
    tracker = consumer_of(hello["call_id"]).bridge.session.playback
    for n in range(1000):
        await call.communicator.send_json_to({"type": "playback", "item_id": f"made_up_{n}", "played_ms": n})
    await call.communicator.send_json_to({"type": "playback", "item_id": audio["item_id"], "played_ms": 10})
    await call.drain(0.5)
    assert not any(item.startswith("made_up_") for item in tracker.items)
    assert len(tracker.items) <= MAX_TRACKED_ITEMS
    errors = [e for e in call.events("error") if e.get("source") == "transport"]
    # Every refused report is not answered one by one: the error replies are rate-limited too.
    assert 0 < len(errors) < 100
    assert {e["code"] for e in errors} <= {"unknown_item", "rate_limited"}
    await call.communicator.send_json_to({"type": "hangup"})
    await call.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "ended")
    await call.wait_closed()
    assert not tracker.items and not tracker._marks


@pytest.mark.django_db(transaction=True)
async def test_playback_reports_are_rate_limited(live_demo: Any, upstream: Any, operator: Any,
                                                 settings: Any) -> None:
    settings.CALL_PLAYBACK_REPORTS_PER_SECOND = 1
    settings.CALL_PLAYBACK_REPORTS_BURST = 5
    upstream.script(response("Hello, thanks for calling."))
    call = await browser_call(operator)
    await call.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "audio")
    audio = next(f for f in call.texts() if f.get("type") == "audio")
    for n in range(50):
        await call.communicator.send_json_to({"type": "playback", "item_id": audio["item_id"], "played_ms": n})
    await call.drain(0.3)
    assert any(e["code"] == "rate_limited" for e in call.events("error"))
    await call.communicator.send_json_to({"type": "hangup"})
    await call.wait_closed()
