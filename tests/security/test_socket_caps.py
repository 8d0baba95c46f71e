"""Finding 12: a user holds at most USER_MAX_SOCKETS open browser sockets (dashboard list,
dashboard call pages and call sockets together); a closed socket gives its slot back, however
it ends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async

from calls.actions import do_start_call
from calls.models import Call
from tests.calls.conftest import CallClient
from tests.dashboard.conftest import close, dashboard_socket
from tests.security.test_call_limits import hang_up, open_call, started, token_and_cookie

pytestmark = pytest.mark.django_db(transaction=True)


async def opened(client: CallClient) -> bool:
    await client.drain(0.2)
    return client.close_code is None


async def test_a_user_has_a_capped_number_of_sockets(live_demo: Any, upstream: Any, supervisor: Any,
                                                     django_user_model: Any, settings: Any) -> None:
    settings.USER_MAX_SOCKETS = 3
    call_id = (await database_sync_to_async(do_start_call)(channel=Call.Channel.BROWSER, spec={"slug": "retail"})).pk
    listing, _ = await dashboard_socket(supervisor, "/ws/dashboard/")
    watching, _ = await dashboard_socket(supervisor, f"/ws/dashboard/calls/{call_id}/")
    call = await open_call(*await token_and_cookie(supervisor))
    assert await opened(listing) and await opened(watching) and await started(call)

    for path in ("/ws/dashboard/", f"/ws/dashboard/calls/{call_id}/"):
        refused, _ = await dashboard_socket(supervisor, path)
        assert await refused.wait_closed(5) == 4429
    refused_call = await open_call(*await token_and_cookie(supervisor))
    assert await refused_call.wait_closed(5) == 4429

    # Another user is not affected.
    other = await database_sync_to_async(django_user_model.objects.create_user)(
        "kim", password="also-watching-123", is_staff=True)
    theirs, _ = await dashboard_socket(other, "/ws/dashboard/")
    assert await opened(theirs)

    # Slots come back: a clean close, a hang-up, a consumer cancelled under the socket.
    await close(listing)
    await hang_up(call)
    watching.communicator.future.cancel()
    await asyncio.sleep(0.2)
    again = [await dashboard_socket(supervisor, "/ws/dashboard/") for _ in range(3)]
    for client, _ in again:
        assert await opened(client)
    for client, _ in [*again, (theirs, True)]:
        await close(client)
