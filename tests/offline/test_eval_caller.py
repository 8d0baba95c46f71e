"""The simulated caller of ``bench.offline_eval``: asked which task it wants it says its need again
(it does not answer a detail because an option happens to name it), and it rejects a read-back
that gives another option or number than its own."""

from __future__ import annotations

from bench.offline_eval import Case, caller_reply, load, run_case
from realtime.offline.policy import DialoguePolicy

TOOLS = [
    {
        "type": "function",
        "name": "open_ticket",
        "description": "Open a support ticket.",
        "parameters": {
            "type": "object",
            "properties": {
                "issue": {"type": "string", "enum": ["no_connection", "slow_speed"], "description": "The kind of problem"},
                "devices": {"type": "integer", "description": "How many devices"},
            },
            "required": ["issue", "devices"],
        },
    },
    {"type": "function", "name": "get_policy", "description": "Read the fair use policy.", "parameters": {"type": "object", "properties": {}}},
]
CASE = Case(
    "isp", "You are the help line.", TOOLS, {}, "My internet is slow.",
    [{"cues": ["policy", "kind of problem"], "say": "It's slow."}, {"cues": ["devices"], "say": "Two devices."}],
    {"tool": "open_ticket", "arguments": {"issue": "slow_speed", "devices": 2}},
)


def test_asked_which_task_the_caller_says_its_need_again() -> None:
    options = "I'm sorry, I didn't catch that. I can open ticket or get policy. What would you like to do?"
    assert caller_reply(CASE, options, 1) == "My internet is slow."
    assert caller_reply(CASE, options, 2) == "I told you, my internet is slow."
    assert caller_reply(CASE, "Could you please tell me the kind of problem?", 1) == "It's slow."


def test_a_read_back_of_another_option_or_number_is_rejected() -> None:
    assert caller_reply(CASE, "Let me read that back: the kind of problem: no connection; how many devices: 2. Shall I open the ticket?", 1) == "No, that's not right."
    assert caller_reply(CASE, "Let me read that back: the kind of problem: slow speed; how many devices: 3. Shall I open the ticket?", 1) == "No, that's not right."
    assert caller_reply(CASE, "Let me read that back: the kind of problem: slow speed; how many devices: 2. Shall I open the ticket?", 1) == "Yes, please go ahead."


def test_the_dev_set_by_text() -> None:
    policy = DialoguePolicy()
    outcomes = [run_case(case, policy) for case in load("dev", phrasings=1)]
    assert sum(o.wrong_calls for o in outcomes) == 0
    assert all(o.turns >= 1 for o in outcomes) and any(o.success for o in outcomes)


def test_an_identifier_read_back_with_other_letters_is_rejected() -> None:
    tool = {"type": "function", "name": "refund", "description": "Refund tickets.", "parameters": {"type": "object", "properties": {
        "code": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{4}$", "description": "The booking code"}}, "required": ["code"]}}
    case = Case("tickets", "You are the box office.", [tool], {}, "A refund, please.", [], {"tool": "refund", "arguments": {"code": "KR2055"}})
    assert caller_reply(case, "Let me read that back: the booking code: AR2055. Shall I refund?", 1) == "No, that's not right."
    assert caller_reply(case, "Let me read that back: the booking code: KR2055. Shall I refund?", 1) == "Yes, please go ahead."
