"""Fixtures of the dashboard tests: a supervisor (staff), an outsider (logged in, not staff), and
dashboard sockets opened the way the page opens them (session cookie, same Origin)."""

from __future__ import annotations

from typing import Any

from tests.calls.conftest import (  # noqa: F401 — fixtures shared with the live-calls tests
    CallClient,
    fresh_channel_layer,
    live_demo,
    operator,
    upstream,
)


async def dashboard_socket(user: Any, path: str) -> tuple[CallClient, bool]:
    """Open a dashboard socket as `user` (None: anonymous). Returns the client and whether it connected."""
    from channels.testing import WebsocketCommunicator
    from django.test import AsyncClient

    from contactcenter.asgi import application

    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    if user is not None:
        http = AsyncClient()
        await http.aforce_login(user)
        headers.append((b"cookie", f"sessionid={http.cookies['sessionid'].value}".encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect(timeout=10)
    return CallClient(communicator), connected


async def close(client: CallClient) -> None:
    if not client.communicator.future.done():
        await client.communicator.disconnect(timeout=5)
