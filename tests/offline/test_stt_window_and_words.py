"""Recognition that costs less and hears answers of the expected form: the encoder reads a short
window (an utterance and a second of silence, at least 20 s) instead of Whisper's 30 s; a phrase
the recogniser says over and over is said once; a typed answer the first transcript misses is
decoded again with only the words such an answer is made of, and taken only when it is an answer
and about as likely as the free transcript. A booked day heard with a year already over is the
coming such day."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from realtime import audio
from realtime.offline import hints, stt
from realtime.offline.policy import arguments
from realtime.offline.policy.items import parse_tools
from realtime.offline.stt import Recognizer
from realtime.offline.tts import Synthesizer
from tests.offline import toolsets as ts
from tests.offline.test_policy_conversations import Call


def phone(synthesizer: Synthesizer, text: str) -> Any:
    pcm = synthesizer.synthesize_all(text)
    return audio.to_float32_16k(audio.encode_from_pcm16_24k(pcm, "audio/pcmu"), "audio/pcmu")


def said(role: str, text: str) -> dict[str, Any]:
    kind = "input_text" if role == "user" else "output_text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}


SEATS = [ts.fn(
    "book_seats",
    "Book seats for a show.",
    {
        "section": {"type": "string", "enum": ["stalls", "balcony", "box"], "description": "Where in the hall to sit"},
        "code": {"type": "string", "pattern": r"^[A-Z]{2}\d{4}$", "description": "The booking code"},
        "pin": {"type": "string", "pattern": r"^\d{4}$", "description": "The four-digit PIN"},
        "note": {"type": "string", "description": "A note for the box office"},
    },
    ["section"],
)]


def test_a_phrase_said_over_and_over_is_said_once() -> None:
    assert stt.said_once("The brakes. The brakes. The brakes.") == "The brakes."
    assert stt.said_once("Please call off my order. Please call off my order") == "Please call off my order."
    assert stt.said_once("The break. The break. The break") == "The break."  # the last time cut short
    assert stt.said_once("5 5 5 5") == "5 5 5 5"  # digits said again are digits
    assert stt.said_once("It ends in 4 4 7 1.") == "It ends in 4 4 7 1."
    assert stt.said_once("") == ""


def test_the_encoder_reads_a_short_window(synthesizer: Synthesizer, recognizer: Recognizer) -> None:
    second = stt.SAMPLE_RATE
    assert recognizer.window_seconds == stt.WINDOW_SECONDS == 20.0
    assert recognizer._window(np.zeros(3 * second, dtype=np.float32)) == 20 * second
    assert recognizer._window(np.zeros(24 * second, dtype=np.float32)) == 25 * second  # and a second of silence
    assert recognizer._window(np.zeros(int(29.5 * second), dtype=np.float32)) is None  # Whisper's own 30 s
    samples = phone(synthesizer, "It's four five one two two nine.")
    short = recognizer.transcribe(samples).text
    whole = Recognizer(cpu_threads=2, window_seconds=30).transcribe(samples).text
    assert "451229" in short.replace(" ", "").replace("-", "")
    assert short.replace(" ", "") == whole.replace(" ", "")
    assert recognizer.transcribe(np.zeros(2 * second, dtype=np.float32)).text == ""  # silence says nothing


def test_the_window_comes_from_the_environment(monkeypatch: Any) -> None:
    monkeypatch.setenv("REALTIME_OFFLINE_STT_WINDOW_S", "20")
    assert stt.encoder_window_seconds() == 20.0
    monkeypatch.setenv("REALTIME_OFFLINE_STT_WINDOW_S", "2")
    assert stt.encoder_window_seconds() == 5.0  # bounded
    monkeypatch.setenv("REALTIME_OFFLINE_STT_WINDOW_S", "soon")
    assert stt.encoder_window_seconds() == stt.WINDOW_SECONDS


def test_a_typed_question_says_what_its_answer_is_made_of() -> None:
    def expect(question: str) -> Any:
        return hints.answer_check("You are the box office.", SEATS, [said("assistant", question)])

    option = expect("Could you tell me where in the hall to sit? The options are stalls, balcony, or box.")
    assert option("The balcony.") and not option("The mall can eat.")
    assert {"stalls", "balcony", "box", "the", "it's"} <= option.vocabulary.words
    assert not option.vocabulary.digits
    code = expect("Could you please tell me the booking code?")
    assert code.vocabulary.digits and code.vocabulary.letters
    pin = expect("Could you please tell me the four-digit PIN?")
    assert pin.vocabulary.digits and not pin.vocabulary.letters
    read_back = expect("Let me read that back: the booking code: KR2055. Shall I book the seats?")
    assert {"yes", "no", "not", "right"} <= read_back.vocabulary.words
    # a free-text detail takes any words: no vocabulary; an open question the words of the tasks
    assert expect("Could you please tell me the booking code and a note for the box office?").vocabulary is None
    assert {"book", "seats", "show"} <= expect("How can I help you today?").vocabulary.words


def test_only_the_answers_words_and_a_caller_who_said_something_else(synthesizer: Synthesizer, recognizer: Recognizer) -> None:
    vocabulary = hints.Vocabulary(frozenset({"stalls", "balcony", "box", "the", "please"}))
    suppressed = set(recognizer.suppressed_for(vocabulary))
    tokenizer = recognizer._tokenizer()
    assert not suppressed & set(tokenizer.encode(" balcony"))
    assert set(tokenizer.encode(" mall")) <= suppressed
    assert recognizer.suppressed_for(vocabulary) is recognizer.suppressed_for(vocabulary)  # cached

    def is_option(text: str) -> bool:
        return arguments.match_enum(["stalls", "balcony", "box"], text) is not None

    assert recognizer.kept_to_words(phone(synthesizer, "The balcony, please."), vocabulary, is_option) is not None
    # a question back is not forced into an option: kept to these words it is no answer, or far
    # less likely than what the recogniser hears freely
    off = phone(synthesizer, "What's the difference in price between them?")
    assert recognizer.kept_to_words(off, vocabulary, is_option) is None


def test_a_missed_typed_answer_is_decoded_again_in_its_words(synthesizer: Synthesizer, recognizer: Recognizer, monkeypatch: Any) -> None:
    monkeypatch.setattr(recognizer, "clearly_heard", 0.0)  # however sure the first transcript
    samples = phone(synthesizer, "It ends in four four seven one.")
    greedy = recognizer.transcribe(samples).text
    vocabulary = hints.Vocabulary(frozenset(hints.FILLERS | {"four", "digits", "card"}), digits=True)
    kept = recognizer.kept_to_words(samples, vocabulary, lambda text: "4 4 7 1" in text and text != greedy)
    assert kept is not None and kept != greedy
    expectation = hints.Expectation(lambda text: text == kept, vocabulary)
    assert recognizer.transcribe(samples, accept=expectation).text == kept
    # with no vocabulary the beam's alternatives are weighed as before (none fits: greedy stays)
    assert recognizer.transcribe(samples, accept=hints.Expectation(lambda text: text == kept)).text in (kept, greedy)


def test_a_booked_day_heard_with_a_year_over_is_the_coming_one() -> None:
    today = dt.date(2026, 12, 2)
    assert arguments.forward_date("2020-06-09", today) == "2027-06-09"
    assert arguments.forward_date("2000-12-12", today) == "2026-12-12"
    assert arguments.forward_date("2020-02-29", today) == "2028-02-29"
    assert arguments.forward_date("2020-06-09T00:00:00Z", today) == "2027-06-09T00:00:00Z"
    assert arguments.forward_date("2026-11-30", today) == "2026-11-30"  # this year: as heard (read back)
    assert arguments.forward_date("2027-01-14", today) == "2027-01-14"
    tools = parse_tools([
        ts.fn("book_eye_test", "Book an eye test.", {"day": {"type": "string", "format": "date", "description": "The day of the eye test"}}, ["day"]),
        ts.fn("open_claim", "Open an insurance claim.", {"when": {"type": "string", "format": "date", "description": "When the incident happened"}}, ["when"]),
        ts.fn("verify_caller", "Verify the caller.", {"date_of_birth": {"type": "string", "format": "date", "description": "Date of birth"}}, ["date_of_birth"]),
    ])
    book, claim, verify = tools
    assert arguments.is_coming_day(book, "day", book.properties["day"])
    assert not arguments.is_coming_day(claim, "when", claim.properties["when"])
    assert not arguments.is_coming_day(verify, "date_of_birth", verify.properties["date_of_birth"])


def test_the_read_back_holds_the_coming_day() -> None:
    tools = [ts.fn("book_eye_test", "Book an eye test.", {"day": {"type": "string", "format": "date", "description": "The day of the eye test"}}, ["day"])]
    call = Call("You are the optician's line.", tools, {})
    call.caller("I'd like to book an eye test.")
    call.caller("On the ninth of June 2020.")
    coming = arguments.forward_date("2020-06-09")
    assert coming[:4] >= str(dt.date.today().year) and coming[5:] == "06-09"
    assert coming in call.said[-1] and "2020" not in call.said[-1]
    call.caller("Yes, please go ahead.")
    assert call.calls == [("book_eye_test", {"day": coming})]


def test_an_open_question_is_answered_in_the_words_of_what_the_agent_can_do() -> None:
    tools = [
        ts.fn("reorder_lenses", "Reorder contact lenses.", {"boxes": {"type": "integer", "description": "How many boxes"}}, ["boxes"]),
        ts.fn("book_eye_test", "Book an eye test.", {"day": {"type": "string", "format": "date", "description": "The day of the eye test"}}, ["day"]),
        ts.fn("transfer_to_billing", "Hand the caller to billing.", {}, []),
    ]
    instructions = "You are the optician's line.\nPhrases callers use:\n- my peepers: eyes\n"
    expectation = hints.answer_check(instructions, tools, [said("assistant", "Hello! How can I help you today?")])
    words = expectation.vocabulary.words
    assert {"reorder", "contact", "lenses", "eye", "test", "book", "boxes", "peepers"} <= words  # the tools' and the agent's words
    assert {"i'd", "like", "need", "help"} <= words  # a request's words
    assert "contacts" in words and "booked" in words  # plain inflections
    assert "billing" not in words  # a handoff is not a task of this agent
    assert {"reserve", "appointment"} & words  # the general vocabulary's words for booking
    assert "balcony" not in words and expectation.vocabulary.digits


def test_what_was_heard_clearly_is_not_read_again(synthesizer: Synthesizer, recognizer: Recognizer, monkeypatch: Any) -> None:
    """A transcript the recogniser is sure of that is no answer of the expected form is what the
    caller said (a question back, another request): no other readings are decoded (they cost
    about as much as the transcription)."""
    samples = phone(synthesizer, "What are your opening hours on Sunday?")
    vocabulary = hints.Vocabulary(frozenset(hints.FILLERS | {"four", "digits", "card"}), digits=True)
    expectation = hints.Expectation(lambda text: False, vocabulary)
    decodes: list[int] = []
    keep = recognizer._decode

    def counted(*args: Any, **kwargs: Any) -> Any:
        decodes.append(1)
        return keep(*args, **kwargs)

    monkeypatch.setattr(recognizer, "_decode", counted)
    plain = recognizer.transcribe(samples).text
    assert len(decodes) == 1 and "opening hours" in plain.lower()
    decodes.clear()
    assert recognizer.transcribe(samples, accept=expectation).text == plain
    assert len(decodes) == 1  # the transcription only
    monkeypatch.setattr(recognizer, "clearly_heard", 0.0)  # unsure: kept to the words, then the beam
    decodes.clear()
    assert recognizer.transcribe(samples, accept=expectation).text == plain
    assert len(decodes) == 3  # the transcription, kept to the words (its free score reused), the beam
