"""Admin pages render for staff and send anonymous visitors to the login page."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

import pytest
from django.test import Client
from django.urls import reverse

from agents.models import Agent, Scenario, Tool
from demo.models import Customer, MobileAccount, Order, Policy, Product, Store

MODELS = [("agents", m) for m in ("tool", "agent", "scenario")] + [
    ("demo", m) for m in ("customer", "order", "product", "returnrequest", "cartitem", "policy", "mobileaccount", "store")]
APP = {model: app for app, model in MODELS}


def page_urls() -> list[str]:
    retail = Scenario.objects.get(slug="retail")
    urls = [reverse(f"admin:{app}_{m}_changelist") for app, m in MODELS]
    urls += [reverse(f"admin:{app}_{m}_add") for app, m in MODELS]
    for model, obj in (
        ("tool", Tool.objects.first()), ("agent", Agent.objects.first()), ("scenario", retail),
        ("customer", Customer.objects.first()), ("order", Order.objects.first()),
        ("product", Product.objects.first()), ("policy", Policy.objects.first()),
        ("mobileaccount", MobileAccount.objects.first()), ("store", Store.objects.first()),
    ):
        urls.append(reverse(f"admin:{APP[model]}_{model}_change", args=[obj.pk]))
    urls += [
        reverse("admin:agents_scenario_graph", args=[retail.pk]),
        reverse("admin:agents_scenario_preview", args=[retail.pk]),
        reverse("admin:agents_scenario_export", args=[retail.pk]),
        reverse("admin:agents_scenario_import"),
    ]
    return urls


def test_staff_sees_every_page(demo: None, admin_client: Client) -> None:
    for url in page_urls():
        response = admin_client.get(url)
        assert response.status_code == 200, url


def test_anonymous_visitors_are_sent_to_login(demo: None, client: Client) -> None:
    for url in page_urls():
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login")), url


def test_non_staff_users_are_sent_to_login(demo: None, client: Client, django_user_model: Any) -> None:
    user = django_user_model.objects.create_user("caller", password="x-not-used-x")
    client.force_login(user)
    response = client.get(reverse("admin:agents_scenario_preview", args=[Scenario.objects.get(slug="retail").pk]))
    assert response.status_code == 302


def test_scenario_page_shows_the_graph_and_the_compiled_preview(demo: None, admin_client: Client) -> None:
    from agents.compile import compile_scenario

    retail = Scenario.objects.get(slug="retail")
    body = admin_client.get(reverse("admin:agents_scenario_change", args=[retail.pk])).content.decode()
    assert "<svg" in body and 'data-slug="authentication"' in body and "ROOT" in body and "FALLBACK" in body
    assert compile_scenario(retail).hash in body
    assert "session.update" in body and "transfer_to_returns" in body


def test_graph_svg_draws_every_agent_and_handoff(demo: None, admin_client: Client) -> None:
    retail = Scenario.objects.get(slug="retail")
    response = admin_client.get(reverse("admin:agents_scenario_graph", args=[retail.pk]))
    assert response["Content-Type"] == "image/svg+xml"
    svg = response.content.decode()
    ElementTree.fromstring(svg)  # well-formed XML
    assert svg.count('class="agent"') == 4
    assert svg.count('class="handoff"') == retail.edges.count() == 7
    carrier = Scenario.objects.get(slug="carrier")
    svg = admin_client.get(reverse("admin:agents_scenario_graph", args=[carrier.pk])).content.decode()
    assert "SUPERVISOR" in svg and 'class="asks-supervisor"' in svg


@pytest.mark.parametrize("slug", ["retail", "carrier"])
def test_preview_lists_each_agent(demo: None, admin_client: Client, slug: str) -> None:
    scenario = Scenario.objects.get(slug=slug)
    body = admin_client.get(reverse("admin:agents_scenario_preview", args=[scenario.pk])).content.decode()
    for agent in scenario.member_agents():
        assert f"({agent.slug})" in body


def test_broken_scenario_page_shows_the_problems_instead_of_a_preview(demo: None, admin_client: Client) -> None:
    Agent.objects.filter(slug="returns").update(tool_choice="nothing_like_this")
    retail = Scenario.objects.get(slug="retail")
    body = admin_client.get(reverse("admin:agents_scenario_change", args=[retail.pk])).content.decode()
    assert "tool choice &#x27;nothing_like_this&#x27; is not one of this agent" in body
