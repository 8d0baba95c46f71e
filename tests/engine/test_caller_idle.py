"""server_vad idle_timeout_ms through the engine: the caller stays silent after the agent spoke,
the server prompts, the engine emits CallerIdle and counts it, and the call carries on."""

from __future__ import annotations

from realtime import audio
from realtime import events as ev
from realtime.server import RealtimeServer, response
from realtime.server.testing import chunks, speech_then_silence

from .factories import SERVER_VAD, make_session, retail_spec

FRAME = 960  # 20 ms of 24 kHz PCM16


async def test_silent_caller_is_prompted_and_the_call_goes_on(server: RealtimeServer) -> None:
    server.script(response("Hello there"), response("Are you still there?"), response("Sure, what is the order number?"))
    server.add_transcripts("I need help with my order")
    spec = retail_spec(modality="audio", turn_detection={**SERVER_VAD, "idle_timeout_ms": 1000})
    session, rec = make_session(server, spec)
    await session.start()
    await rec.wait_type(ev.Usage)  # the greeting's response.done: 400 ms of audio to play
    for frame in chunks(audio.silence(1600, audio.PCM), FRAME):
        await session.send_audio(frame)
    idle = await rec.wait_type(ev.CallerIdle)
    assert (idle.ms, idle.agent) == (1000, "front")
    await rec.wait_type(ev.TranscriptDone, role="assistant", text="Are you still there?", timeout=5)
    assert session.idle_timeouts == 1
    live = server.sessions[0]
    trig = next(e for e in live.server_events if e["type"] == "input_audio_buffer.timeout_triggered")
    assert (trig["audio_start_ms"], trig["audio_end_ms"], trig["item_id"]) == (400, 1400, idle.item_id)
    # the caller answers: an ordinary turn
    for frame in chunks(speech_then_silence(400, 400), FRAME):
        await session.send_audio(frame)
    await rec.wait_type(ev.TranscriptDone, role="user", text="I need help with my order", timeout=5)
    await rec.wait_type(ev.TranscriptDone, role="assistant", text="Sure, what is the order number?", timeout=5)
    await session.close()
    assert [(i.role, i.text) for i in session.transcript] == [
        ("assistant", "Hello there"),
        ("assistant", "Are you still there?"),
        ("user", "I need help with my order"),
        ("assistant", "Sure, what is the order number?"),
    ]
    assert not any(isinstance(e, ev.TranscriptDone) and e.role == "user" and not e.text for e in rec.events)
    assert session.idle_timeouts == 1 and not live.errors
    assert ev.CallerIdle(ms=1, item_id="x").to_dict()["type"] == "caller.idle"
