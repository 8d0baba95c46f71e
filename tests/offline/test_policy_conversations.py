"""The dialogue policy end to end on text conversations shaped like the demo scenarios."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from realtime.offline.policy import ANYTHING_ELSE, DialoguePolicy, PolicyResponse
from tests.offline import toolsets as ts

Outputs = dict[str, Any]


class Call:
    """Drives the policy like the engine would: responses appended as items, tools answered from
    canned outputs, and the session switched to the target agent after a transfer."""

    def __init__(self, instructions: str, tools: list[dict[str, Any]], outputs: Outputs,
                 agents: dict[str, tuple[str, list[dict[str, Any]]]] | None = None) -> None:
        self.policy = DialoguePolicy()
        self.instructions, self.tools = instructions, tools
        self.outputs, self.agents = outputs, agents or {}
        self.items: list[dict[str, Any]] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.said: list[str] = []

    def respond(self) -> None:
        for _ in range(8):  # a response, then one more after each function call output
            r = self.policy.respond(self.instructions, self.tools, self.items)
            if r.text:
                self.said.append(r.text)
                self.items.append(ts.assistant(r.text))
            if r.function_call is None:
                return
            fc = r.function_call
            self.calls.append((fc.name, fc.arguments))
            self.items.append({"type": "function_call", "name": fc.name, "arguments": fc.arguments_json, "call_id": fc.call_id})
            out = self.outputs.get(fc.name, {"ok": True})
            out = out(fc.arguments) if callable(out) else out
            self.items.append({"type": "function_call_output", "call_id": fc.call_id, "output": json.dumps(out)})
            if fc.name in self.agents:
                self.instructions, self.tools = self.agents[fc.name]
        raise AssertionError("the policy kept calling tools")

    def caller(self, text: str) -> None:
        self.items.append(ts.user_audio(text))
        self.respond()


def verify(args: dict[str, Any]) -> dict[str, Any]:
    return {"verified": args == {"phone_number": "5551234567", "date_of_birth": "1985-03-03"}}


RETAIL_OUTPUTS: dict[str, Any] = {
    "verify_customer": verify,
    "transfer_to_returns": {"transferred": True},
    "transfer_to_sales": {"transferred": True},
    "lookup_orders": {"orders": [{"order_id": "ORD-12345", "item": "running shoes", "status": "delivered"},
                                 {"order_id": "ORD-54321", "item": "blue rain jacket", "status": "delivered"}]},
    "check_return_policy": {"eligible": True, "days_left": 20},
    "start_return": {"return_id": "RET-777", "status": "started"},
    "list_discounted_products": {"products": [{"name": "Trail jacket", "price": 79.0}]},
    "escalate_to_human": {"message": "A human agent will be with you shortly."},
}
AGENTS = {
    "transfer_to_returns": (ts.RETURNS_INSTRUCTIONS, ts.RETURNS_TOOLS),
    "transfer_to_sales": (ts.SALES_INSTRUCTIONS, ts.SALES_TOOLS),
}


def retail() -> Call:
    return Call(ts.AUTH_INSTRUCTIONS, ts.AUTH_TOOLS, RETAIL_OUTPUTS, AGENTS)


def test_returns_by_voice_from_greeting_to_started_return() -> None:
    call = retail()
    call.respond()
    assert call.said == ["Welcome to Acme Retail! How can I help you today?"]  # the quoted line
    call.caller("Hi, I'd like to return the rain jacket I bought.")
    assert call.calls == []
    assert "phone number" in call.said[-1] and "date of birth" in call.said[-1]
    call.caller("Sure, it's five five five one two three four five six seven, and I was born on March third nineteen eighty five.")
    assert call.calls[0] == ("verify_customer", {"phone_number": "5551234567", "date_of_birth": "1985-03-03"})
    name, args = call.calls[1]
    assert name == "transfer_to_returns"
    assert "rain jacket" in args["reason"] and "verify_customer" in args["conversation_summary"]
    # the returns agent acts on the pending request at once: no second greeting
    assert call.calls[2] == ("lookup_orders", {"phone_number": "5551234567"})
    assert call.calls[3] == ("check_return_policy", {"order_id": "ORD-54321"})  # the jacket, not the shoes
    assert not any("Welcome" in s for s in call.said[1:])
    assert "reason" in call.said[-1] and "wrong item" in call.said[-1]  # enum options read out
    call.caller("It came in the wrong size.")
    assert call.calls[4] == ("start_return", {"order_id": "ORD-54321", "reason": "wrong_item"})
    assert "RET-777" in call.said[-1] and call.said[-1].endswith(ANYTHING_ELSE)
    call.caller("No, that's all, thanks.")
    assert "goodbye" in call.said[-1].lower() and len(call.calls) == 5


def test_arguments_collected_across_turns_and_typed_forms() -> None:
    call = retail()
    call.respond()
    call.caller("I want to send back my shoes, my number is 555-123-4567.")
    assert call.calls == [] and "date of birth" in call.said[-1] and "phone" not in call.said[-1]
    call.caller("3 March 1985")
    assert call.calls[0] == ("verify_customer", {"phone_number": "5551234567", "date_of_birth": "1985-03-03"})


def test_failed_verification_asks_again_then_escalation_by_voice() -> None:
    call = retail()
    call.respond()
    call.caller("I need to return something.")
    call.caller("My phone is 555 999 8888 and I was born March 3rd 1985.")
    assert call.calls == [("verify_customer", {"phone_number": "5559998888", "date_of_birth": "1985-03-03"})]
    assert "couldn't verify" in call.said[-1] and "again" in call.said[-1]
    call.caller("This is ridiculous, I want to talk to a real person.")
    assert call.calls[-1][0] == "escalate_to_human"
    assert call.said[-1] == "A human agent will be with you shortly."


def test_sales_handoff_fills_the_category() -> None:
    call = retail()
    call.respond()
    call.caller("Do you have any deals on running shoes? My phone number is 5551234567 and my birthday is 1985-03-03.")
    assert [name for name, _ in call.calls] == ["verify_customer", "transfer_to_sales", "list_discounted_products"]
    assert call.calls[-1][1] == {"category": "running shoes"}
    assert "Trail jacket" in call.said[-1]


def test_order_identifier_from_spoken_digits_and_negative_outcome_stops() -> None:
    outputs = {"check_return_policy": {"eligible": False, "note": "Bought more than 30 days ago"}}
    call = Call(ts.RETURNS_INSTRUCTIONS, ts.RETURNS_TOOLS, outputs)
    call.caller("Can I still return order one two three four five?")
    assert call.calls == [("check_return_policy", {"order_id": "ORD-12345"})]
    assert "eligible: no" in call.said[-1] and call.said[-1].endswith(ANYTHING_ELSE)  # no start_return


def test_carrier_question_goes_to_the_supervisor() -> None:
    answer = "Yes, roaming in Canada is included in your plan."
    call = Call(ts.CARRIER_INSTRUCTIONS, ts.CARRIER_TOOLS, {"ask_supervisor": {"answer": answer}})
    call.respond()
    assert call.said == ["Hi, thanks for calling Nimbus Mobile, how can I help?"]
    call.caller("Can I use my phone in Canada without extra charges?")
    assert call.calls == [("ask_supervisor", {"question": "Can I use my phone in Canada without extra charges?"})]
    assert call.said[-1] == f"{answer} {ANYTHING_ELSE}"


def test_supervisor_text_mode_tool_loop() -> None:
    policy = DialoguePolicy()
    question = "The caller asks: what is your roaming policy for Canada?"
    first = policy.respond_responses(ts.SUPERVISOR_INSTRUCTIONS, ts.SUPERVISOR_TOOLS, question)
    assert first.text == "" and first.function_call is not None
    assert (first.function_call.name, first.function_call.arguments) == ("lookup_policy", {"topic": "roaming"})
    output = first.responses_output()
    assert output[0]["type"] == "function_call" and json.loads(output[0]["arguments"]) == {"topic": "roaming"}
    policy_text = "Roaming in Canada and Mexico is included in every unlimited plan."
    second = policy.respond_responses(
        ts.SUPERVISOR_INSTRUCTIONS,
        ts.SUPERVISOR_TOOLS,
        [{"role": "user", "content": question}, *output,
         {"type": "function_call_output", "call_id": first.function_call.call_id,
          "output": json.dumps({"topic": "roaming", "policy": policy_text})}],
    )
    assert second == PolicyResponse(text=policy_text)
    assert second.responses_output()[0]["content"][0]["text"] == policy_text
    store = policy.respond_responses(None, ts.SUPERVISOR_TOOLS, "Nearest store to zip code nine four one oh five?")
    assert store.function_call is not None and store.function_call.arguments == {"zip_code": "94105"}


def test_greeting_without_a_quoted_line_names_the_role() -> None:
    r = DialoguePolicy().respond("You are the billing assistant for Nimbus Mobile. Be concise.", [], [])
    assert r.text == "Hello, you've reached the billing assistant for Nimbus Mobile. How can I help you today?"


def test_summary_in_text_mode() -> None:
    r = DialoguePolicy().respond_responses(
        "Summarize the call.", [], "user: I want to return my shoes\nassistant: Sure, what's your phone number?"
    )
    assert r.text == "The caller said: I want to return my shoes. The agent's last reply: Sure, what's your phone number?"


def test_same_input_same_output() -> None:
    def transcript(make: Callable[[], Call]) -> tuple[list[str], list[tuple[str, dict[str, Any]]], list[dict[str, Any]]]:
        call = make()
        call.respond()
        call.caller("Hi, I'd like to return the rain jacket I bought.")
        call.caller("It's 555 123 4567, born the third of March 1985.")
        call.caller("It arrived damaged.")
        return call.said, call.calls, call.items

    first, second = transcript(retail), transcript(retail)
    assert first == second
    assert json.dumps(first[2]) == json.dumps(second[2])  # call ids included
    assert first[1][-1] == ("start_return", {"order_id": "ORD-54321", "reason": "damaged"})


def test_answer_to_the_open_question_beats_incidental_tool_words() -> None:
    call = Call(ts.RETURNS_INSTRUCTIONS, ts.RETURNS_TOOLS, RETAIL_OUTPUTS)
    call.caller("I want to return my running shoes, my phone number is 555 123 4567.")
    assert [name for name, _ in call.calls] == ["lookup_orders", "check_return_policy"]
    assert call.calls[-1][1] == {"order_id": "ORD-12345"}
    call.caller("My order was wrong.")  # "order" also names lookup_orders: not called again
    assert call.calls[2:] == [("start_return", {"order_id": "ORD-12345", "reason": "wrong_item"})]


def test_tool_choice_none_and_forced() -> None:
    policy = DialoguePolicy()
    items = [ts.user("What's the roaming policy?")]
    auto = policy.respond_responses(None, ts.SUPERVISOR_TOOLS, items)
    assert auto.function_call is not None and auto.function_call.name == "lookup_policy"
    none = policy.respond_responses(None, ts.SUPERVISOR_TOOLS, items, tool_choice="none")
    assert none.function_call is None and none.text
    forced = policy.respond_responses(None, ts.SUPERVISOR_TOOLS, items, tool_choice={"type": "function", "name": "find_store"})
    assert forced.function_call is not None and forced.function_call.name == "find_store"
    required = policy.respond(ts.CARRIER_INSTRUCTIONS, ts.CARRIER_TOOLS, [ts.user("hello")], tool_choice="required")
    assert required.function_call is not None and required.function_call.name == "ask_supervisor"
