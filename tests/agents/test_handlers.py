"""The Python tool handlers work on the demo records, and every demo tool names a registered one."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from jsonschema import Draft202012Validator, FormatChecker

from agents.models import Tool
from agents.registry import HANDLERS, handler_choices
from demo.models import CartItem, Order, ReturnRequest

ADA = "+447700900123"


def call(name: str, **arguments: object) -> dict:
    """Call a handler the way the engine does, after checking the arguments against the tool's schema."""
    tool = Tool.objects.get(handler=name)
    Draft202012Validator(tool.parameters, format_checker=FormatChecker()).validate(arguments)
    return HANDLERS[name](arguments)


def test_registry_matches_the_demo_tools(demo: None) -> None:
    python_tools = set(Tool.objects.filter(kind="python").values_list("handler", flat=True))
    assert python_tools <= set(HANDLERS)
    assert [key for key, _ in handler_choices()] == sorted(HANDLERS)


def test_verify_customer(demo: None) -> None:
    assert call("verify_customer", phone_number=ADA, date_of_birth="1985-04-23")["verified"] is True
    wrong = call("verify_customer", phone_number=ADA, date_of_birth="1985-04-24")
    assert wrong == {"verified": False, "reason": "No customer matches that phone number and date of birth."}
    assert HANDLERS["verify_customer"]({"phone_number": ADA, "date_of_birth": "yesterday"})["verified"] is False


def test_lookup_orders(demo: None) -> None:
    found = call("lookup_orders", phone_number=ADA)
    assert {o["order_id"] for o in found["orders"]} == {"ORD-10231", "ORD-10232", "ORD-10233"}
    one = call("lookup_orders", phone_number=ADA, order_id="ORD-10231")
    assert one["orders"][0]["items"][0]["sku"] == "SKU-1001"
    assert call("lookup_orders", phone_number="+447700900999")["found"] is False


def test_return_policy_and_start_return(demo: None) -> None:
    assert call("check_return_policy", order_id="ORD-10231")["eligible"] is True
    late = call("check_return_policy", order_id="ORD-10232")
    assert late["eligible"] is False and "returns are accepted for 30 days" in late["reason"]
    assert call("check_return_policy", order_id="ORD-10233")["reason"] == "The order has not been delivered yet."
    started = call("start_return", order_id="ORD-10231", reason="Too big for my desk")
    assert started["started"] is True
    assert ReturnRequest.objects.get(reference=started["return_reference"]).order.number == "ORD-10231"
    assert Order.objects.get(number="ORD-10231").status == "return_started"
    assert call("start_return", order_id="ORD-10231", reason="again")["started"] is False
    Order.objects.filter(number="ORD-10240").update(delivered_on=timezone.localdate() - timedelta(days=31))
    assert call("start_return", order_id="ORD-10240", reason="late")["started"] is False


def test_sales_tools(demo: None) -> None:
    audio = call("list_discounted_products", category="audio")["products"]
    assert [p["sku"] for p in audio] == ["SKU-1001"] and audio[0]["sale_price"] == "149.25"
    assert "SKU-2002" not in {p["sku"] for p in call("list_discounted_products")["products"]}  # out of stock
    assert call("add_to_cart", phone_number=ADA, sku="SKU-1001", quantity=2)["quantity_in_cart"] == 2
    assert call("add_to_cart", phone_number=ADA, sku="SKU-1001", quantity=1)["quantity_in_cart"] == 3
    assert call("add_to_cart", phone_number=ADA, sku="SKU-4001", quantity=9)["added"] is False
    link = call("checkout_link", phone_number=ADA)
    assert link["ready"] is True and link["total"] == "447.75" and "/checkout/" in link["link"]
    CartItem.objects.all().delete()
    assert call("checkout_link", phone_number=ADA) == {"ready": False, "reason": "The cart is empty."}


def test_carrier_tools(demo: None) -> None:
    account = call("lookup_account", phone_number="+447700900321")
    assert account["plan"] == "Smart 20GB" and account["balance_due"] == "12.40"
    assert call("lookup_account", phone_number="+447700900000")["found"] is False
    policy = call("lookup_policy", topic="roaming")
    assert policy["found"] is True and "5.00 a day" in policy["text"]
    assert call("find_store", city="leeds")["stores"][0]["city"] == "Leeds"
    assert [s["name"] for s in call("find_store", postcode="EC1A 1BB")["stores"]] == ["Brightline London Bank"]
    assert call("find_store")["found"] is False
