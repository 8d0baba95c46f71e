"""Barge-in: the caller speaks over the assistant -> truncate at what was heard (playback
tracker, ms reports or Twilio marks) and tell the transport to clear its buffer."""

from __future__ import annotations

from realtime import events as ev
from realtime.server import RealtimeServer, response
from realtime.server.testing import chunks, speech_then_silence

from .factories import SERVER_VAD, make_session, retail_spec

LONG = "Thanks for calling the store today, let me tell you about all of our wonderful weekly offers"


async def _speak(session, ms: int = 400) -> None:
    for frame in chunks(speech_then_silence(ms, 400), 960):  # 20 ms frames of 24 kHz PCM16
        await session.send_audio(frame)


async def test_speech_over_the_assistant_truncates_at_what_was_heard(server: RealtimeServer) -> None:
    server.script(response(LONG, delay_ms=25, ms_per_word=100), response("Sorry, go ahead."))
    server.add_transcripts("wait, I need help with my order")
    session, rec = make_session(server, retail_spec(modality="audio", turn_detection=SERVER_VAD))
    await session.start()
    first = await rec.wait_type(ev.AudioOut)
    await rec.wait_for(lambda e: isinstance(e, ev.AudioOut) and session.playback.generated_ms(first.item_id) >= 600)
    await session.report_playback(first.item_id, 350)
    await _speak(session)
    clear = await rec.wait_type(ev.ClearPlayback)
    assert (clear.item_id, clear.audio_end_ms, clear.reason) == (first.item_id, 350, "barge_in")
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text == "Sorry, go ahead.", timeout=5)
    live = server.sessions[0]
    truncated = await rec.wait_for(lambda e: isinstance(e, ev.ProtocolEvent) and e.payload["type"] == "conversation.item.truncated")
    assert truncated.payload["audio_end_ms"] == 350
    truncates = [e for e in live.client_events if e.get("type") == "conversation.item.truncate"]
    assert truncates == [{"type": "conversation.item.truncate", "item_id": first.item_id, "content_index": 0, "audio_end_ms": 350}]
    assert not live.errors
    await rec.wait_type(ev.TranscriptDone, role="user", timeout=5)
    greeting = session.transcript[0]
    assert greeting.interrupted and greeting.heard_ms == 350
    await session.close()
    roles = [(i.role, i.text) for i in session.transcript]
    assert ("user", "wait, I need help with my order") in roles and roles[-1] == ("assistant", "Sorry, go ahead.")


async def test_twilio_marks_feed_the_playback_position(server: RealtimeServer) -> None:
    server.script(response(LONG, delay_ms=25, ms_per_word=100), response("Okay."))
    server.add_transcripts("stop please")
    session, rec = make_session(server, retail_spec(modality="audio", turn_detection=SERVER_VAD), audio_format="audio/pcmu")
    await session.start()
    first = await rec.wait_type(ev.AudioOut)
    await rec.wait_for(lambda e: isinstance(e, ev.AudioOut) and session.playback.generated_ms(first.item_id) >= 400)
    session.playback.mark_sent("m1", end_ms=200)
    session.playback.mark_sent("m2", end_ms=400)
    session.playback.mark_played("m1")  # m2 was queued but not yet played
    for frame in chunks(speech_then_silence(400, 400, fmt="audio/pcmu"), 160):
        await session.send_audio(frame)
    clear = await rec.wait_type(ev.ClearPlayback)
    assert clear.audio_end_ms == 200
    truncated = await rec.wait_for(lambda e: isinstance(e, ev.ProtocolEvent) and e.payload["type"] == "conversation.item.truncated")
    assert truncated.payload["audio_end_ms"] == 200
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text == "Okay.", timeout=5)
    assert server.sessions[0].client_events[0]["session"]["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert not server.sessions[0].errors
    await session.close()


async def test_speech_after_playback_finished_truncates_nothing(server: RealtimeServer) -> None:
    server.script(response("Hi.", ms_per_word=50), response("Yes?"))
    server.add_transcripts("hello")
    session, rec = make_session(server, retail_spec(modality="audio", turn_detection=SERVER_VAD))
    await session.start()
    first = await rec.wait_type(ev.AudioOut)
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    await session.report_playback(first.item_id, session.playback.generated_ms(first.item_id))  # all heard
    await _speak(session)
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text == "Yes?", timeout=5)
    assert not rec.of(ev.ClearPlayback)
    assert not [e for e in server.sessions[0].client_events if e["type"] == "conversation.item.truncate"]
    await session.close()
