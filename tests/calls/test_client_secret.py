"""POST /calls/client-secret/: login, a per-user rate limit, an ephemeral secret from the upstream's
/v1/realtime/client_secrets for the scenario's root agent session — never the API key."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.test import AsyncClient

pytestmark = pytest.mark.django_db(transaction=True)


async def test_client_secret_is_minted_for_the_root_agent(live_demo: Any, upstream: Any, operator: Any,
                                                          settings: Any) -> None:
    settings.CLIENT_SECRET_RATE_LIMIT = 2
    await cache.aclear()
    anonymous = await AsyncClient().post("/calls/client-secret/", {"scenario": "retail"})
    assert anonymous.status_code == 401

    client = AsyncClient()
    await client.aforce_login(operator)
    first = await client.post("/calls/client-secret/", {"scenario": "retail"})
    assert first.status_code == 200, first.content
    data = first.json()
    assert data["value"].startswith("ek_") and data["agent"] == "authentication"
    assert upstream.api_key not in first.content.decode()
    assert (await client.post("/calls/client-secret/", {"scenario": "nope"})).status_code == 404
    limited = await client.post("/calls/client-secret/", {"scenario": "retail"})
    assert limited.status_code == 429


async def test_upstream_failure_is_a_502_without_details(live_demo: Any, operator: Any, settings: Any) -> None:
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens on the discard port
    settings.OPENAI_API_KEY = "sk-must-not-leak"
    await cache.aclear()
    client = AsyncClient()
    await client.aforce_login(operator)
    failed = await client.post("/calls/client-secret/", {"scenario": "retail"})
    assert failed.status_code == 502
    assert "sk-must-not-leak" not in failed.content.decode()
