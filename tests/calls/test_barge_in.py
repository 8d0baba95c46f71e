"""Barge-in: the caller talks over the agent; the agent's item is truncated at what the caller
actually heard (browser playback reports, Twilio marks) and the transport is told to clear."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from channels.db import database_sync_to_async

from calls.models import TranscriptItem
from realtime.server import response
from tests.calls.conftest import browser_call, speech_frames
from tests.calls.test_twilio_call import STREAM_SID, TwilioStream, answer_call

pytestmark = pytest.mark.django_db(transaction=True)

LONG = "Thanks for calling the store today, let me tell you about all of our wonderful weekly offers and more"


def truncates(upstream: Any) -> list[dict[str, Any]]:
    return [e for e in upstream.sessions[0].client_events if e.get("type") == "conversation.item.truncate"]


async def test_browser_barge_in_truncates_at_the_played_position(live_demo: Any, upstream: Any,
                                                                operator: Any) -> None:
    upstream.script(response(LONG, delay_ms=25, ms_per_word=100), response("Sorry, go ahead."))
    upstream.add_transcripts("wait, I need help with my order")
    call = await browser_call(operator)
    start = await call.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "audio")
    item_id = start["item_id"]
    await call.wait_for(lambda f: isinstance(f, bytes) and sum(
        len(x) for x in call.frames if isinstance(x, bytes)) >= 48 * 600)
    await call.communicator.send_json_to({"type": "playback", "item_id": item_id, "played_ms": 350})
    for frame in speech_frames():
        await call.communicator.send_to(bytes_data=frame)

    await call.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "clear")
    cleared = await call.wait_event("playback.clear")
    assert (cleared["item_id"], cleared["audio_end_ms"], cleared["reason"]) == (item_id, 350, "barge_in")
    assert truncates(upstream) == [{"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0,
                                    "audio_end_ms": 350}]
    await call.wait_event("transcript.done", role="assistant", text="Sorry, go ahead.")
    await call.communicator.send_json_to({"type": "hangup"})
    await call.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "ended")

    greeting = await database_sync_to_async(TranscriptItem.objects.get)(item_id=item_id)
    assert greeting.truncated and greeting.role == "assistant"


async def test_twilio_barge_in_uses_marks_and_sends_clear(live_demo: Any, upstream: Any, settings: Any) -> None:
    settings.TWILIO_AUTH_TOKEN = "twilio-auth-token-for-tests"
    settings.PUBLIC_BASE_URL = "https://cc.example.com"
    upstream.script(response(LONG, delay_ms=25, ms_per_word=100), response("Okay."))
    upstream.add_transcripts("stop please")
    stream = TwilioStream(await answer_call())
    await stream.open()

    def marks() -> list[dict[str, Any]]:
        return [f for f in stream.client.texts() if f.get("event") == "mark"]

    await stream.client.wait_for(lambda f: len(marks()) >= 3)
    first_media = next(f for f in stream.client.texts() if f.get("event") == "media")
    heard_ms = len(base64.b64decode(first_media["media"]["payload"])) // 8  # mu-law: 8 bytes per ms
    first_mark = marks()[0]["mark"]["name"]
    await stream.send({"event": "mark", "streamSid": STREAM_SID, "mark": {"name": first_mark}})
    for frame in speech_frames(fmt="audio/pcmu"):
        await stream.media(frame)

    clear = await stream.client.wait_for(lambda f: isinstance(f, dict) and f.get("event") == "clear")
    assert clear == {"event": "clear", "streamSid": STREAM_SID}
    await stream.client.wait_for(lambda f: bool(truncates(upstream)))
    assert truncates(upstream)[0]["audio_end_ms"] == heard_ms
    await stream.send({"event": "stop", "streamSid": STREAM_SID, "stop": {}})
    assert await stream.client.wait_closed() == 1000
