"""The caller cuts in without speaking: typing over the agent, or push-to-talk."""

from __future__ import annotations

from realtime import events as ev
from realtime.server import RealtimeServer, response
from realtime.server.testing import chunks, speech_then_silence

from .factories import make_session, retail_spec

LONG = "Thanks for calling the store today, let me tell you about all of our wonderful weekly offers"


async def test_interrupt_truncates_at_what_was_heard_and_cancels(server: RealtimeServer) -> None:
    server.script(response(LONG, delay_ms=25, ms_per_word=100), response("Of course, what is it?"))
    session, rec = make_session(server, retail_spec(modality="audio"))
    await session.start()
    first = await rec.wait_type(ev.AudioOut)
    await rec.wait_for(lambda e: isinstance(e, ev.AudioOut) and session.playback.generated_ms(first.item_id) >= 500)
    await session.report_playback(first.item_id, 240)
    await session.interrupt(reason="caller_text")
    clear = await rec.wait_type(ev.ClearPlayback)
    assert (clear.item_id, clear.audio_end_ms, clear.reason) == (first.item_id, 240, "caller_text")
    await session.send_text("I have a question about my bill")
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text == "Of course, what is it?", timeout=5)
    live = server.sessions[0]
    sent = [e["type"] for e in live.client_events]
    assert "response.cancel" in sent
    truncates = [e for e in live.client_events if e["type"] == "conversation.item.truncate"]
    assert [t["audio_end_ms"] for t in truncates] == [240]
    assert not live.errors  # the cancel met an active response
    await session.close()
    assert [i.role for i in session.transcript] == ["assistant", "user", "assistant"]
    assert session.transcript[0].interrupted


async def test_interrupt_with_nothing_playing_sends_nothing(server: RealtimeServer) -> None:
    server.script(response("Hi.", ms_per_word=50))
    session, rec = make_session(server, retail_spec(modality="audio"))
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    await rec.wait_for(lambda e: isinstance(e, ev.Usage))
    await session.report_playback(session.transcript[0].item_id, 10_000)
    await session.interrupt()
    await session.close()
    assert not rec.of(ev.ClearPlayback)
    sent = [e["type"] for e in server.sessions[0].client_events]
    assert "response.cancel" not in sent and "conversation.item.truncate" not in sent


async def test_push_to_talk_commits_the_caller_turn_on_release(server: RealtimeServer) -> None:
    server.script(response("Hello.", ms_per_word=50), response("Your order ships tomorrow."))
    server.add_transcripts("where is my order")
    session, rec = make_session(server, retail_spec(modality="audio", turn_detection=None))
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    await rec.wait_for(lambda e: isinstance(e, ev.Usage))
    await session.push_to_talk(True)
    for frame in chunks(speech_then_silence(600, 100), 960):
        await session.send_audio(frame)
    await session.push_to_talk(False)
    user = await rec.wait_type(ev.TranscriptDone, role="user", timeout=5)
    assert user.text == "where is my order"
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text == "Your order ships tomorrow.", timeout=5)
    live = server.sessions[0]
    sent = [e["type"] for e in live.client_events if e["type"] != "input_audio_buffer.append"]
    clear_at, commit_at = sent.index("input_audio_buffer.clear"), sent.index("input_audio_buffer.commit")
    assert clear_at < commit_at and sent[commit_at + 1] == "response.create"
    assert not live.errors
    await session.close()
