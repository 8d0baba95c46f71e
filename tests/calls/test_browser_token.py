"""POST /calls/token/: login and CSRF required; the token carries user, scenario and codec and expires."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core import signing
from django.test import Client

from calls import tokens


def test_logged_in_operator_gets_a_token(client: Client, demo: Any, operator: Any) -> None:
    client.force_login(operator)
    response = client.post("/calls/token/", {"scenario": "retail", "codec": "pcmu"})
    assert response.status_code == 200
    data = response.json()
    assert data["ws_url"] == f"/ws/calls/browser/?token={data['token']}"
    grant = tokens.read_browser_token(data["token"])
    assert (grant.user_id, grant.scenario, grant.codec) == (operator.pk, "retail", "pcmu")
    assert grant.nonce  # single-use: a socket claims it (tests/security/test_call_limits.py)


def test_json_body_is_accepted(client: Client, demo: Any, operator: Any) -> None:
    client.force_login(operator)
    response = client.post("/calls/token/", json.dumps({"scenario": "retail"}), content_type="application/json")
    assert tokens.read_browser_token(response.json()["token"]).codec == "pcm16"


def test_anonymous_is_refused(client: Client, demo: Any) -> None:
    assert client.post("/calls/token/", {"scenario": "retail"}).status_code == 401


def test_csrf_is_enforced(demo: Any, operator: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    assert client.post("/calls/token/", {"scenario": "retail"}).status_code == 403


@pytest.mark.parametrize(("data", "status"), [({"scenario": "nope"}, 404), ({"scenario": "retail", "codec": "opus"}, 400)])
def test_bad_requests(client: Client, demo: Any, operator: Any, data: dict[str, str], status: int) -> None:
    client.force_login(operator)
    assert client.post("/calls/token/", data).status_code == status


def test_tokens_expire_and_do_not_cross_kinds(settings: Any) -> None:
    token = tokens.browser_token(user_id=1, scenario="retail", codec="pcm16")
    settings.CALL_TOKEN_MAX_AGE_SECONDS = -1
    with pytest.raises(tokens.TokenError, match="expired"):
        tokens.read_browser_token(token)
    settings.CALL_TOKEN_MAX_AGE_SECONDS = 60
    with pytest.raises(tokens.TokenError, match="signature"):
        tokens.read_twilio_stream_token(token)
    with pytest.raises(tokens.TokenError, match="missing"):
        tokens.read_browser_token("")
    forged = signing.dumps({"u": 1, "s": "retail", "c": "pcm16"}, salt=tokens.BROWSER_SALT, key="not-our-key")
    with pytest.raises(tokens.TokenError, match="signature"):
        tokens.read_browser_token(forged)
