"""Tools that change something run only on typed values or values the caller confirmed; free
text is read back first. Questions use parameter descriptions, are asked again in other words,
and general vocabulary (plus a scenario's own phrases) maps callers' words to tools and enums."""

from __future__ import annotations

from realtime.offline import policy as pol
from realtime.offline.policy import GOODBYE, DialoguePolicy
from tests.offline import toolsets as ts
from tests.offline.test_policy_conversations import Call

FLORIST = "You are the order line of Rosie's Flowers."
FLORIST_TOOLS = [
    ts.fn(
        "place_order",
        "Place a flower delivery order.",
        {
            "bouquet": {"type": "string", "description": "Which bouquet"},
            "recipient_address": {"type": "string", "description": "Where the flowers go"},
        },
        ["bouquet", "recipient_address"],
    ),
    ts.fn("get_opening_hours", "Tell the caller when the shop is open.", {}, []),
]


def test_a_free_text_argument_is_asked_then_read_back_before_a_data_changing_call() -> None:
    call = Call(FLORIST, FLORIST_TOOLS, {"place_order": {"order": "F-1"}})
    call.caller("I'd like to order the spring tulips bouquet.")
    assert call.calls == []
    assert call.said[-1] == "Could you please tell me where the flowers go?"  # from the description
    call.caller("It's 9 Birch Lane.")
    assert call.calls == []
    assert call.said[-1] == (
        "Let me read that back: which bouquet: spring tulips; where the flowers go: 9 Birch Lane. Shall I place the order?"
    )
    call.caller("Yes, please.")
    assert call.calls == [("place_order", {"bouquet": "spring tulips", "recipient_address": "9 Birch Lane"})]


def test_a_no_to_the_read_back_asks_again_and_only_fresh_answers_count() -> None:
    call = Call(FLORIST, FLORIST_TOOLS, {"place_order": {"order": "F-1"}})
    call.caller("I'd like to order the spring tulips bouquet.")
    call.caller("9 Birch Lane.")
    call.caller("No, that's wrong.")
    assert call.calls == []
    assert call.said[-1] == "I'm sorry about that. Could you please tell me which bouquet again?"
    call.caller("The summer roses.")
    assert call.said[-1] == "Could you please tell me where the flowers go?"
    call.caller("14 Elm Road.")
    assert call.said[-1].startswith("Let me read that back: which bouquet: The summer roses; where the flowers go: 14 Elm Road.")
    call.caller("Yes.")
    assert call.calls == [("place_order", {"bouquet": "The summer roses", "recipient_address": "14 Elm Road"})]


def test_one_phrase_of_the_request_never_fills_two_details() -> None:
    call = Call(FLORIST, FLORIST_TOOLS, {})
    call.caller("Can I order red roses?")
    assert call.calls == [] and "where the flowers go" in call.said[-1]


def test_typed_arguments_need_no_read_back_but_digits_the_caller_said_are_read_back() -> None:
    tools = [ts.fn("block_card", "Block a lost card.", {
        "last_four": {"type": "string", "pattern": "^[0-9]{4}$", "description": "Last four digits of the card"},
        "reason": {"type": "string", "enum": ["lost", "stolen"], "description": "Why the card is blocked"},
    }, ["last_four", "reason"])]
    call = Call("You are the card line.", tools, {"block_card": {"blocked": True}})
    call.caller("I lost my card.")  # the enum value needs no read-back
    assert call.said[-1] == "Could you please tell me the last four digits of the card?"
    call.caller("It ends in 4471.")  # heard digits are easily misheard: read back
    assert call.calls == [] and "4471" in call.said[-1] and call.said[-1].endswith("?")
    call.caller("So, left out right.")  # a "no" misheard: no clear yes, so asked again
    assert call.calls == [] and "4471" in call.said[-1]
    call.caller("Yes, that's right.")
    assert call.calls == [("block_card", {"last_four": "4471", "reason": "lost"})]


def test_what_changes_data() -> None:
    tools = pol.parse_tools([
        ts.fn("book_visit", "Book a visit.", {}, []),
        ts.fn("get_prices", "Tell the caller the prices.", {}, []),
        ts.fn("renewals", "Renew every loan on a card.", {}, []),
        ts.fn("transfer_to_billing", "Hand the call to billing.", {}, []),
        ts.escalate_to_human(),
    ])
    assert [pol.changes_data(t) for t in tools] == [True, False, True, False, False]


def test_a_question_missed_twice_is_asked_in_other_words() -> None:
    tools = [ts.fn("verify_member", "Verify the member.", {"birth_date": {"type": "string", "format": "date", "description": "The member's date of birth"}}, ["birth_date"])]
    call = Call("You are the member line.", tools, {})
    call.caller("I need to verify myself.")
    first = call.said[-1]
    call.caller("I'm the third on April.")
    second = call.said[-1]
    call.caller("Something something.")
    third = call.said[-1]
    assert first == "Could you please tell me your date of birth?"
    assert len({first, second, third}) == 3, (first, second, third)
    assert "the month, the day and the year" in second


def test_closing_with_sentences() -> None:
    call = Call("You are the card line.", [ts.fn("get_balance", "Tell the caller their balance.", {}, [])], {})
    call.caller("No, that's all. Thank you, goodbye.")
    assert call.said[-1] == GOODBYE


def test_general_vocabulary_reaches_tools_and_enum_values() -> None:
    tools = [ts.fn("report_outage", "Report a service outage.", {
        "service": {"type": "string", "enum": ["power", "gas", "water"], "description": "Which service is out"},
    }, ["service"])]
    r = DialoguePolicy().respond("You are the utility line.", tools, [ts.user_audio("No electricity in the whole street.")])
    assert r.function_call is not None and r.function_call.arguments == {"service": "power"}


def test_a_scenarios_own_phrases_count_as_what_they_mean() -> None:
    tools = [ts.fn("report_outage", "Report a service outage.", {
        "service": {"type": "string", "enum": ["power", "gas", "water"], "description": "Which service is out"},
    }, ["service"])]
    said = [ts.user_audio("The juice is gone at my place.")]
    plain = DialoguePolicy().respond("You are the utility line.", tools, said)
    assert plain.function_call is None
    instructions = "You are the utility line.\n\nPhrases callers use:\n- \"the juice is gone\" means power outage\n"
    r = DialoguePolicy().respond(instructions, tools, said)
    assert r.function_call is not None and r.function_call.arguments == {"service": "power"}


def test_digits_written_one_by_one_fill_an_identifier() -> None:
    tools = [ts.fn("block_card", "Block a lost card.", {"last_four": {"type": "string", "pattern": "^[0-9]{4}$", "description": "Last four digits of the card"}}, ["last_four"])]
    call = Call("You are the card line.", tools, {"block_card": {"blocked": True}})
    call.caller("I lost my card.")
    call.caller("It ends in 4. 4. 7. 1.")  # how the recogniser writes digits said one at a time
    assert call.calls == [] and "4471" in call.said[-1]  # read back first
    call.caller("Yes.")
    assert call.calls == [("block_card", {"last_four": "4471"})]


def test_an_answer_without_words_to_a_pending_question_is_asked_again_not_greeted() -> None:
    tools = [ts.fn("freeze_plan", "Pause a plan.", {"plan_id": {"type": "string", "pattern": "^[0-9]{6}$", "description": "The six-digit plan number"}}, ["plan_id"])]
    call = Call("You are the plan line.", tools, {})
    call.caller("Please pause my plan.")
    assert call.said[-1] == "Could you please tell me the six-digit plan number?"
    call.caller("It's 4821-6.")  # five digits heard: not the answer, and not a hello either
    assert call.calls == [] and "six-digit plan number" in call.said[-1] and "Hello" not in call.said[-1]
