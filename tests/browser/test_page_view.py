"""GET /calls/: login required, the scenarios to call, the codecs, and nothing secret on the page."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_user("op", password="pw-123456789")


def test_login_required(client: Client) -> None:
    response = client.get("/calls/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/calls/")


def test_page_lists_scenarios_and_codecs(client: Client, operator) -> None:
    from demo.loader import load_demo

    load_demo()
    client.force_login(operator)
    response = client.get("/calls/?codec=pcmu&scenario=retail")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<option value="retail" selected' in html
    assert 'value="carrier"' in html
    assert 'value="pcmu" data-rate="8000" checked' in html
    assert 'data-token-url="/calls/token/"' in html
    assert "calls/call-audio-worklet.js" in html and "calls/call.js" in html
    assert "csrfmiddlewaretoken" in html and "csrftoken" in response.cookies


def test_page_without_scenarios_says_so(client: Client, operator) -> None:
    client.force_login(operator)
    html = client.get("/calls/").content.decode()
    assert "No scenarios yet" in html
    assert 'id="call-button" class="primary" disabled' in html


@override_settings(OPENAI_API_KEY="sk-page-must-never-show-this")
def test_page_never_carries_the_key(client: Client, operator) -> None:
    client.force_login(operator)
    for path in ("/calls/", "/static/calls/call.js", "/static/calls/call-audio-worklet.js"):
        response = client.get(path)
        assert response.status_code == 200, path
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert b"sk-page-must-never-show-this" not in body


def test_static_files_are_served_by_the_app(client: Client) -> None:
    response = client.get("/static/calls/call-audio-worklet.js")
    assert response.status_code == 200
    assert "registerProcessor" in b"".join(response.streaming_content).decode()
