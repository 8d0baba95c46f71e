"""Truncate and cancel as the API does them: a truncate of an item still being generated stops its
audio and keeps only the words heard; response.cancel ends the response at once, even while the
responder is thinking or the next sentence is being synthesised."""

import asyncio
import time
from collections.abc import AsyncIterator

from realtime import audio as fmt
from realtime.server import RealtimeServer, ResponseContext, ScriptedResponse, response
from realtime.server.responders import TextOutput
from realtime.server.testing import connect_raw, recv_json, recv_until_json, running_server, send_json

USER_HI = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}


async def test_truncate_of_the_item_being_generated_stops_its_audio(realtime_server: RealtimeServer) -> None:
    realtime_server.script(response("one two three four five six seven eight", delay_ms=60, ms_per_word=200))
    async with connect_raw(realtime_server) as ws:
        await recv_json(ws)
        await send_json(ws, {"type": "conversation.item.create", "item": USER_HI})
        await send_json(ws, {"type": "response.create"})
        before = await recv_until_json(ws, "response.output_audio.delta")
        before += await recv_until_json(ws, "response.output_audio.delta")
        item_id = before[-1]["item_id"]
        # the caller heard 300 ms: "one" whole, half of "two"
        await send_json(ws, {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": 300})
        after = await recv_until_json(ws, "response.done")
    types = [e["type"] for e in after]
    cut = types.index("conversation.item.truncated")
    assert "response.output_audio.delta" not in types[cut:], types
    transcript_done = next(e for e in after if e["type"] == "response.output_audio_transcript.done")
    assert transcript_done["transcript"] == "one"
    done = after[-1]["response"]
    assert done["status"] == "completed"
    assert done["output"][0]["status"] == "incomplete"
    assert done["output"][0]["content"][0]["transcript"] == "one"
    item = realtime_server.sessions[0].item(item_id)
    assert item is not None and item.audio_ms(0) == 300
    assert item.data["content"][0]["transcript"] == "one"
    # the usage counts the audio kept, not the eight words scripted
    assert done["usage"]["output_token_details"]["audio_tokens"] <= 3 * 200 // 50


class _SlowSecondSentence:
    """Streams a first sentence at once and the second only after ``seconds`` (a slow synthesis)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.second_sent = False

    def synthesize(self, text: str, fmt_: str, ms_per_word: int) -> list[bytes]:
        return [fmt.tone(200, fmt_) for _ in text.split()]

    async def stream(self, text: str, fmt_: str) -> AsyncIterator[tuple[str, bytes]]:
        yield "First sentence.", fmt.tone(600, fmt_, amplitude=0.05)
        await asyncio.sleep(self.seconds)
        self.second_sent = True
        yield " Second sentence.", fmt.tone(600, fmt_, amplitude=0.05)


async def test_cancel_does_not_wait_for_the_next_sentence() -> None:
    synth = _SlowSecondSentence(seconds=5.0)
    async with running_server(synthesizer=synth) as server:
        server.script(response("First sentence. Second sentence."))
        async with connect_raw(server) as ws:
            await recv_json(ws)
            await send_json(ws, {"type": "conversation.item.create", "item": USER_HI})
            await send_json(ws, {"type": "response.create"})
            first = await recv_until_json(ws, "response.output_audio_transcript.delta")
            sent = time.monotonic()
            await send_json(ws, {"type": "response.cancel"})
            events = await recv_until_json(ws, "response.done", timeout=3.0)
            waited = time.monotonic() - sent
        assert events[-1]["response"]["status"] == "cancelled"
        assert events[-1]["response"]["status_details"]["reason"] == "client_cancelled"
        deltas = [e for e in first + events if e["type"] == "response.output_audio.delta"]
        assert len(deltas) <= 3  # the first sentence's 600 ms at most, in 200 ms deltas
        assert not synth.second_sent
        assert waited < 2.0, f"response.done came {waited:.2f} s after the cancel, as if it waited for the next sentence"
        assert not server.validation_failures


class _SlowResponder:
    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def respond(self, ctx: ResponseContext) -> ScriptedResponse:
        self.started.set()
        await asyncio.sleep(0.5)
        return ScriptedResponse((TextOutput("too late"),))


async def test_cancel_while_the_responder_is_thinking() -> None:
    """The answer that comes after the cancel is not spoken: the response ends with no output."""
    responder = _SlowResponder()
    async with running_server(responder=responder) as server, connect_raw(server) as ws:
        await recv_json(ws)
        await send_json(ws, {"type": "conversation.item.create", "item": USER_HI})
        await send_json(ws, {"type": "response.create"})
        await recv_until_json(ws, "response.created")
        await asyncio.wait_for(responder.started.wait(), 2)
        await send_json(ws, {"type": "response.cancel"})
        events = await recv_until_json(ws, "response.done", timeout=3.0)
        assert events[-1]["response"]["status"] == "cancelled"
        assert events[-1]["response"]["output"] == []
        # the session goes on: a new response is accepted at once
        server.script(response("again"))
        await send_json(ws, {"type": "response.create"})
        again = await recv_until_json(ws, "response.done")
        assert again[-1]["response"]["status"] == "completed"
