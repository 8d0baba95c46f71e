"""Values as a recogniser delivers them: a count said with its unit, digits said one by one that
are no count, a "no" to a read-back that asks every value again (and no other tool hands the
rejected value back), a question for information that goes to the one tool that only reads, and
a tool that does not say what it does taken to change data."""

from __future__ import annotations

from realtime.offline import policy as pol
from realtime.offline.policy import arguments, wording
from tests.offline import toolsets as ts
from tests.offline.test_policy_conversations import Call

PERMITS = "You are the permit office of Elm Town."
PERMIT_TOOLS = [
    ts.fn(
        "extend_permit",
        "Extend a resident permit.",
        {
            "permit_number": {"type": "string", "pattern": r"^Q[0-9]{4}$", "description": "The permit number"},
            "months": {"type": "integer", "enum": [3, 6, 12], "description": "How many months to add"},
        },
        ["permit_number", "months"],
    ),
]
MEALS = "You are the order line of Noodle Bar."
MEAL_TOOLS = [
    ts.fn("cancel_meal", "Cancel a meal order.", {"ticket": {"type": "string", "pattern": r"^\d{5}$", "description": "The five-digit ticket"}}, ["ticket"]),
    ts.fn("track_meal", "Where a meal order is.", {"ticket": {"type": "string", "pattern": r"^\d{5}$", "description": "The five-digit ticket"}}, ["ticket"]),
]


def test_a_count_said_with_its_unit_beats_digits_of_an_identifier() -> None:
    schema = PERMIT_TOOLS[0]["parameters"]["properties"]["months"]
    assert arguments._extract_typed("enum", "months", schema, "3 4 4 0, 2, 6 months.") == 6
    assert arguments._extract_typed("enum", "months", schema, "3 4 4 0 2") is None  # digits one by one
    assert arguments._extract_typed("number", "boxes", {"type": "integer", "description": "How many boxes"}, "61204, 2 boxes") == 2


def test_a_no_to_a_read_back_asks_every_value_again() -> None:
    call = Call(PERMITS, PERMIT_TOOLS, {"extend_permit": {"extended": True}})
    call.caller("I'd like to extend my resident permit.")
    call.caller("3 4 4 0 and 6 months.")
    assert call.calls == [] and call.said[-1].startswith("Let me read that back: the permit number: Q3440")
    call.caller("No, that's not right.")
    assert call.said[-1] == "I'm sorry about that. Could you please tell me the permit number and how many months to add again?"
    call.caller("Q 4 4 0 2 and 6 months.")
    call.caller("Yes.")
    assert call.calls == [("extend_permit", {"permit_number": "Q4402", "months": 6})]


def test_a_rejected_value_is_not_handed_back_by_a_tool_that_reads() -> None:
    call = Call(MEALS, MEAL_TOOLS, {"cancel_meal": {"cancelled": True}, "track_meal": {"status": "cooking"}})
    call.caller("Please cancel my meal order.")
    call.caller("4 9 1 2 2.")
    assert call.said[-1].startswith("Let me read that back") and call.calls == []
    call.caller("No. Not right.")
    assert call.calls == [] and "again" in call.said[-1]
    call.caller("4 5 1 2 2.")
    call.caller("Yes.")
    assert call.calls[0] == ("cancel_meal", {"ticket": "45122"})


def test_a_question_for_information_goes_to_the_one_tool_that_reads() -> None:
    call = Call(MEALS, MEAL_TOOLS, {"track_meal": {"status": "cooking"}})
    call.caller("I ordered an hour ago, has it left the kitchen yet?")
    assert "ticket" in call.said[-1] and call.calls == []
    assert pol.intent.asks_for_information("I dropped it off last week, is it finished?")
    assert not pol.intent.asks_for_information("I dropped it off last week.")


def test_what_a_tool_does_when_it_does_not_say() -> None:
    tools = pol.parse_tools([
        ts.fn("extend_permit", "Extend a permit.", {}, []),
        ts.fn("top_up_card", "Add money to a card.", {}, []),
        ts.fn("permit_status", "Tell the caller where a permit application is.", {}, []),
        ts.fn("lookup_fine", "Look up a fine.", {}, []),
    ])
    assert [pol.changes_data(t) for t in tools] == [True, True, False, False]


def test_a_label_keeps_what_the_detail_is() -> None:
    assert wording._label("student_number", {"description": "The student's six-digit number"}) == "your six-digit student number"
    assert wording._label("member_code", {"description": "The membership code"}) == "the membership code"
    assert wording._label("card_last_four", {"description": "Last four digits of the card"}) == "the last four digits of the card"
