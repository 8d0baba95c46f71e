"""Engine tests: a validated protocol server on an ephemeral port for each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from realtime.server import RealtimeServer
from realtime.server.testing import running_server


@pytest_asyncio.fixture
async def server() -> AsyncIterator[RealtimeServer]:
    async with running_server(max_session_seconds=60.0) as srv:
        yield srv
        assert not srv.validation_failures, srv.validation_failures
