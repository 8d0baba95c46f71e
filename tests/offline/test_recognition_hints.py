"""The recogniser's prompt comes from the question just asked and the tool's schema, never from
answers: a date question biases towards a written date, a phone question towards digits, an enum
question towards its values; the default prompt holds no plausible caller data."""

from __future__ import annotations

import re
from typing import Any

from realtime.offline import hints
from realtime.offline.stt import DIGITS_PROMPT
from tests.offline.toolsets import fn


def said(role: str, text: str) -> dict[str, Any]:
    kind = "input_text" if role == "user" else "output_text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}


TOOLS = [
    fn(
        "verify_caller",
        "Verify the caller's identity.",
        {
            "phone_number": {"type": "string", "description": "The caller's phone number"},
            "date_of_birth": {"type": "string", "format": "date", "description": "The caller's date of birth"},
        },
        ["phone_number", "date_of_birth"],
    ),
    fn(
        "report_outage",
        "Report a utility outage at the caller's address.",
        {
            "service": {"type": "string", "enum": ["power", "water", "gas"], "description": "The service that is out"},
            "account_id": {"type": "string", "pattern": r"^AC-\d{6}$", "description": "The account number"},
        },
        ["service", "account_id"],
    ),
]


def prompt_after(question: str) -> str:
    return hints.recognition_prompt("You are an agent.", TOOLS, [said("user", "hi"), said("assistant", question)])


def test_default_prompt_holds_no_caller_data() -> None:
    # only the fixed placeholder digits, no dates, no identifiers (the bench's answers were here)
    assert DIGITS_PROMPT == hints.DEFAULT_PROMPT
    assert re.findall(r"\d[\d-]*\d", hints.DEFAULT_PROMPT) == [hints.SAMPLE_PHONE]
    assert not re.search(r"born|January|February|March|April|May|June|July|August|order", hints.DEFAULT_PROMPT)


def test_a_date_question_biases_towards_a_written_date() -> None:
    prompt = prompt_after("Thank you. Could you please tell me your date of birth?")
    assert prompt.startswith("Thank you. Could you please tell me your date of birth?")
    assert hints.SAMPLE_DATE in prompt and hints.SAMPLE_PHONE not in prompt


def test_a_phone_question_biases_towards_digits() -> None:
    prompt = prompt_after("Could you please tell me your phone number?")
    assert hints.SAMPLE_PHONE in prompt and hints.SAMPLE_DATE not in prompt


def test_an_enum_question_lists_its_values_and_a_pattern_its_shape() -> None:
    prompt = prompt_after("Could you tell me the service that is out? The options are power, water or gas.")
    assert "power, water, gas" in prompt
    prompt = prompt_after("Could you please tell me the account number?")
    assert "AC-9 8 7 6 5 4" in prompt  # digits one by one: spelled answers come back so


def test_no_question_gives_the_default_and_a_bad_context_never_fails() -> None:
    assert hints.recognition_prompt("x", TOOLS, []) == hints.DEFAULT_PROMPT
    assert hints.prompt_for(None) == hints.DEFAULT_PROMPT
    assert hints.prompt_for(object()) == hints.DEFAULT_PROMPT


def test_pattern_samples() -> None:
    assert hints.pattern_sample(r"^ORD-\d{5}$") == "ORD-98765"
    assert hints.pattern_sample(r"^[0-9]{4}$") == "9876"
    assert hints.pattern_sample(r"^(a|b)+$") is None
