"""faster-whisper tiny.en on piper speech: the key words come back, in every input format."""

from __future__ import annotations

import re

import numpy as np

from realtime import audio
from realtime.offline.stt import Recognizer
from realtime.offline.tts import Synthesizer

SENTENCE = "I would like to return a pair of running shoes. My phone number is five five five, one two three, four five six seven."


def words(text: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", text.lower())


def test_transcribes_synthesised_speech(synthesizer: Synthesizer, recognizer: Recognizer) -> None:
    pcm = synthesizer.synthesize_all(SENTENCE)
    for fmt in ("audio/pcm", "audio/pcmu", "audio/pcma"):
        data = audio.encode_from_pcm16_24k(pcm, fmt)
        result = recognizer.transcribe(audio.to_float32_16k(data, fmt))
        text = words(result.text)
        for key in ("return", "running shoes", "phone number"):
            assert key in text, (fmt, result.text)
        assert "5551234567" in re.sub(r"\D", "", result.text), (fmt, result.text)
        assert abs(result.audio_seconds - len(pcm) / 24000) < 0.01


def test_deterministic_and_streamed_pieces_join_to_text(synthesizer: Synthesizer, recognizer: Recognizer) -> None:
    f16 = audio.to_float32_16k(audio.encode_pcm16(synthesizer.synthesize_all("Where is my nearest store?"), "audio/pcm"), "audio/pcm")
    first = recognizer.transcribe(f16)
    assert first.text == recognizer.transcribe(f16).text
    assert "".join(recognizer.stream(f16)) == first.text
    assert "store" in words(first.text)


def test_too_short_audio_is_empty(recognizer: Recognizer) -> None:
    assert recognizer.transcribe(np.zeros(800, dtype=np.float32)).text == ""
