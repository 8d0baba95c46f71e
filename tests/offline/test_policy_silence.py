"""The policy answers a silent user turn (the idle timeout's committed silence) with a prompt to
continue, never a tool call, and picks the task up again afterwards."""

from realtime.offline.policy import DialoguePolicy

SILENCE = {"type": "message", "role": "user", "content": [{"type": "input_audio", "transcript": ""}]}
TOOLS = [
    {
        "type": "function",
        "name": "lookup_order",
        "description": "Look up an order by its order id",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string", "pattern": "^ORD-\\d{5}$"}}, "required": ["order_id"]},
    }
]


def said(role: str, text: str) -> dict:
    kind = "input_audio" if role == "user" else "output_audio"
    return {"type": "message", "role": role, "content": [{"type": kind, "transcript": text}]}


def test_silence_repeats_the_last_question_then_the_task_goes_on() -> None:
    policy = DialoguePolicy()
    items = [said("assistant", "Hi."), said("user", "I want to look up my order")]
    asked = policy.respond("You are a retail agent.", TOOLS, items)
    assert asked.text == "Could you please tell me your order ID?"
    items += [said("assistant", asked.text), SILENCE]
    prompt = policy.respond("You are a retail agent.", TOOLS, items, tool_choice="required")
    assert prompt.function_call is None
    assert prompt.text == "Are you still there? Could you please tell me your order ID?"
    assert policy.respond("You are a retail agent.", TOOLS, items) == prompt  # deterministic
    items += [said("assistant", prompt.text), said("user", "ORD-12345")]
    call = policy.respond("You are a retail agent.", TOOLS, items).function_call
    assert call is not None and call.arguments == {"order_id": "ORD-12345"}


def test_silence_without_a_question_or_before_anything_was_said() -> None:
    policy = DialoguePolicy()
    assert policy.respond("", TOOLS, [SILENCE]).text == "Hello, are you there? How can I help you today?"
    items = [said("assistant", "Your order has shipped."), SILENCE]
    assert policy.respond("", TOOLS, items).text == "Are you still there? I'm here whenever you're ready."


def test_text_mode_ignores_empty_user_messages() -> None:
    policy = DialoguePolicy()
    result = policy.respond_responses(None, None, [{"type": "message", "role": "user", "content": ""}])
    assert "still there" not in result.text
