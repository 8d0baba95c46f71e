"""Every dashboard page and socket: anonymous -> login (page) / 4401 (socket); logged in but not
staff -> 403 / 4403; staff -> the page / a snapshot. An unknown call is a 404 / 4404."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from calls import actions
from calls.models import Call
from tests.dashboard.conftest import close, dashboard_socket

SPEC = {"slug": "retail", "root_agent": "authentication", "hash": "b" * 64, "limits": {}, "agents": {}}


@pytest.fixture
def call(db: Any) -> Call:
    return actions.do_start_call(channel=Call.Channel.BROWSER, spec=SPEC, caller_id="alice")


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["/dashboard/", "/dashboard/calls/{id}/"])
def test_pages_need_a_supervisor(page: str, call: Call, supervisor: Any, outsider: Any) -> None:
    url = page.format(id=call.pk)
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/admin/login/?next=")

    client = Client()
    client.force_login(outsider)
    assert client.get(url).status_code == 403

    client.force_login(supervisor)
    response = client.get(url)
    assert response.status_code == 200
    assert b"alice" in response.content and b"retail" in response.content


@pytest.mark.django_db
def test_an_unknown_call_page_is_404(supervisor: Any) -> None:
    client = Client()
    client.force_login(supervisor)
    assert client.get("/dashboard/calls/999999/").status_code == 404


@pytest.mark.django_db
def test_pages_refuse_other_methods(supervisor: Any) -> None:
    client = Client()
    client.force_login(supervisor)
    assert client.post("/dashboard/").status_code == 405


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/ws/dashboard/", "/ws/dashboard/calls/{id}/"])
async def test_sockets_need_a_supervisor(path: str, supervisor: Any, outsider: Any) -> None:
    call = await database_sync_to_async(actions.do_start_call)(channel=Call.Channel.BROWSER, spec=SPEC,
                                                               caller_id="alice")
    path = path.format(id=call.pk)
    for user, code in ((None, 4401), (outsider, 4403)):
        client, connected = await dashboard_socket(user, path)
        assert connected  # accepted only to close with a code the page can read
        assert await client.wait_closed() == code
        assert client.texts() == [], "nothing is sent before the refusal"

    client, connected = await dashboard_socket(supervisor, path)
    assert connected
    snapshot = await client.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "snapshot")
    if "calls" in path:
        assert snapshot["call"]["id"] == call.pk and [e["seq"] for e in snapshot["events"]] == [1]
    else:
        assert [row["id"] for row in snapshot["live"]] == [call.pk]
    await close(client)


@pytest.mark.django_db(transaction=True)
async def test_the_call_socket_of_an_unknown_call_closes_4404(supervisor: Any) -> None:
    client, connected = await dashboard_socket(supervisor, "/ws/dashboard/calls/999999/")
    assert connected and await client.wait_closed() == 4404


@pytest.mark.django_db(transaction=True)
async def test_a_foreign_origin_is_refused(supervisor: Any) -> None:
    from channels.testing import WebsocketCommunicator

    from contactcenter.asgi import application

    communicator = WebsocketCommunicator(application, "/ws/dashboard/",
                                         headers=[(b"origin", b"http://evil.example"), (b"host", b"testserver")])
    connected, _ = await communicator.connect(timeout=5)
    assert not connected
