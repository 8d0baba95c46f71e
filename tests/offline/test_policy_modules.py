"""Each part of the dialogue policy on its own: items, vocabulary, intent, arguments, wording,
summaries (the conversations themselves are in test_policy_conversations and friends)."""

from __future__ import annotations

from realtime.offline.policy import arguments, intent, items, summaries, vocabulary, wording
from realtime.offline.policy.dialogue import DialoguePolicy
from tests.offline import toolsets as ts

TOOLS = [
    ts.fn("block_card", "Block a lost or stolen bank card.", {"last_four": {"type": "string", "pattern": "^[0-9]{4}$", "description": "Last four digits of the card"}}, ["last_four"]),
    ts.fn("get_balance", "Tell the caller their account balance.", {}, []),
]


def test_items_parse_tools_and_turns() -> None:
    tools = items.parse_tools(TOOLS)
    assert [t.name for t in tools] == ["block_card", "get_balance"] and tools[0].required == ["last_four"]
    turns = items.parse_items([ts.user_audio("hello"), {"type": "message", "role": "user", "content": []},
                               {"type": "function_call", "name": "get_balance", "arguments": "{}", "call_id": "c1"},
                               {"type": "function_call_output", "call_id": "c1", "output": '{"error": "down"}'}])
    assert [t.kind for t in turns] == ["user", "silence", "call", "output"]
    assert turns[3].name == "get_balance" and turns[3].ok is False


def test_vocabulary_reads_both_sides_through_the_same_groups() -> None:
    assert vocabulary.tokens("The lights went out") == ["power", "outag"]  # stems: "outage" -> "outag"
    assert vocabulary.tokens("a power outage") == ["power"]  # the phrase is one concept
    assert "power" in vocabulary.tokens("no electricity")
    phrases = vocabulary.scenario_phrases("Be kind.\nPhrases callers use:\n- my plastic: card\n")
    assert vocabulary.expand("I lost my plastic", phrases) == "I lost my plastic card"
    assert vocabulary.scenario_phrases("no such section") == []


def test_intent_scores_names_above_descriptions() -> None:
    policy = DialoguePolicy()
    st = policy._state("", items.parse_tools(TOOLS), [], False)
    block, balance = st.tools
    assert intent.tool_score(st, block, "my card was stolen") > intent.tool_score(st, balance, "my card was stolen")
    assert intent.best_tool(st, ["what is my balance"], set()) is balance
    assert intent.best_tool(st, ["the weather is nice"], set()) is None


def test_arguments_by_schema_and_what_changes_data() -> None:
    assert arguments._extract_typed("pattern", "last_four", TOOLS[0]["parameters"]["properties"]["last_four"], "it ends in 4471") == "4471"
    assert arguments._extract_typed("date", "d", {"type": "string"}, "July 4, 1990") == "1990-07-04"
    assert arguments._enum_by_meaning(["no_connection", "slow_speed"], "it is really slow") == "slow_speed"
    tools = items.parse_tools(TOOLS)
    assert [arguments.changes_data(t) for t in tools] == [True, False]


def test_wording_of_questions_and_answers() -> None:
    assert wording._label("last_four", {"description": "Last four digits of the card"}) == "the last four digits of the card"
    assert wording._label("dob", {"description": "The customer's date of birth (YYYY-MM-DD)"}) == "your date of birth"
    assert wording.greeting('Greet the caller with "Hello, Acme here!"') == "Hello, Acme here!"
    assert wording.describe_output("get_balance", {"balance": 12}, True) == "Here's what I found: balance: 12."
    first = wording._reask(["your date of birth"], [{}], ["date"], 1)
    assert first != wording._reask(["your date of birth"], [{}], ["date"], 2)


def test_summaries() -> None:
    text = summaries.summarize(["user: my card is lost", "assistant: I blocked it."])
    assert text == "The caller said: my card is lost. The agent's last reply: I blocked it."
