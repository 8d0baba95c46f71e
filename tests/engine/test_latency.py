"""Latency per turn: voice-to-voice (speech stopped backdated by the VAD silence, to the first
audio delta), time to first transcript, caller transcript."""

from __future__ import annotations

from realtime import events as ev
from realtime.server import RealtimeServer, response
from realtime.server.testing import chunks, speech_then_silence

from .factories import SERVER_VAD, make_session, retail_spec


async def test_voice_turn_latencies(server: RealtimeServer) -> None:
    server.script(response("Hi.", ms_per_word=40), response("Sure thing.", delay_ms=30, ms_per_word=40))
    server.add_transcripts("can you help")
    session, rec = make_session(server, retail_spec(modality="audio", turn_detection=SERVER_VAD))
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    first = session.transcript[0].item_id
    await session.report_playback(first, session.playback.generated_ms(first))
    for frame in chunks(speech_then_silence(300, 400), 960):
        await session.send_audio(frame)
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text == "Sure thing.", timeout=5)
    by_kind = {lat.kind: lat for lat in rec.of(ev.Latency)}
    v2v = by_kind["voice_to_voice"]
    assert v2v.turn == 1
    # Backdated by silence_duration_ms (200) and at least the scripted 30 ms delay before audio.
    assert 230 <= v2v.ms < 2000
    assert by_kind["first_transcript"].ms >= 200
    assert "user_transcript" in by_kind
    await session.close()
