"""A call past the offline engine's capacity: the browser caller is told why and the call ends
with that reason, instead of every call slowing down."""

from __future__ import annotations

from typing import Any

import pytest

from realtime.server.offline import OfflineEngine, OfflineSettings, offline_server
from realtime.server.testing import TEST_API_KEY
from tests.calls.conftest import browser_call

pytestmark = pytest.mark.django_db(transaction=True)


def test_default_capacity_is_what_two_cores_carry() -> None:
    assert OfflineSettings().max_sessions == 2


async def test_refused_session_ends_the_call_with_a_reason(demo_db: Any, engine: OfflineEngine, settings: Any,
                                                           django_user_model: Any) -> None:
    server = offline_server(engine=engine, api_key=TEST_API_KEY, max_sessions=0)
    await server.start("127.0.0.1", 0)
    # no key: the offline engine is both the upstream and the failover provider
    settings.OPENAI_BASE_URL = settings.OFFLINE_ENGINE_URL = server.base_url
    settings.OPENAI_API_KEY = server.api_key
    try:
        operator = await django_user_model.objects.acreate(username="operator")
        client = await browser_call(operator)
        ended = await client.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "ended", timeout=30)
        assert ended["reason"] == "engine_at_capacity"
        # The caller (not staff) sees why the call could not go on: the fatal error keeps its words.
        refusal = [e for e in client.events("error") if e["code"] == "engine_at_capacity" and e["fatal"]]
        assert refusal and "at capacity" in refusal[0]["message"], client.events("error")
        assert await client.wait_closed() is not None
    finally:
        await server.stop()
