"""The demo business: the records the demo scenarios' Python tools read and write.

These tables began in the agents app; they keep their table names (agents_customer, ...), so a
database migrated from before the move keeps its rows.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

PHONE_RE = r"^\+[1-9]\d{6,14}$"
phone_validator = RegexValidator(PHONE_RE, "Use the international format, e.g. +447700900123.")


class Customer(models.Model):
    name = models.CharField(max_length=120)
    phone = models.CharField(max_length=16, unique=True, validators=[phone_validator])
    date_of_birth = models.DateField()
    email = models.EmailField(blank=True)

    class Meta:
        db_table = "agents_customer"  # the table it had in the agents app
        ordering = ("name",)

    def __str__(self) -> str:
        return f"{self.name} ({self.phone})"


class Product(models.Model):
    sku = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=120)
    category = models.CharField(max_length=60)
    price = models.DecimalField(max_digits=9, decimal_places=2)
    discount_percent = models.PositiveIntegerField(default=0, validators=[MaxValueValidator(90)])
    in_stock = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "agents_product"  # the table it had in the agents app
        ordering = ("sku",)

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"

    @property
    def sale_price(self) -> Any:
        factor = Decimal(100 - self.discount_percent) / Decimal(100)
        return (self.price * factor).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


class Order(models.Model):
    class Status(models.TextChoices):
        PROCESSING = "processing", "Processing"
        SHIPPED = "shipped", "Shipped"
        DELIVERED = "delivered", "Delivered"
        RETURN_STARTED = "return_started", "Return started"

    number = models.CharField(
        max_length=9, unique=True, validators=[RegexValidator(r"^ORD-\d{5}$", "Order numbers look like ORD-12345.")]
    )
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROCESSING)
    placed_on = models.DateField()
    delivered_on = models.DateField(null=True, blank=True)

    class Meta:
        db_table = "agents_order"  # the table it had in the agents app
        ordering = ("-placed_on", "number")

    def __str__(self) -> str:
        return self.number


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT)
    quantity = models.PositiveIntegerField(default=1)
    unit_price = models.DecimalField(max_digits=9, decimal_places=2)

    class Meta:
        db_table = "agents_orderline"  # the table it had in the agents app

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product.sku}"


class ReturnRequest(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="returns")
    reason = models.TextField()
    reference = models.CharField(max_length=16, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "agents_returnrequest"  # the table it had in the agents app

    def __str__(self) -> str:
        return self.reference


class CartItem(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="cart_items")
    product = models.ForeignKey(Product, on_delete=models.CASCADE)
    quantity = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])

    class Meta:
        db_table = "agents_cartitem"  # the table it had in the agents app
        constraints = (models.UniqueConstraint(fields=["customer", "product"], name="one_cart_line_per_product"),)

    def __str__(self) -> str:
        return f"{self.customer.name}: {self.quantity} × {self.product.sku}"


class Policy(models.Model):
    """A policy an agent may quote: retail returns, carrier roaming, upgrades, …"""

    class Audience(models.TextChoices):
        RETAIL = "retail", "Retail"
        CARRIER = "carrier", "Mobile carrier"

    audience = models.CharField(max_length=16, choices=Audience.choices)
    topic = models.SlugField(max_length=40)
    title = models.CharField(max_length=120)
    text = models.TextField()
    window_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Returns: days after delivery during which a return is accepted."
    )

    class Meta:
        db_table = "agents_policy"  # the table it had in the agents app
        ordering = ("audience", "topic")
        constraints = (models.UniqueConstraint(fields=["audience", "topic"], name="one_policy_per_topic"),)
        verbose_name_plural = "policies"

    def __str__(self) -> str:
        return f"{self.get_audience_display()}: {self.title}"


class MobileAccount(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    phone = models.CharField(max_length=16, unique=True, validators=[phone_validator])
    holder_name = models.CharField(max_length=120)
    account_number = models.CharField(
        max_length=10, unique=True, validators=[RegexValidator(r"^ACC-\d{6}$", "Account numbers look like ACC-123456.")]
    )
    plan = models.CharField(max_length=60)
    monthly_fee = models.DecimalField(max_digits=7, decimal_places=2)
    balance_due = models.DecimalField(max_digits=9, decimal_places=2, default=0)
    data_used_gb = models.DecimalField(max_digits=6, decimal_places=2, default=0)
    data_allowance_gb = models.DecimalField(max_digits=6, decimal_places=2, default=0)
    roaming_enabled = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    contract_ends_on = models.DateField(null=True, blank=True)

    class Meta:
        db_table = "agents_mobileaccount"  # the table it had in the agents app
        ordering = ("holder_name",)

    def __str__(self) -> str:
        return f"{self.holder_name} ({self.phone})"


class Store(models.Model):
    name = models.CharField(max_length=120)
    city = models.CharField(max_length=60)
    postcode = models.CharField(max_length=10)
    address = models.CharField(max_length=200)
    opening_hours = models.CharField(max_length=120)
    services = models.CharField(max_length=200, blank=True, help_text="e.g. repairs, SIM swaps, device pickup")

    class Meta:
        db_table = "agents_store"  # the table it had in the agents app
        ordering = ("city", "name")

    def __str__(self) -> str:
        return f"{self.name}, {self.city}"


def postcode_area(postcode: str) -> str:
    """The letters before the first digit of a UK-style postcode (e.g. "EC" for "EC1A 1BB")."""
    match = re.match(r"^[A-Za-z]+", postcode.strip())
    return match.group(0).upper() if match else ""
