"""A response whose instructions ask for exact words gets exactly those words; an agent's own
instructions that merely quote a line to say somewhere do not turn every answer into that line."""

from __future__ import annotations

import json

import pytest

from realtime.offline.policy import DialoguePolicy, verbatim_request
from realtime.session import SAY_INSTRUCTIONS

ITEMS = [
    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello, how can I help?"}]},
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "I want to return my headphones"}]},
]


@pytest.mark.parametrize("line", ["Please hold.", 'The "restocking" fee is waived: no charge.', "Ça va? 100% sure."])
def test_the_engines_say_instructions_are_followed_word_for_word(line: str) -> None:
    instructions = SAY_INSTRUCTIONS + json.dumps(line, ensure_ascii=False)
    assert verbatim_request(instructions) == line
    answer = DialoguePolicy().respond(instructions, [], ITEMS, tool_choice="none")
    assert (answer.text, answer.function_call) == (line, None)


@pytest.mark.parametrize("instructions, expected", [
    ('Say exactly: "Please hold."', "Please hold."),
    ("Repeat word for word: 'One moment.'", "One moment."),
    ("Greet by saying exactly: 'Thanks for calling Acme.' Then ask for the phone number.", None),
    ("You are the returns agent. Say 'goodbye' at the end of the call.", None),
    ("Say exactly the following:", None),
])
def test_only_instructions_ending_in_the_exact_words_are_verbatim(instructions: str, expected: str | None) -> None:
    assert verbatim_request(instructions) == expected


def test_an_agent_quoting_its_greeting_still_runs_its_policy() -> None:
    instructions = "You are Acme's agent. Greet by saying exactly: 'Thanks for calling Acme.' Then help the caller."
    answer = DialoguePolicy().respond(instructions, [], ITEMS)
    assert answer.text != "Thanks for calling Acme."
