"""Phone numbers and identifiers as tiny.en writes spoken digits, read back exactly.

The transcripts in the text tests are ones the recogniser produced for piper speech; the audio
tests run the piper voice through the recogniser (prompted as in a call: the question just asked,
see `realtime.offline.hints`) and the policy end to end.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bench.offline_digits import extract as extract_with
from bench.offline_digits import question_prompt
from realtime import audio
from realtime.offline.policy import DialoguePolicy
from realtime.offline.policy import arguments as ent
from realtime.offline.stt import Recognizer
from realtime.offline.tts import Synthesizer


def extract(kind: str, said: str, *, spoken_digits: bool = True) -> Any:
    """What the policy fills from ``said`` for a tool taking only that kind of detail (the
    benchmark's probe), reading spoken digits or not."""
    return extract_with(DialoguePolicy(spoken_digits=spoken_digits), kind, said)


@pytest.mark.parametrize(
    ("heard", "kind", "expected"),
    [
        ("It's 4,158,923,047.", "phone", "4158923047"),  # a cardinal number's thousands
        ("It's for 158923.047.", "phone", "4158923047"),  # "four" heard as "for"
        ("Double 5 5 1 2 3 4 5 6 7", "phone", "5551234567"),
        ("It's 8-0-0, double-2-3, 4-double-9-1.", "phone", "8002234991"),
        ("It's 8OO, double 23, 4,991.", "phone", "8002234991"),  # letter O, digits after "double"
        ("Double 5 5, 123-4567.", "phone", "5551234567"),
        ("My birthday is 12-25-1979.", "date", "1979-12-25"),
        ("My order number is 48,213.", "order", "ORD-48213"),
    ],
)
def test_transcripts_read_for_digits(heard: str, kind: str, expected: str) -> None:
    assert extract(kind, heard) == expected
    if kind != "date":  # the date form is read in both modes
        assert extract(kind, heard, spoken_digits=False) != expected


def test_digits_already_repeated_and_cardinals() -> None:
    assert extract("phone", "Double-555-123-4567") == "5551234567"  # "double five five" written out
    said = "five billion five hundred fifty one million two hundred thirty four thousand five hundred sixty seven"
    assert extract("phone", f"My phone number is {said}") == "5551234567"


def test_literal_reading_first_and_homophones_only_when_needed() -> None:
    # a local number stays as said: "for" is a word here, and nothing longer fits
    assert extract("phone", "call me at 555 1234 for now") == "5551234"
    # a whole number as written wins over a homophone reading
    assert extract("phone", "it's for 4158923047") == "4158923047"
    assert extract("order", "I'm calling for order 12345") == "ORD-12345"
    assert ent.digit_readings("It's for 158923.047.") == ["It's for 158923.047.", "It's 4 158923.047."]


def test_number_words_are_left_alone_where_they_are_words() -> None:
    assert ent.normalize_numbers("a million thanks") == "a million thanks"
    assert ent.normalize_numbers("it was a double room") == "it was a double room"
    assert ent.normalize_numbers("four double") == "4 double"
    assert ent.normalize_numbers("double five triple seven") == "55777"
    assert ent.normalize_numbers("two million three hundred thousand") == "2300000"
    assert ent.find_dates("201-555-1988") == []


# piper speech that tiny.en without a prompt and the policy reading only written digits got
# wrong; each now comes back exactly
SPOKEN = [
    ("It's 4158923047.", "phone", "4158923047"),
    ("It's four one five eight nine two three oh four seven.", "phone", "4158923047"),
    pytest.param(
        "My number is two oh one, five five five, oh one nine eight.", "phone", "2015550198",
        # passed only while the default prompt held "212-555-0199"; tiny.en now writes "...-1988"
        marks=pytest.mark.xfail(strict=True, reason="heard as 201-555-1988 without a leaked answer in the prompt"),
    ),
    ("Double five five, one two three, four five six seven.", "phone", "5551234567"),
    ("It's eight oh oh, double two three, four double nine one.", "phone", "8002234991"),
]


def _heard(synthesizer: Synthesizer, recognizer: Recognizer, text: str, prompt: str | None) -> str:
    pcm = (synthesizer.synthesize_all(text) * 0.6).astype(np.int16)
    f16 = audio.to_float32_16k(audio.encode_pcm16(pcm, "audio/pcm"), "audio/pcm")
    return recognizer.transcribe(f16, prompt=prompt).text


@pytest.mark.parametrize(("said", "kind", "expected"), SPOKEN)
def test_spoken_numbers_through_the_engine(
    synthesizer: Synthesizer, recognizer: Recognizer, said: str, kind: str, expected: str
) -> None:
    prompt = question_prompt(kind)  # what the recogniser is told after the agent asked for it
    heard = _heard(synthesizer, recognizer, said, prompt)
    assert extract(kind, heard) == expected, heard
    assert _heard(synthesizer, recognizer, said, prompt) == heard  # the same audio, the same text
    before = _heard(synthesizer, recognizer, said, "")  # no prompt, digits only as written
    assert extract(kind, before, spoken_digits=False) != expected, before
