"""The demo scenarios' Python tools, registered with the tool-handler registry when the demo app is
ready (demo/apps.py). They work on the demo records through the ORM.
"""

from __future__ import annotations

import secrets
from datetime import date
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agents.registry import tool_handler
from demo.models import CartItem, Customer, MobileAccount, Order, Policy, Product, ReturnRequest, Store, postcode_area


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def _parse_date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


# --- Retail --------------------------------------------------------------------------------------


@tool_handler("verify_customer")
def verify_customer(arguments: dict[str, Any]) -> dict[str, Any]:
    """Verify a caller by phone number and date of birth."""

    phone = str(arguments.get("phone_number", "")).strip()
    born = _parse_date(arguments.get("date_of_birth"))
    if born is None:
        return {"verified": False, "reason": "The date of birth must be a date like 1985-04-23."}
    customer = Customer.objects.filter(phone=phone).first()
    if customer is None or customer.date_of_birth != born:
        return {"verified": False, "reason": "No customer matches that phone number and date of birth."}
    return {
        "verified": True,
        "customer_name": customer.name,
        "phone_number": customer.phone,
        "open_orders": customer.orders.exclude(status="delivered").count(),
    }


def _order_summary(order: Any) -> dict[str, Any]:
    lines = [
        {"sku": line.product.sku, "product": line.product.name, "quantity": line.quantity,
         "unit_price": _money(line.unit_price)}
        for line in order.lines.select_related("product")
    ]
    total = sum((line.unit_price * line.quantity for line in order.lines.all()), Decimal(0))
    return {
        "order_id": order.number,
        "status": order.status,
        "placed_on": order.placed_on.isoformat(),
        "delivered_on": order.delivered_on.isoformat() if order.delivered_on else None,
        "items": lines,
        "total": _money(total),
    }


@tool_handler("lookup_orders")
def lookup_orders(arguments: dict[str, Any]) -> dict[str, Any]:
    """List a verified customer's orders (or one order by its id)."""

    phone = str(arguments.get("phone_number", "")).strip()
    orders = Order.objects.filter(customer__phone=phone)
    if arguments.get("order_id"):
        orders = orders.filter(number=str(arguments["order_id"]).upper())
    found = [_order_summary(order) for order in orders]
    if not found:
        return {"found": False, "orders": [], "reason": "No matching orders for that phone number."}
    return {"found": True, "orders": found}


def _return_window(order: Any, today: date) -> dict[str, Any]:

    policy = Policy.objects.filter(audience="retail", topic="returns").first()
    window = policy.window_days if policy and policy.window_days else 30
    result: dict[str, Any] = {"order_id": order.number, "window_days": window, "policy": policy.text if policy else ""}
    if order.status == "return_started":
        return {**result, "eligible": False, "reason": "A return has already been started for this order."}
    if order.delivered_on is None:
        return {**result, "eligible": False, "reason": "The order has not been delivered yet."}
    days = (today - order.delivered_on).days
    if days > window:
        return {**result, "eligible": False, "days_since_delivery": days,
                "reason": f"Delivered {days} days ago; returns are accepted for {window} days."}
    return {**result, "eligible": True, "days_since_delivery": days, "days_left": window - days}


@tool_handler("check_return_policy")
def check_return_policy(arguments: dict[str, Any]) -> dict[str, Any]:
    """Tell whether an order can still be returned, and the policy text."""

    order = Order.objects.filter(number=str(arguments.get("order_id", "")).upper()).first()
    if order is None:
        return {"eligible": False, "reason": "There is no order with that id."}
    return _return_window(order, timezone.localdate())


@tool_handler("start_return")
def start_return(arguments: dict[str, Any]) -> dict[str, Any]:
    """Start a return for an eligible order and give the return reference."""

    with transaction.atomic():
        order = Order.objects.select_for_update().filter(number=str(arguments.get("order_id", "")).upper()).first()
        if order is None:
            return {"started": False, "reason": "There is no order with that id."}
        window = _return_window(order, timezone.localdate())
        if not window["eligible"]:
            return {"started": False, "reason": window["reason"]}
        reference = f"RMA-{secrets.token_hex(4).upper()}"
        ReturnRequest.objects.create(order=order, reason=str(arguments.get("reason", "")), reference=reference)
        order.status = Order.Status.RETURN_STARTED
        order.save(update_fields=["status"])
    return {"started": True, "return_reference": reference, "order_id": order.number,
            "next_step": "A prepaid return label is on its way by email."}


@tool_handler("list_discounted_products")
def list_discounted_products(arguments: dict[str, Any]) -> dict[str, Any]:
    """List products on sale, optionally in one category."""

    products = Product.objects.filter(discount_percent__gt=0, in_stock__gt=0)
    if arguments.get("category"):
        products = products.filter(category__iexact=str(arguments["category"]))
    return {
        "products": [
            {"sku": p.sku, "name": p.name, "category": p.category, "price": _money(p.price),
             "discount_percent": p.discount_percent, "sale_price": _money(p.sale_price)}
            for p in products
        ]
    }


@tool_handler("add_to_cart")
def add_to_cart(arguments: dict[str, Any]) -> dict[str, Any]:
    """Put a product in a verified customer's cart."""

    customer = Customer.objects.filter(phone=str(arguments.get("phone_number", "")).strip()).first()
    if customer is None:
        return {"added": False, "reason": "No customer has that phone number."}
    product = Product.objects.filter(sku=str(arguments.get("sku", "")).upper()).first()
    if product is None:
        return {"added": False, "reason": "There is no product with that SKU."}
    quantity = int(arguments.get("quantity") or 1)
    if quantity < 1 or quantity > product.in_stock:
        return {"added": False, "reason": f"Only {product.in_stock} in stock."}
    item, created = CartItem.objects.get_or_create(customer=customer, product=product, defaults={"quantity": quantity})
    if not created:
        item.quantity += quantity
        item.save(update_fields=["quantity"])
    return {"added": True, "sku": product.sku, "product": product.name, "quantity_in_cart": item.quantity,
            "unit_price": _money(product.sale_price)}


@tool_handler("checkout_link")
def checkout_link(arguments: dict[str, Any]) -> dict[str, Any]:
    """Make a checkout link for the customer's cart (sent by text message)."""

    customer = Customer.objects.filter(phone=str(arguments.get("phone_number", "")).strip()).first()
    if customer is None:
        return {"ready": False, "reason": "No customer has that phone number."}
    items = list(customer.cart_items.select_related("product"))
    if not items:
        return {"ready": False, "reason": "The cart is empty."}
    total = sum((i.product.sale_price * i.quantity for i in items), Decimal(0))
    token = signing.dumps({"customer": customer.pk, "items": [[i.product.sku, i.quantity] for i in items]},
                          salt="agents.checkout")
    return {"ready": True, "link": f"{settings.PUBLIC_BASE_URL.rstrip('/')}/checkout/{token}",
            "items": len(items), "total": _money(total), "sent_to": customer.phone}


# --- Mobile carrier ----------------------------------------------------------------------------------


@tool_handler("lookup_account")
def lookup_account(arguments: dict[str, Any]) -> dict[str, Any]:
    """Look up a mobile account by phone number or account number."""

    phone = str(arguments.get("phone_number", "")).strip()
    number = str(arguments.get("account_number", "")).strip().upper()
    if not phone and not number:
        return {"found": False, "reason": "Give a phone number or an account number."}
    account = MobileAccount.objects.filter(Q(phone=phone) if phone else Q(account_number=number)).first()
    if account is None:
        return {"found": False, "reason": "No account matches."}
    return {
        "found": True,
        "holder_name": account.holder_name,
        "account_number": account.account_number,
        "plan": account.plan,
        "monthly_fee": _money(account.monthly_fee),
        "balance_due": _money(account.balance_due),
        "data_used_gb": f"{account.data_used_gb:.2f}",
        "data_allowance_gb": f"{account.data_allowance_gb:.2f}",
        "roaming_enabled": account.roaming_enabled,
        "status": account.status,
        "contract_ends_on": account.contract_ends_on.isoformat() if account.contract_ends_on else None,
    }


@tool_handler("lookup_policy")
def lookup_policy(arguments: dict[str, Any]) -> dict[str, Any]:
    """Read the carrier's policy on a topic."""

    topic = str(arguments.get("topic", "")).strip().lower()
    policy = Policy.objects.filter(audience="carrier", topic=topic).first()
    if policy is None:
        topics = list(Policy.objects.filter(audience="carrier").values_list("topic", flat=True))
        return {"found": False, "reason": f"No policy on {topic!r}.", "topics": topics}
    return {"found": True, "topic": policy.topic, "title": policy.title, "text": policy.text}


@tool_handler("find_store")
def find_store(arguments: dict[str, Any]) -> dict[str, Any]:
    """Find stores by city or postcode area."""

    city = str(arguments.get("city", "")).strip()
    postcode = str(arguments.get("postcode", "")).strip()
    stores = Store.objects.all()
    if city:
        stores = stores.filter(city__iexact=city)
    elif postcode:
        area = postcode_area(postcode)
        stores = [s for s in stores if postcode_area(s.postcode) == area]
    else:
        return {"found": False, "reason": "Give a city or a postcode."}
    result = [
        {"name": s.name, "address": s.address, "city": s.city, "postcode": s.postcode,
         "opening_hours": s.opening_hours, "services": s.services}
        for s in stores
    ]
    return {"found": bool(result), "stores": result}
