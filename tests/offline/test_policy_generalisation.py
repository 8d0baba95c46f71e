"""What makes the policy work on scenarios it was not written for: a clear winner by margin, word
forms that meet, questions for information kept off data-changing tools, numbers not read twice,
spelled identifiers, split years and other words for a re-ask. Examples are the tests' own (not
the evaluation sets')."""

from __future__ import annotations

from realtime.offline import hints
from realtime.offline.policy import arguments, intent, items, vocabulary
from realtime.offline.policy.dialogue import DialoguePolicy
from tests.offline import toolsets as ts
from tests.offline.test_policy_conversations import Call

SHOP = "You are the order desk of Pine Hardware."
SHOP_TOOLS = [
    ts.fn("cancel_delivery", "Cancel a hardware delivery.", {"delivery_number": {"type": "string", "pattern": "^[0-9]{6}$", "description": "The six-digit delivery number"}}, ["delivery_number"]),
    ts.fn("track_delivery", "Tell the caller where a hardware delivery is.", {"delivery_number": {"type": "string", "pattern": "^[0-9]{6}$", "description": "The six-digit delivery number"}}, ["delivery_number"]),
]


def _state(tools: list[dict], text_mode: bool = False) -> intent._State:
    return DialoguePolicy()._state("", items.parse_tools(tools), [], text_mode)


def test_word_forms_meet_on_both_sides() -> None:
    assert vocabulary.tokens("moved") == vocabulary.tokens("move")
    assert vocabulary.tokens("cancellation") == vocabulary.tokens("cancel")
    assert vocabulary.tokens("immunisation") == vocabulary.tokens("vaccinated") == vocabulary.tokens("a booster")


def test_a_tie_is_no_match_and_a_clear_winner_is() -> None:
    st = _state(SHOP_TOOLS)
    _cancel, track = st.tools
    assert intent.best_tool(st, ["about the hardware"], set()) is None  # a weak word both tools share
    assert intent.best_tool(st, ["where is my delivery?"], set()) is track


def test_a_question_for_information_takes_the_read_only_tool() -> None:
    st = _state(SHOP_TOOLS)
    assert intent.INFO_QUESTION.match("Has my delivery been cancelled yet?")
    assert not intent.INFO_QUESTION.match("Can you cancel my delivery?")
    # "cancelled" names the data-changing tool, but the caller asks, so only a strong match counts
    assert intent.best_tool(st, ["Has it been cancelled?"], set()) is None
    assert intent.best_tool(st, ["Please cancel my delivery."], set()) is st.tools[0]


def test_words_of_a_question_are_no_free_text_value_and_a_question_back_is_no_answer() -> None:
    tools = [
        ts.fn("reroute_box", "Send a box to a new address.", {"new_address": {"type": "string", "description": "The new address"}}, ["new_address"]),
        ts.fn("get_box_status", "Tell the caller where the box is.", {}, []),
    ]
    call = Call("You are Boxline.", tools, {})
    call.caller("I'd like to reroute a box.")
    assert call.calls == [] and call.said[-1] == "Could you please tell me the new address?"
    call.caller("Has it left the depot yet?")
    assert call.calls == [] and "new address" in call.said[-1]


def test_a_number_read_for_one_detail_is_not_another() -> None:
    tools = [ts.fn("reorder_filters", "Place a repeat order of water filters.", {
        "customer_number": {"type": "string", "pattern": "^[0-9]{5}$", "description": "The customer number"},
        "packs": {"type": "integer", "minimum": 1, "description": "How many packs"},
    }, ["customer_number", "packs"])]
    call = Call("You are AquaPure.", tools, {})
    call.caller("I need more water filters.")
    call.caller("It's 7 2 0 1 8.")
    # the digits are the customer number, not also 72018 or 7 packs; "more" says no count: asked
    assert call.calls == [] and "how many packs" in call.said[-1].lower()
    call.caller("Three packs.")
    call.caller("Yes.")  # the customer number the caller said is read back
    assert call.calls == [("reorder_filters", {"customer_number": "72018", "packs": 3})]


def test_identifiers_spelled_a_character_at_a_time() -> None:
    def read(text: str, pattern: str) -> list[str]:
        return [v for r in arguments.digit_readings(text) for v in arguments.pattern_candidates(pattern, r)]

    assert read("It's Q R 5 5 0 1 9.", r"^[A-Z]{2}[0-9]{5}$") == ["QR55019"]
    assert read("tango 7 echo 2 2", r"^[A-Z0-9]{5}$")[0] == "T7E22"
    assert read("It's 3 3 8 1 7 2 0 0 5.", r"^[A-Z][0-9]{4}$") == []  # no letter: no code from digits alone
    assert read("The last four are free free 2 6.", r"^[0-9]{4}$") == ["3326"]


def test_years_split_by_the_recogniser_and_of_heard_as_on() -> None:
    def date(text: str) -> list[str]:
        return [d for d, _ in arguments.find_dates(arguments.normalize_numbers(text))]

    assert date("On the 4th of August 2030, 1.") == ["2031-08-04"]
    assert date("August 4, 20 31") == ["2031-08-04"]
    assert date("the second on October 1990") == ["1990-10-02"]
    assert date("August 4, 2030 at 1 pm") == ["2030-08-04"]


def test_identifier_prompts_write_digits_one_by_one() -> None:
    assert hints.spaced_digits("ORD-98765") == "ORD-9 8 7 6 5"
    tools = [ts.fn("find_box", "Find a box.", {"box_id": {"type": "string", "pattern": r"^B\d{4}$", "description": "The box ID"}}, ["box_id"])]
    prompt = hints.recognition_prompt("", tools, [ts.assistant("Could you please tell me the box ID?")])
    assert "B9 8 7 6" in prompt


def test_the_fallback_is_asked_in_other_words() -> None:
    call = Call(SHOP, SHOP_TOOLS, {})
    call.caller("My hardware delivery.")
    call.caller("My hardware delivery.")
    call.caller("My hardware delivery.")
    assert call.calls == [] and len(set(call.said[-3:])) == 3


def test_a_date_is_read_back_before_a_data_changing_call_and_a_no_takes_a_fresh_one() -> None:
    tools = [ts.fn("book_tasting", "Book a wine tasting.", {"day": {"type": "string", "format": "date", "description": "The day of the tasting"}}, ["day"])]
    call = Call("You are Vine Hill Cellars.", tools, {})
    call.caller("I'd like to book a tasting.")
    call.caller("August 4, 2020.")  # the recogniser dropped the end of the year: the coming 4 August is read back
    coming = arguments.forward_date("2020-08-04")
    assert call.calls == [] and coming in call.said[-1] and call.said[-1].endswith("Shall I book the tasting?")
    call.caller("No, that's not right.")
    assert call.calls == [] and "day of the tasting" in call.said[-1]
    call.caller("August 4, 2031.")
    assert call.calls == [] and "2031" in call.said[-1]
    call.caller("Yes.")
    assert call.calls == [("book_tasting", {"day": "2031-08-04"})]


def test_pieces_of_a_misheard_identifier_are_no_count_and_not_right_is_a_no() -> None:
    tools = [ts.fn("pause_plan", "Pause a meal plan.", {
        "plan_id": {"type": "string", "pattern": "^[0-9]{6}$", "description": "The six-digit plan ID"},
        "weeks": {"type": "integer", "minimum": 1, "maximum": 8, "description": "How many weeks to pause"},
    }, ["plan_id", "weeks"])]
    call = Call("You are FreshBox.", tools, {})
    call.caller("Please pause my meal plan for three weeks.")
    call.caller("It's 524 1.")  # a misheard ID: its pieces ("1") are not the weeks
    assert call.calls == []
    call.caller("5 2 4 1 7 7.")
    call.caller("Yes.")
    assert call.calls == [("pause_plan", {"plan_id": "524177", "weeks": 3})]
    assert arguments.match_bool("So, that's not right.") is False  # "No," heard as "So,"
    assert arguments.match_bool("It is the wrong size.") is None


def test_a_misheard_option_by_its_sound_and_questions_address_the_caller() -> None:
    from realtime.offline.policy.wording import _label

    assert arguments.enum_by_sound(["uptown", "lakeside", "harbour"], "The harbor one.") == "harbour"
    assert arguments.enum_by_sound(["uptown", "lakeside", "harbour"], "The lakes tide one.") == "lakeside"
    assert arguments.enum_by_sound(["gold", "silver"], "the golden one") is None  # too short to tell
    assert arguments.enum_by_sound(["lakeside", "lakefront"], "the lake one") is None  # not one value
    assert _label("pickup", {"description": "The branch where the customer will pick it up"}) == "the branch where you will pick it up"
    assert _label("n", {"description": "The seven-digit customer number"}) == "the seven-digit customer number"
