"""What the recogniser is told to expect from the question just asked, and what counts as such an
answer: an open question brings the words of what the agent can do; a read-back wants a yes or a
no; a question for typed details wants a value of each. Built from the schema, never from answers."""

from __future__ import annotations

from typing import Any

from realtime.offline import hints
from tests.offline.toolsets import fn


def said(role: str, text: str) -> dict[str, Any]:
    kind = "input_text" if role == "user" else "output_text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}


TOOLS = [
    fn(
        "extend_membership",
        "Extend a club membership.",
        {
            "member_code": {"type": "string", "pattern": r"^K\d{4}$", "description": "The membership code"},
            "months": {"type": "integer", "enum": [1, 3, 12], "description": "How many months to add"},
            "start": {"type": "string", "format": "date", "description": "The day the extension starts"},
        },
        ["member_code", "months", "start"],
    ),
    fn(
        "report_fault",
        "Report a broken machine in the gym.",
        {"machine": {"type": "string", "enum": ["treadmill", "rowing_machine"], "description": "Which machine"}},
        ["machine"],
    ),
]


def check(question: str) -> Any:
    return hints.answer_check("You are the club line.", TOOLS, [said("assistant", question)])


def test_an_open_question_is_heard_in_the_words_of_what_the_agent_can_do() -> None:
    prompt = hints.recognition_prompt("You are the club line.", TOOLS, [said("assistant", "Hello. How can I help you today?")])
    assert prompt == f"Hello. How can I help you today? extend membership, report fault, treadmill, rowing machine. {hints.DEFAULT_PROMPT}"
    accept = check("Hello. How can I help you today?")  # words the agent understands
    assert accept is not None
    assert accept("The treadmill is broken.") and not accept("My kids are in love.")
    assert hints.scenario_words([]) == ""


def test_a_read_back_wants_a_clear_yes_or_no() -> None:
    question = "Let me read that back: the membership code: K1234; how many months to add: 3. Shall I extend the membership?"
    accept = check(question)
    assert accept is not None
    assert accept("Yes, please.") and accept("No, that's not right.")
    assert not accept("The membership code.")
    prompt = hints.recognition_prompt("You are the club line.", TOOLS, [said("assistant", question)])
    assert prompt.endswith("Shall I extend the membership? Yes. No.")
    # a choice between tasks is no yes/no question: it wants a task
    choice = check("Sorry, I'm not sure which you need. Would you like me to extend membership or report fault?")
    assert choice is not None and choice("Report a fault, please.") and not choice("Yes.")


def test_a_question_for_typed_details_wants_a_value_of_each() -> None:
    accept = check("Could you please tell me the membership code and how many months to add?")
    assert accept is not None
    assert accept("K 4 4 0 2 and 3 months.")
    assert not accept("K 4 4 0 2.")  # no count
    assert not accept("I have it somewhere, 3 months.")  # no code
    date = check("Could you please tell me the day the extension starts?")
    assert date is not None and date("The fifth of May 2027.") and not date("On the fifth, I think.")
    option = check("Could you please tell me which machine?")
    assert option is not None and option("The treadmill.") and not option("It's broken.")
