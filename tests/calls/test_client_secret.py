"""POST /calls/client-secret/: staff only, for a live call of their own; a per-user rate limit; an
ephemeral secret from the upstream's /v1/realtime/client_secrets with the session of the call's
current agent — never the API key."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.core.cache import cache
from django.test import AsyncClient

from calls import actions
from calls.models import Call
from calls.scenarios import compile_for_call
from realtime.spec import ScenarioSpec

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def supervisor(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("supervisor", password="call-me-maybe-123", is_staff=True)


async def live_call(user: Any, slug: str = "retail") -> Call:
    def start() -> Call:
        scenario, spec = compile_for_call(slug)
        return actions.do_start_call(channel=Call.Channel.BROWSER, spec=spec.to_dict(), scenario=scenario, user=user,
                                     codec="pcm16")

    return await database_sync_to_async(start)()


async def logged_in(user: Any) -> AsyncClient:
    client = AsyncClient()
    await client.aforce_login(user)
    return client


async def test_a_staff_member_gets_a_secret_for_their_live_call(live_demo: Any, upstream: Any, supervisor: Any,
                                                                settings: Any) -> None:
    settings.CLIENT_SECRET_RATE_LIMIT = 2
    await cache.adelete(f"calls:client-secret:{supervisor.pk}")
    call = await live_call(supervisor)
    client = await logged_in(supervisor)
    first = await client.post("/calls/client-secret/", {"call": call.pk})
    assert first.status_code == 200, first.content
    data = first.json()
    assert data["value"].startswith("ek_") and (data["call"], data["agent"]) == (call.pk, "authentication")
    assert upstream.api_key not in first.content.decode()
    agents = ScenarioSpec.from_dict(call.spec).agents
    assert upstream.secrets[data["value"]].session["instructions"] == agents["authentication"].session["instructions"]

    # The secret follows the call: after a handoff it carries the agent now answering.
    await database_sync_to_async(Call.objects.filter(pk=call.pk).update)(current_agent="returns")
    second = await client.post("/calls/client-secret/", {"call": call.pk})
    assert second.status_code == 200 and second.json()["agent"] == "returns"
    assert upstream.secrets[second.json()["value"]].session["instructions"] == agents["returns"].session["instructions"]
    limited = await client.post("/calls/client-secret/", {"call": call.pk})
    assert limited.status_code == 429


async def test_nobody_else_gets_one(live_demo: Any, upstream: Any, supervisor: Any, operator: Any,
                                    django_user_model: Any) -> None:
    await cache.adelete(f"calls:client-secret:{supervisor.pk}")
    assert (await AsyncClient().post("/calls/client-secret/", {"call": 1})).status_code == 401

    # A logged-in caller who is not staff, even for a live call of their own.
    own = await live_call(operator)
    caller = await logged_in(operator)
    refused = await caller.post("/calls/client-secret/", {"call": own.pk})
    assert refused.status_code == 403 and "ek_" not in refused.content.decode()

    # Staff, but for a call that is not theirs, for no call, or for an ended call.
    staff = await logged_in(supervisor)
    assert (await staff.post("/calls/client-secret/", {"call": own.pk})).status_code == 404
    assert (await staff.post("/calls/client-secret/", {"call": 10**9})).status_code == 404
    assert (await staff.post("/calls/client-secret/", {"scenario": "retail"})).status_code == 400
    mine = await live_call(supervisor)
    await database_sync_to_async(actions.do_end_call)(mine.pk, reason="caller_hung_up")
    assert (await staff.post("/calls/client-secret/", {"call": mine.pk})).status_code == 409
    assert upstream.secrets == {}  # the upstream minted nothing


async def test_upstream_failure_is_a_502_without_details(live_demo: Any, supervisor: Any, settings: Any) -> None:
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens on the discard port
    settings.OPENAI_API_KEY = "sk-must-not-leak"
    await cache.adelete(f"calls:client-secret:{supervisor.pk}")
    call = await live_call(supervisor)
    client = await logged_in(supervisor)
    failed = await client.post("/calls/client-secret/", {"call": call.pk})
    assert failed.status_code == 502
    assert "sk-must-not-leak" not in failed.content.decode()
