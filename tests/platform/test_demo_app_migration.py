"""The demo records moved from the agents app to their own app: a database migrated before the move
keeps every row, and permissions granted on them follow."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("agents", "0004_scenario_inbound_numbers"), ("demo", None)]


def migrate(targets: list[tuple[str, str]]) -> Any:
    """Migrate to `targets`; the models as they were then (with auth and contenttypes as they are)."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    others = [node for node in executor.loader.graph.leaf_nodes() if node[0] in ("auth", "contenttypes")]
    return executor.loader.project_state([t for t in targets if t[1]] + others).apps


@pytest.mark.django_db(transaction=True)
def test_rows_and_permissions_survive_the_move(django_user_model: Any) -> None:
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    old = migrate(BEFORE)
    Customer = old.get_model("agents", "Customer")
    Order = old.get_model("agents", "Order")
    ada = Customer.objects.create(name="Test Person", phone="+15550100999", date_of_birth=datetime.date(1970, 1, 2))
    Order.objects.create(number="ORD-99999", customer=ada, status="shipped", placed_on=datetime.date(2026, 1, 1))
    ContentType = old.get_model("contenttypes", "ContentType")
    Permission = old.get_model("auth", "Permission")
    ContentType.objects.filter(app_label="demo").delete()  # the demo app did not exist yet
    customer_type, _ = ContentType.objects.get_or_create(app_label="agents", model="customer")
    permission = Permission.objects.create(content_type=customer_type, codename="view_customer_x",
                                           name="Can view customers (x)")

    migrate(latest)

    from django.contrib.auth.models import Permission as CurrentPermission
    from django.contrib.contenttypes.models import ContentType as CurrentContentType

    from demo.models import Customer as DemoCustomer
    from demo.models import Order as DemoOrder

    CurrentContentType.objects.clear_cache()
    moved = DemoCustomer.objects.get(phone="+15550100999")
    assert moved.name == "Test Person"
    assert DemoOrder.objects.get(number="ORD-99999").customer_id == moved.pk
    assert CurrentPermission.objects.get(pk=permission.pk).content_type.app_label == "demo"
    assert not CurrentContentType.objects.filter(app_label="agents", model="customer").exists()


def test_registry_imports_nothing_of_the_project() -> None:
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).resolve().parents[2] / "agents" / "registry.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert imported <= {"__future__", "collections.abc", "typing"}


def test_the_demo_registers_its_handlers_when_ready() -> None:
    from agents.registry import HANDLERS

    assert {"verify_customer", "lookup_orders", "start_return", "lookup_account"} <= set(HANDLERS)
    assert all(handler.__module__ == "demo.handlers" for handler in HANDLERS.values())
