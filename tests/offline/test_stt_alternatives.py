"""When the question expects a form of answer and the recogniser's first transcript is not one, its
other hypotheses are weighed; transcripts are bounded by the audio's length."""

from __future__ import annotations

from typing import Any

from realtime import audio
from realtime.offline import stt
from realtime.offline.stt import Recognizer
from realtime.offline.tts import Synthesizer


def test_alternatives_and_the_answer_check(synthesizer: Synthesizer, recognizer: Recognizer, monkeypatch: Any) -> None:
    monkeypatch.setattr(recognizer, "clearly_heard", 0.0)  # other readings weighed however sure the first
    pcm = synthesizer.synthesize_all("It's four five one two two nine.")
    samples = audio.to_float32_16k(audio.encode_from_pcm16_24k(pcm, "audio/pcmu"), "audio/pcmu")
    greedy = recognizer.transcribe(samples).text
    others = recognizer.alternatives(samples, count=5)
    assert len(others) >= 2 and len(set(others)) == len(others)
    wanted = next(text for text in others if text != greedy)
    # the first transcript does not pass the check: the first alternative that does replaces it
    assert recognizer.transcribe(samples, accept=lambda text: text == wanted).text == wanted
    # one that passes stays; when none passes, the first transcript stays
    assert recognizer.transcribe(samples, accept=lambda text: True).text == greedy
    assert recognizer.transcribe(samples, accept=lambda text: False).text == greedy


def test_transcripts_are_bounded_and_loops_are_no_answer() -> None:
    assert stt.max_new_tokens(1.0) == 36 and stt.max_new_tokens(60.0) == 220
    assert not stt._accepted(lambda text: True, "It's 6 1 2 0 0 0 0 0 0 0 0 0 0 0")
    assert stt._accepted(lambda text: True, "It's 6 1 2 0 0.")
    assert not stt._accepted(lambda text: True, "  ")


def test_alternatives_decode_the_transcriptions_encoding_again(synthesizer: Synthesizer, recognizer: Recognizer, monkeypatch: Any) -> None:
    """The encoder is most of a recognition's cost: weighing alternatives after a transcription
    decodes its encoder output again (same hypotheses as encoding afresh) instead of encoding twice."""
    monkeypatch.setattr(recognizer, "clearly_heard", 0.0)
    pcm = synthesizer.synthesize_all("My date of birth is the third of April nineteen eighty five.")
    samples = audio.to_float32_16k(audio.encode_from_pcm16_24k(pcm, "audio/pcmu"), "audio/pcmu")
    fresh = recognizer.alternatives(samples, count=5)
    model = recognizer._model
    keep = model.encode
    encodings = []

    def counted(features: object) -> object:
        encodings.append(1)
        return keep(features)

    model.encode = counted
    try:
        wanted = fresh[1] if len(fresh) > 1 else fresh[0]
        assert recognizer.transcribe(samples, accept=lambda text: text == wanted).text == wanted
        assert len(encodings) == 1
    finally:
        model.encode = keep
    assert stt._ENCODED.outputs is None  # nothing of the call is kept on the thread
