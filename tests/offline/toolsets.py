"""Demo-scenario shaped instructions and tools for the offline policy tests (GA tool dicts)."""

from __future__ import annotations

from typing import Any


def fn(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "name": name,
        "description": description,
        "parameters": {"type": "object", "properties": properties, "required": required},
    }


def escalate_to_human() -> dict[str, Any]:
    """The escalation tool every retail agent has (a fresh dict each time)."""
    return fn(
        "escalate_to_human",
        "Escalate the call to a human agent when the caller asks for a person.",
        {"reason": {"type": "string", "description": "Why the caller needs a human"}},
        ["reason"],
    )


PHONE = {
    "type": "string",
    "description": "The customer's phone number",
    "pattern": r"^\+?[0-9]{10,15}$",
}
ORDER_ID = {"type": "string", "description": "The order ID", "pattern": r"^ORD-\d{5}$"}

AUTH_INSTRUCTIONS = (
    "You are the authentication agent for Acme Retail. Greet the caller with "
    "\"Welcome to Acme Retail! How can I help you today?\" Before helping, verify the "
    "customer's identity with their phone number and date of birth using verify_customer. "
    "Then transfer them to the right department."
)
AUTH_TOOLS = [
    fn(
        "verify_customer",
        "Verify the customer's identity using their phone number and date of birth.",
        {
            "phone_number": PHONE,
            "date_of_birth": {
                "type": "string",
                "format": "date",
                "description": "The customer's date of birth",
            },
        },
        ["phone_number", "date_of_birth"],
    ),
    fn(
        "transfer_to_returns",
        "Transfer the caller to the returns agent for returns and refunds.",
        {
            "reason": {"type": "string", "description": "Why the caller is being transferred"},
            "conversation_summary": {
                "type": "string",
                "description": "A short summary of the conversation so far",
            },
        },
        ["reason", "conversation_summary"],
    ),
    fn(
        "transfer_to_sales",
        "Transfer the caller to the sales agent for new purchases, products and discounts.",
        {
            "reason": {"type": "string", "description": "Why the caller is being transferred"},
            "conversation_summary": {
                "type": "string",
                "description": "A short summary of the conversation so far",
            },
        },
        ["reason", "conversation_summary"],
    ),
    escalate_to_human(),
]

RETURNS_INSTRUCTIONS = (
    "You are the returns agent for Acme Retail. Look up the customer's orders, check the "
    "return policy for the order, then start the return."
)
RETURNS_TOOLS = [
    fn(
        "lookup_orders",
        "Look up the customer's recent orders by phone number.",
        {"phone_number": PHONE},
        ["phone_number"],
    ),
    fn(
        "check_return_policy",
        "Check whether an order is eligible for return under the return policy.",
        {"order_id": ORDER_ID},
        ["order_id"],
    ),
    fn(
        "start_return",
        "Start a return for an order.",
        {
            "order_id": ORDER_ID,
            "reason": {
                "type": "string",
                "enum": ["damaged", "wrong_item", "no_longer_needed", "other"],
                "description": "The reason for the return",
            },
        },
        ["order_id", "reason"],
    ),
    escalate_to_human(),
]

SALES_INSTRUCTIONS = "You are the sales agent for Acme Retail. Help callers find deals."
SALES_TOOLS = [
    fn(
        "list_discounted_products",
        "List products that are currently discounted in a category.",
        {"category": {"type": "string", "description": "The product category"}},
        ["category"],
    ),
    escalate_to_human(),
]

CARRIER_INSTRUCTIONS = (
    "You are a friendly customer service agent for Nimbus Mobile. Say 'Hi, thanks for calling "
    "Nimbus Mobile, how can I help?' when the call starts. For anything about accounts, policies "
    "or stores, ask the supervisor with ask_supervisor."
)
CARRIER_TOOLS = [
    fn(
        "ask_supervisor",
        "Ask the supervisor agent when you cannot answer yourself.",
        {"question": {"type": "string", "description": "The caller's question, in full"}},
        ["question"],
    ),
]
SUPERVISOR_INSTRUCTIONS = (
    "You are the supervisor for Nimbus Mobile's junior agents. Answer their question using "
    "your tools."
)
SUPERVISOR_TOOLS = [
    fn(
        "lookup_account",
        "Look up a customer's account, plan and balance by phone number.",
        {"phone_number": PHONE},
        ["phone_number"],
    ),
    fn(
        "lookup_policy",
        "Look up the company policy on a topic such as roaming, billing, upgrades or cancellation.",
        {"topic": {"type": "string", "description": "The policy topic"}},
        ["topic"],
    ),
    fn(
        "find_store",
        "Find the nearest store by ZIP code.",
        {"zip_code": {"type": "string", "description": "Five digit ZIP code", "pattern": r"^\d{5}$"}},
        ["zip_code"],
    ),
]


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def user_audio(transcript: str) -> dict[str, Any]:
    return {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_audio", "transcript": transcript}],
    }


def assistant(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_audio", "transcript": text}],
    }
