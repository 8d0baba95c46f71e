"""A live call's consumer keeps Call.last_heartbeat fresh, so the reaper leaves it alone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async

from calls.models import Call
from realtime.server import response
from tests.calls.conftest import browser_call

pytestmark = pytest.mark.django_db(transaction=True)


async def test_consumer_sends_heartbeats(live_demo: Any, upstream: Any, operator: Any, settings: Any) -> None:
    settings.CALL_HEARTBEAT_SECONDS = 0.1
    upstream.script(response("Hello."))
    call = await browser_call(operator)
    started = await call.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "call")

    def heartbeat() -> Any:
        return Call.objects.values_list("last_heartbeat", flat=True).get(pk=started["call_id"])

    first = await database_sync_to_async(heartbeat)()
    await call.drain(0.5)
    await asyncio.sleep(0)
    later = await database_sync_to_async(heartbeat)()
    assert later > first
    await call.communicator.send_json_to({"type": "hangup"})
    assert await call.wait_closed() == 1000
