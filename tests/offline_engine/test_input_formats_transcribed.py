"""Caller audio in each input format (pcm 24 kHz, pcmu, pcma) through the official openai client:
Silero turn detection at the right positions, faster-whisper transcription events as the API sends
them, and the answer spoken in the session's output format."""

from __future__ import annotations

import base64

import pytest

from realtime import audio
from realtime.server import RealtimeServer
from realtime.server.testing import openai_client_for

from .speech import Caller, frames

TEXT = "I would like to return my running shoes."


@pytest.mark.parametrize("fmt", ["audio/pcm", "audio/pcmu", "audio/pcma"])
async def test_format_in_and_out(server: RealtimeServer, caller: Caller, fmt: str) -> None:
    client = openai_client_for(server)
    async with client.realtime.connect(model="gpt-realtime-2") as conn:
        await conn.session.update(session={
            "type": "realtime",
            "instructions": "You are the assistant of Acme Retail. Greet the caller with \"Hello from Acme!\"",
            "audio": {
                "input": {"format": {"type": fmt}, "transcription": {"model": "gpt-4o-mini-transcribe"},
                          "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500}},
                "output": {"format": {"type": fmt}},
            },
        })
        speech = caller.utterance(TEXT, fmt, lead_ms=500, tail_ms=900)
        for frame in frames(speech, fmt, 40):
            await conn.input_audio_buffer.append(audio=base64.b64encode(frame).decode())
        events = []
        async for event in conn:
            events.append(event)
            if event.type == "response.done":
                break
    kinds = [e.type for e in events]
    started = next(e for e in events if e.type == "input_audio_buffer.speech_started")
    stopped = next(e for e in events if e.type == "input_audio_buffer.speech_stopped")
    speech_ms = len(caller.pcm(TEXT)) / 24
    # onset at 500 ms minus 300 ms of prefix padding; the stop 500 ms after the speech ends
    assert 120 <= started.audio_start_ms <= 320
    assert 500 + speech_ms + 300 <= stopped.audio_end_ms <= 500 + speech_ms + 700
    order = ["input_audio_buffer.committed", "conversation.item.input_audio_transcription.delta",
             "conversation.item.input_audio_transcription.completed", "response.created", "response.output_audio.delta", "response.done"]
    firsts = [kinds.index(k) for k in order]
    assert firsts == sorted(firsts), [kinds[i] for i in sorted(firsts)]
    completed = next(e for e in events if e.type == "conversation.item.input_audio_transcription.completed")
    assert "return" in completed.transcript.lower() and "shoes" in completed.transcript.lower()
    delta = "".join(e.delta for e in events if e.type == "conversation.item.input_audio_transcription.delta")
    assert delta == completed.transcript
    assert completed.usage.seconds == pytest.approx(stopped.audio_end_ms / 1000, abs=0.07)  # the buffer up to the stop (the frame holding it included)
    # the answer: audio in the session's format, transcript deltas in step with it
    spoken = b"".join(base64.b64decode(e.delta) for e in events if e.type == "response.output_audio.delta")
    assert audio.duration_ms(len(spoken), fmt) > 500
    said = "".join(e.delta for e in events if e.type == "response.output_audio_transcript.delta")
    done = next(e for e in events if e.type == "response.output_audio_transcript.done")
    assert said == done.transcript and said
    usage = events[-1].response.usage
    assert usage.output_token_details.audio_tokens == -(-int(audio.duration_ms(len(spoken), fmt)) // 50)
    assert usage.input_token_details.audio_tokens == pytest.approx(completed.usage.seconds * 10, abs=1)  # 1 per 100 ms
