"""Every audit page and export: anonymous -> the login page; logged in but not staff -> 403; staff ->
the page. Like the dashboard. Other methods are refused."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

PAGES = ["/audit/", "/audit/analytics/", "/audit/compare/", "/audit/export.csv", "/audit/export.jsonl"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", PAGES)
def test_pages_need_a_supervisor(url: str, supervisor: Any, outsider: Any) -> None:
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/admin/login/?next=")

    client = Client()
    client.force_login(outsider)
    assert client.get(url).status_code == 403

    client.force_login(supervisor)
    response = client.get(url)
    assert response.status_code == 200


@pytest.mark.django_db
def test_an_inactive_staff_user_is_refused(django_user_model: Any) -> None:
    former = django_user_model.objects.create_user("gone", password="used-to-work-here-1", is_staff=True,
                                                   is_active=False)
    client = Client()
    client.force_login(former)
    assert client.get("/audit/").status_code in (302, 403)


@pytest.mark.django_db
@pytest.mark.parametrize("url", PAGES)
def test_pages_refuse_other_methods(url: str, supervisor: Any) -> None:
    client = Client()
    client.force_login(supervisor)
    assert client.post(url).status_code == 405


@pytest.mark.django_db
def test_the_audit_link_is_shown_to_staff_only(supervisor: Any, outsider: Any) -> None:
    client = Client()
    client.force_login(outsider)
    assert b'href="/audit/"' not in client.get("/calls/").content
    client.force_login(supervisor)
    assert b'href="/audit/"' in client.get("/calls/").content
