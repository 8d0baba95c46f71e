"""A free-text ``reason`` comes from what the caller said about why, not from the first request."""

from __future__ import annotations

from typing import Any

from realtime.offline.policy import DialoguePolicy
from tests.offline import toolsets as ts
from tests.offline.test_policy_conversations import Call

INSTRUCTIONS = (
    "You are the returns agent for Acme Retail. Look up the customer's orders, check the return "
    "policy for the order, then start the return."
)
TOOLS = [
    ts.fn(
        "lookup_orders",
        "List the customer's orders by phone number.",
        {"phone_number": ts.PHONE},
        ["phone_number"],
    ),
    ts.fn(
        "check_return_policy",
        "Check whether an order can still be returned.",
        {"order_id": ts.ORDER_ID},
        ["order_id"],
    ),
    ts.fn(
        "start_return",
        "Start a return for an order that check_return_policy said is eligible. Confirm with the caller first.",
        {
            "order_id": ts.ORDER_ID,
            "reason": {"type": "string", "description": "Why the caller returns it, in their words.", "maxLength": 300},
        },
        ["order_id", "reason"],
    ),
    ts.escalate_to_human(),
]
OUTPUTS: dict[str, Any] = {
    "lookup_orders": {"orders": [{"order_id": "ORD-12345", "item": "running shoes", "status": "delivered"}]},
    "check_return_policy": {"order_id": "ORD-12345", "eligible": True},
    "start_return": {"return_id": "RET-777", "status": "started"},
}


def start_return_reason(call: Call) -> str:
    reasons = [args["reason"] for name, args in call.calls if name == "start_return"]
    assert len(reasons) == 1, call.said
    return str(reasons[0])


def test_reason_is_the_later_statement_not_the_request() -> None:
    call = Call(INSTRUCTIONS, TOOLS, OUTPUTS)
    call.caller("Hi, I'd like to return my running shoes.")
    assert call.said[-1] == "Could you please tell me the order ID?"
    call.caller("I don't know it, but my phone number is 5551234567.")
    assert [name for name, _ in call.calls] == ["lookup_orders", "check_return_policy"]
    assert call.said[-1].endswith("Shall I start the return for ORD-12345?")
    call.caller("Yes please, they arrived damaged, the sole is coming off.")
    assert start_return_reason(call) == "They arrived damaged, the sole is coming off."


def test_the_most_recent_explanation_wins() -> None:
    call = Call(INSTRUCTIONS, TOOLS, OUTPUTS)
    call.caller("I want to return my running shoes because they are too small.")
    call.caller("My number is 5551234567. Actually the real problem is that they arrived damaged.")
    call.caller("Yes.")
    assert start_return_reason(call) == "My number is 5551234567. Actually the real problem is that they arrived damaged."


def test_without_a_later_explanation_the_request_is_the_reason() -> None:
    call = Call(INSTRUCTIONS, TOOLS, OUTPUTS)
    call.caller("I want to return my running shoes because they are too small.")
    call.caller("My phone number is 5551234567.")
    call.caller("Yes, go ahead.")  # a confirmation restates nothing and explains nothing
    assert start_return_reason(call) == "I want to return my running shoes because they are too small."


def test_a_restated_request_is_not_the_reason() -> None:
    call = Call(INSTRUCTIONS, TOOLS, OUTPUTS)
    call.caller("The zipper broke on my order so I need to return it.")
    call.caller("It's 5551234567, I want to return it.")
    call.caller("Yes.")
    assert start_return_reason(call) == "The zipper broke on my order so I need to return it."


def test_reason_choice_is_deterministic() -> None:
    items = [
        ts.user_audio("I'd like to return my running shoes."),
        ts.assistant("Could you please tell me the order ID?"),
        ts.user_audio("ORD-12345. The left shoe arrived with a torn seam."),
    ]
    tools = [TOOLS[2]]
    first = DialoguePolicy().respond(INSTRUCTIONS, tools, items, "required")
    assert first.function_call is not None
    assert first.function_call.arguments == {"order_id": "ORD-12345", "reason": "ORD-12345. The left shoe arrived with a torn seam."}
    for _ in range(3):
        again = DialoguePolicy().respond(INSTRUCTIONS, tools, items, "required")
        assert again == first


def test_a_long_reason_is_cut_to_the_schemas_max_length_at_a_word() -> None:
    import jsonschema

    short = {**TOOLS[2], "parameters": {**TOOLS[2]["parameters"], "properties": {
        **TOOLS[2]["parameters"]["properties"],
        "reason": {"type": "string", "description": "Why the caller returns it, in their words.", "maxLength": 40},
    }}}
    items = [
        ts.user_audio("ORD-12345. The left shoe arrived with a torn seam and the box was crushed in transit too."),
    ]
    answer = DialoguePolicy().respond(INSTRUCTIONS, [short], items, "required")
    assert answer.function_call is not None
    reason = answer.function_call.arguments["reason"]
    assert reason == "ORD-12345. The left shoe arrived with a"
    jsonschema.validate(answer.function_call.arguments, short["parameters"])
