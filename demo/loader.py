"""The two demo scenarios and the demo records their Python tools work on.

The scenarios are written in the export format and loaded through the same importer (and so the
same validation) as an operator's file. `load_demo()` is idempotent: records and scenarios that
already exist are left as the operator may have edited them, unless `reset=True`.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from agents.exchange import EXPORT_FORMAT, EXPORT_VERSION, import_scenario
from agents.models import Scenario
from demo.models import Customer, MobileAccount, Order, OrderLine, Policy, Product, Store

PHONE = {
    "type": "string",
    "description": "The caller's phone number in international format, e.g. +447700900123.",
    "pattern": r"^\+[1-9]\d{6,14}$",
}
ORDER_ID = {
    "type": "string",
    "description": "The order number, e.g. ORD-10234 (printed on the confirmation email).",
    "pattern": r"^ORD-\d{5}$",
}


def _params(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _tool(name: str, description: str, parameters: dict[str, Any], kind: str = "python", **extra: Any) -> dict[str, Any]:
    doc = {
        "name": name, "description": description, "parameters": parameters, "kind": kind,
        "handler": name if kind == "python" else "", "builtin": "", "webhook_url": "", "webhook_method": "POST",
        "webhook_timeout_seconds": 5.0, "webhook_secret_header": "", "webhook_secret_name": "",
        "needs_approval": False,
    }
    doc.update(extra)
    return doc


def _agent(slug: str, name: str, instructions: str, tools: list[str], **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "slug": slug, "name": name, "kind": "realtime", "instructions": instructions, "handoff_description": "",
        "model": "", "voice": "marin", "output_modality": "audio", "turn_detection": "server_vad",
        "vad_threshold": 0.5, "vad_prefix_padding_ms": 300, "vad_silence_duration_ms": 500,
        "vad_idle_timeout_ms": None, "vad_create_response": True, "vad_interrupt_response": True,
        "vad_eagerness": "auto", "transcription_model": "gpt-transcribe", "transcription_language": "en",
        "noise_reduction": "near_field", "speed": 1.0, "tool_choice": "auto", "max_output_tokens": None,
        "tools": tools,
    }
    doc.update(extra)
    return doc


def _doc(scenario: dict[str, Any], agents: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
    return {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "scenario": scenario, "agents": agents, "tools": tools}


RETAIL_TOOLS = [
    _tool(
        "verify_customer",
        "Check the caller's identity. Ask for their phone number and date of birth first, then call this. "
        "Only a verified caller may be helped with orders or purchases.",
        _params(
            {"phone_number": PHONE,
             "date_of_birth": {"type": "string", "format": "date", "description": "Date of birth as YYYY-MM-DD."}},
            ["phone_number", "date_of_birth"],
        ),
    ),
    _tool(
        "lookup_orders",
        "List the verified customer's orders, or one order when the caller gives its number.",
        _params({"phone_number": PHONE, "order_id": ORDER_ID}, ["phone_number"]),
    ),
    _tool(
        "check_return_policy",
        "Check whether an order can still be returned and read the return policy.",
        _params({"order_id": ORDER_ID}, ["order_id"]),
    ),
    _tool(
        "start_return",
        "Start a return for an order that check_return_policy said is eligible. Confirm with the caller first.",
        _params(
            {"order_id": ORDER_ID,
             "reason": {"type": "string", "description": "Why the caller returns it, in their words.",
                        "minLength": 3, "maxLength": 300}},
            ["order_id", "reason"],
        ),
        needs_approval=False,
    ),
    _tool(
        "list_discounted_products",
        "List products currently on sale, optionally in one category.",
        _params(
            {"category": {"type": "string", "description": "Product category.",
                          "enum": ["audio", "home", "kitchen", "outdoor"]}},
            [],
        ),
    ),
    _tool(
        "add_to_cart",
        "Add a product to the verified customer's cart.",
        _params(
            {"phone_number": PHONE,
             "sku": {"type": "string", "description": "The product code, e.g. SKU-1001.", "pattern": r"^SKU-\d{4}$"},
             "quantity": {"type": "integer", "description": "How many.", "minimum": 1, "maximum": 10}},
            ["phone_number", "sku", "quantity"],
        ),
    ),
    _tool(
        "checkout_link",
        "Text the customer a link to pay for their cart. Use when they are ready to buy.",
        _params({"phone_number": PHONE}, ["phone_number"]),
    ),
    _tool(
        "escalate_to_human",
        "Put the caller through to a human colleague. Use when the caller asks for a person or you cannot help.",
        _params(
            {"reason": {"type": "string", "description": "Why a human is needed, in one sentence."},
             "urgency": {"type": "string", "description": "How urgent it is.", "enum": ["low", "normal", "high"]}},
            ["reason"],
        ),
        kind="builtin", builtin="escalate",
    ),
    _tool(
        "end_call",
        "End the call politely once the caller has nothing else.",
        _params({"outcome": {"type": "string", "description": "How the call ended, in a few words."}}, ["outcome"]),
        kind="builtin", builtin="end_call",
    ),
]

PHONE_IDLE_TIMEOUT_MS = 8000
"""Retail is a phone line: a caller silent this long after the agent spoke is asked if they are still there."""

# The demo lines, from the fictional 555-0100..0199 range: a call to one of them runs its scenario.
RETAIL_NUMBER = "+12025550100"
CARRIER_NUMBER = "+12025550101"

RETAIL = _doc(
    {
        "slug": "retail", "name": "Retail customer service",
        "description": "Callers are verified, then helped with returns or purchases; a human is always one step away.",
        "root_agent": "authentication", "supervisor_agent": None, "fallback_agent": "human_escalation",
        "agents": ["authentication", "human_escalation", "returns", "sales"],
        "max_handoff_depth": 6, "max_session_seconds": 3600, "summarize_every_turns": 5, "max_call_seconds": 1800,
        "blocked_phrases": ["I guarantee", "legal advice"],
        "off_brand_terms": ["cheap", "knock-off"],
        "guardrail_patterns": [r"\b(?:\d[ -]?){13,16}\b"],
        "escalation_webhook_url": "",
        "failover_provider": "offline",
        "inbound_numbers": [RETAIL_NUMBER],
        "handoffs": [
            {"from": "authentication", "to": "returns",
             "when": "The verified caller wants to return or ask about an existing order.",
             "contract": [
                 {"name": "customer_phone", "description": "The verified caller's phone number.", "type": "string",
                  "required": True},
                 {"name": "order_id", "description": "The order number, if the caller gave one.", "type": "string",
                  "required": False}]},
            {"from": "authentication", "to": "sales",
             "when": "The verified caller wants to buy something or hear about offers.",
             "contract": [{"name": "customer_phone", "description": "The verified caller's phone number.",
                           "type": "string", "required": True}]},
            {"from": "returns", "to": "sales", "when": "After the return the caller wants to buy something.",
             "contract": [{"name": "customer_phone", "description": "The verified caller's phone number.",
                           "type": "string", "required": True}]},
            {"from": "sales", "to": "returns", "when": "The caller wants to return or ask about an order.",
             "contract": [{"name": "customer_phone", "description": "The verified caller's phone number.",
                           "type": "string", "required": True}]},
            {"from": "authentication", "to": "human_escalation",
             "when": "The caller cannot be verified, or asks for a person.", "contract": []},
            {"from": "returns", "to": "human_escalation",
             "when": "The caller disputes the policy or asks for a person.", "contract": []},
            {"from": "sales", "to": "human_escalation",
             "when": "The caller has a complaint or asks for a person.", "contract": []},
        ],
    },
    [
        _agent(
            "authentication", "Authentication",
            "You answer calls for Northwind Home. Greet the caller briefly, then verify them: ask for the phone "
            "number on their account and their date of birth, and call verify_customer. Never read personal "
            "data back before verification succeeds. After two failed attempts offer a human colleague. Once "
            "verified, ask what they need and transfer: returns and order questions to the returns desk, "
            "buying and offers to sales. Keep answers short and friendly.",
            ["verify_customer"],
            handoff_description="Verifies the caller's identity.",
            vad_idle_timeout_ms=PHONE_IDLE_TIMEOUT_MS,
        ),
        _agent(
            "returns", "Returns desk",
            "You handle orders and returns for a verified Northwind Home customer. Look up their orders, check "
            "the return policy for the order they mean, and only start a return when the order is eligible and "
            "the caller confirms. Give the return reference slowly, character by character. If the order is "
            "not eligible, explain why in one sentence and offer a human colleague if they disagree.",
            ["check_return_policy", "lookup_orders", "start_return"],
            handoff_description="Looks up orders, explains the return policy and starts returns.",
            vad_idle_timeout_ms=PHONE_IDLE_TIMEOUT_MS,
            voice="coral",
        ),
        _agent(
            "sales", "Sales",
            "You help a verified Northwind Home customer buy. Offer what is on sale in the category they care "
            "about, at most three items at a time, with the sale price. Add items to the cart only when the "
            "caller says so, then offer to text a checkout link. Never promise delivery dates or stock beyond "
            "what the tools say.",
            ["add_to_cart", "checkout_link", "list_discounted_products"],
            handoff_description="Presents current offers, fills the cart and sends a checkout link.",
            vad_idle_timeout_ms=PHONE_IDLE_TIMEOUT_MS,
            voice="cedar",
        ),
        _agent(
            "human_escalation", "Human escalation",
            "You take callers who need a person. Apologise once, say you are connecting them to a colleague, "
            "and call escalate_to_human with a one-sentence reason. If nobody can take the call, say a "
            "colleague will call back within one working day and end the call politely.",
            ["end_call", "escalate_to_human"],
            handoff_description="Connects the caller to a human colleague.",
            vad_idle_timeout_ms=PHONE_IDLE_TIMEOUT_MS,
            voice="sage",
        ),
    ],
    RETAIL_TOOLS,
)

CARRIER_TOOLS = [
    _tool(
        "ask_supervisor",
        "Ask the supervisor for anything about the caller's account, plans, policies or stores. Say a short "
        "filler first (\"One moment, let me check\"), then read the supervisor's answer as is.",
        _params(
            {"question": {"type": "string", "description": "What the caller wants to know, in full."},
             "context": {"type": "string", "description": "Facts the caller already gave (phone number, city)."}},
            ["question"],
        ),
        kind="builtin", builtin="ask_supervisor",
    ),
    _tool(
        "lookup_account",
        "Look up a mobile account: plan, balance, data use, roaming and contract end date.",
        _params(
            {"phone_number": PHONE,
             "account_number": {"type": "string", "description": "The account number, e.g. ACC-204518.",
                                "pattern": r"^ACC-\d{6}$"}},
            ["phone_number"],
        ),
    ),
    _tool(
        "lookup_policy",
        "Read the carrier's policy on a topic.",
        _params(
            {"topic": {"type": "string", "description": "The policy topic.",
                       "enum": ["roaming", "early_upgrade", "data_overage", "cancellation"]}},
            ["topic"],
        ),
    ),
    _tool(
        "find_store",
        "Find stores near the caller by city or postcode.",
        _params(
            {"city": {"type": "string", "description": "City name, e.g. Leeds."},
             "postcode": {"type": "string", "description": "UK postcode, e.g. LS1 4AP.",
                          "pattern": r"^[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}$"}},
            [],
        ),
    ),
]

CARRIER = _doc(
    {
        "slug": "carrier", "name": "Mobile carrier (chat supervisor)",
        "description": "A quick voice agent answers; a text supervisor with account tools decides what to say.",
        "root_agent": "carrier_front", "supervisor_agent": "carrier_supervisor", "fallback_agent": None,
        "agents": ["carrier_front", "carrier_supervisor"],
        "max_handoff_depth": 2, "max_session_seconds": 3600, "summarize_every_turns": 5, "max_call_seconds": 1200,
        "blocked_phrases": ["unlimited forever"], "off_brand_terms": ["cheap"], "guardrail_patterns": [],
        "escalation_webhook_url": "",
        "inbound_numbers": [CARRIER_NUMBER],
        "handoffs": [],
    },
    [
        _agent(
            "carrier_front", "Brightline front desk",
            "You answer calls for Brightline Mobile. Handle greetings and small talk yourself. For anything "
            "about an account, a bill, a plan, roaming, upgrades, policies or stores, first ask for the "
            "caller's mobile number if you do not have it, then call ask_supervisor and read its answer "
            "naturally. Never guess facts about accounts or prices.",
            ["ask_supervisor"],
            handoff_description="Brightline's voice front desk.",
            voice="alloy",
        ),
        _agent(
            "carrier_supervisor", "Brightline supervisor",
            "You are the expert behind Brightline Mobile's voice agent. You receive the caller's question and "
            "the conversation so far, use lookup_account, lookup_policy and find_store to find facts, and "
            "reply with what the voice agent should say next: one or two short spoken sentences, no lists, "
            "no markdown. If the facts do not answer the question, say what is missing and what to ask the "
            "caller. Never invent numbers, prices or dates.",
            ["find_store", "lookup_account", "lookup_policy"],
            kind="supervisor", voice="", transcription_model="", transcription_language="",
            turn_detection="none", noise_reduction="none",
        ),
    ],
    CARRIER_TOOLS,
)

DEMO_SCENARIOS: tuple[dict[str, Any], ...] = (RETAIL, CARRIER)


def _load_records(today: date) -> None:
    customers = {
        "+447700900123": ("Ada Lovelace", date(1985, 4, 23), "ada@example.com"),
        "+447700900456": ("Grace Hopper", date(1979, 12, 9), "grace@example.com"),
        "+14155550142": ("Alan Turing", date(1990, 6, 23), "alan@example.com"),
    }
    by_phone = {}
    for phone, (name, born, email) in customers.items():
        by_phone[phone], _ = Customer.objects.get_or_create(
            phone=phone, defaults={"name": name, "date_of_birth": born, "email": email}
        )
    products = [
        ("SKU-1001", "Noise-cancelling headphones", "audio", "199.00", 25, 14),
        ("SKU-1002", "Bookshelf speakers", "audio", "149.00", 0, 8),
        ("SKU-2001", "Linen duvet cover", "home", "89.00", 30, 20),
        ("SKU-2002", "Reading lamp", "home", "45.00", 10, 0),
        ("SKU-3001", "Cast-iron casserole", "kitchen", "120.00", 15, 6),
        ("SKU-4001", "Two-person tent", "outdoor", "240.00", 20, 3),
    ]
    by_sku = {}
    for sku, name, category, price, discount, stock in products:
        by_sku[sku], _ = Product.objects.get_or_create(
            sku=sku, defaults={"name": name, "category": category, "price": Decimal(price),
                               "discount_percent": discount, "in_stock": stock}
        )
    orders = [
        ("ORD-10231", "+447700900123", "delivered", 12, 7, [("SKU-1001", 1)]),
        ("ORD-10232", "+447700900123", "delivered", 75, 70, [("SKU-2001", 2)]),
        ("ORD-10233", "+447700900123", "shipped", 2, None, [("SKU-3001", 1)]),
        ("ORD-10240", "+447700900456", "delivered", 20, 16, [("SKU-4001", 1), ("SKU-2002", 2)]),
    ]
    for number, phone, status, placed_days, delivered_days, lines in orders:
        order, created = Order.objects.get_or_create(
            number=number,
            defaults={
                "customer": by_phone[phone], "status": status, "placed_on": today - timedelta(days=placed_days),
                "delivered_on": today - timedelta(days=delivered_days) if delivered_days is not None else None,
            },
        )
        if created:
            for sku, quantity in lines:
                OrderLine.objects.create(order=order, product=by_sku[sku], quantity=quantity,
                                         unit_price=by_sku[sku].sale_price)
    policies = [
        ("retail", "returns", "Returns", ("Unused items can be returned within 30 days of delivery for a full refund. "
         "A prepaid label is emailed; refunds reach the card within 5 working days."), 30),
        ("carrier", "roaming", "Roaming", ("Roaming in the EU and US costs 5.00 a day and uses your normal "
         "allowance. Turn it on in the app or ask us; it is off by default."), None),
        ("carrier", "early_upgrade", "Early upgrade", ("You can upgrade from month 18 of a 24-month contract "
         "with no fee; earlier upgrades pay 50% of the remaining monthly fees."), None),
        ("carrier", "data_overage", "Data over the allowance", ("Beyond the allowance data is slowed, never "
         "charged. A 5 GB add-on costs 4.00 and lasts until the next bill."), None),
        ("carrier", "cancellation", "Cancellation", ("Cancel any time after the contract ends with 30 days' "
         "notice. During the contract the remaining monthly fees are due."), None),
    ]
    for audience, topic, title, text, window in policies:
        Policy.objects.get_or_create(audience=audience, topic=topic,
                                     defaults={"title": title, "text": text, "window_days": window})
    accounts = [
        ("+447700900789", "Katherine Johnson", "ACC-204518", "Unlimited Plus", "35.00", "0.00", "41.20", "0", True,
         today + timedelta(days=120)),
        ("+447700900321", "Dorothy Vaughan", "ACC-204519", "Smart 20GB", "18.00", "12.40", "19.10", "20", False,
         today + timedelta(days=400)),
        ("+447700900654", "Mary Jackson", "ACC-204520", "Basic 5GB", "9.00", "27.00", "2.50", "5", False, None),
    ]
    for phone, holder, number, plan, fee, due, used, allowance, roaming, ends in accounts:
        MobileAccount.objects.get_or_create(
            phone=phone,
            defaults={"holder_name": holder, "account_number": number, "plan": plan, "monthly_fee": Decimal(fee),
                      "balance_due": Decimal(due), "data_used_gb": Decimal(used),
                      "data_allowance_gb": Decimal(allowance), "roaming_enabled": roaming,
                      "status": "suspended" if Decimal(due) > 25 else "active", "contract_ends_on": ends},
        )
    stores = [
        ("Brightline Leeds Briggate", "Leeds", "LS1 6HD", "48 Briggate", "Mon-Sat 9:00-18:00", "repairs, SIM swaps"),
        ("Brightline Leeds White Rose", "Leeds", "LS11 8LU", "White Rose Centre", "Mon-Sun 10:00-20:00", "device pickup"),
        ("Brightline London Bank", "London", "EC2R 8AH", "1 Poultry", "Mon-Fri 8:00-19:00", "repairs, business desk"),
        ("Brightline Manchester Arndale", "Manchester", "M4 3AQ", "Arndale Centre", "Mon-Sun 9:00-20:00",
         "repairs, SIM swaps, device pickup"),
    ]
    for name, city, postcode, address, hours, services in stores:
        Store.objects.get_or_create(
            name=name, defaults={"city": city, "postcode": postcode, "address": address, "opening_hours": hours,
                                 "services": services}
        )


def load_demo(*, reset: bool = False) -> list[tuple[str, str]]:
    """Create the demo records and scenarios. Returns (scenario slug, "created"|"kept"|"reset")."""
    outcome = []
    with transaction.atomic():
        _load_records(timezone.localdate())
        for doc in DEMO_SCENARIOS:
            slug = doc["scenario"]["slug"]
            exists = Scenario.objects.filter(slug=slug).exists()
            if exists and not reset:
                outcome.append((slug, "kept"))
                continue
            import_scenario(doc)
            outcome.append((slug, "reset" if exists else "created"))
    return outcome
