"""The components together, as the offline engine chains them: caller speech (piper) in 20 ms
G.711 frames -> VAD turn -> Whisper transcript -> policy -> synthesised reply, twice, identically."""

from __future__ import annotations

import numpy as np

from realtime import audio
from realtime.offline.policy import DialoguePolicy
from realtime.offline.stt import Recognizer
from realtime.offline.tts import Synthesizer
from realtime.offline.vad import SpeechStarted, SpeechStopped, VoiceActivityDetector
from tests.offline import toolsets as ts


def one_turn(synthesizer: Synthesizer, recognizer: Recognizer) -> tuple[list[object], str, object, bytes]:
    speech = synthesizer.synthesize_all(
        "My phone number is five five five, one two three, four five six seven. "
        "I was born on March third, nineteen eighty five."
    )
    pcm = np.concatenate([np.zeros(12000, np.int16), speech, np.zeros(24000, np.int16)])
    ulaw = audio.encode_from_pcm16_24k(pcm, "audio/pcmu")
    vad = VoiceActivityDetector()
    events: list[object] = []
    for i in range(0, len(ulaw), 160):  # Twilio media frames
        events.extend(vad.feed_audio(ulaw[i : i + 160], "audio/pcmu"))
    start = next(e for e in events if isinstance(e, SpeechStarted)).audio_start_ms
    end = next(e for e in events if isinstance(e, SpeechStopped)).audio_end_ms
    turn = ulaw[audio.ms_to_bytes(start, "audio/pcmu") : audio.ms_to_bytes(end, "audio/pcmu")]
    transcript = recognizer.transcribe(audio.to_float32_16k(turn, "audio/pcmu")).text
    items = [
        ts.assistant("Welcome to Acme Retail! How can I help you today?"),
        ts.user_audio("I'd like to return my shoes."),
        ts.assistant("I can help with that. First, I need to verify your identity. Could you please tell me "
                     "your phone number and your date of birth?"),
        ts.user_audio(transcript),
    ]
    decision = DialoguePolicy().respond(ts.AUTH_INSTRUCTIONS, ts.AUTH_TOOLS, items)
    reply = b"".join(
        audio.encode_from_pcm16_24k(chunk.pcm, "audio/pcmu") for chunk in synthesizer.synthesize("One moment, please.")
    )
    return events, transcript, decision, reply


def test_voice_turn_to_tool_call_and_back(synthesizer: Synthesizer, recognizer: Recognizer) -> None:
    events, transcript, decision, reply = one_turn(synthesizer, recognizer)
    assert [type(e) for e in events] == [SpeechStarted, SpeechStopped]
    call = decision.function_call  # type: ignore[attr-defined]
    assert call is not None, transcript
    assert (call.name, call.arguments) == (
        "verify_customer",
        {"phone_number": "5551234567", "date_of_birth": "1985-03-03"},
    )
    assert 500 < audio.duration_ms(len(reply), "audio/pcmu") < 2500
    assert one_turn(synthesizer, recognizer) == (events, transcript, decision, reply)  # same audio, same everything
