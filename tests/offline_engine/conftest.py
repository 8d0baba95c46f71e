"""Offline engine tests: one `OfflineEngine` (models loaded once) for the whole session; a fresh
validated server on an ephemeral port per test; caller speech synthesised with piper."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from realtime.server import RealtimeServer
from realtime.server.offline import OfflineEngine, OfflineSettings, offline_server
from realtime.server.testing import TEST_API_KEY

from .speech import Caller

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def engine() -> Iterator[OfflineEngine]:
    eng = OfflineEngine(OfflineSettings(workers=2, max_sessions=3))
    eng.load()
    yield eng
    eng.close()


@pytest.fixture(scope="session")
def caller(engine: OfflineEngine) -> Caller:
    return Caller(engine)


@pytest_asyncio.fixture
async def server(engine: OfflineEngine) -> AsyncIterator[RealtimeServer]:
    srv = offline_server(engine=engine, api_key=TEST_API_KEY, validate_outgoing=True, max_session_seconds=300.0)
    await srv.start("127.0.0.1", 0)
    try:
        yield srv
        assert not srv.validation_failures, srv.validation_failures
    finally:
        await srv.stop()


# --- demo scenarios through the platform's consumers (Django) ----------------------------------


@pytest.fixture
def fresh_channel_layer() -> Iterator[None]:
    """A channel layer per test (channels_redis's locks belong to the loop that made them)."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def demo_db(transactional_db: object, fresh_channel_layer: None) -> None:
    """The demo records and scenarios exactly as `manage.py loaddemo` creates them."""
    from demo.loader import load_demo

    load_demo()


@pytest_asyncio.fixture
async def offline_upstream(engine: OfflineEngine, settings: object) -> AsyncIterator[RealtimeServer]:
    """The offline server on this test's loop, configured as the platform's upstream."""
    srv = offline_server(engine=engine, api_key=TEST_API_KEY, validate_outgoing=True, max_session_seconds=300.0)
    await srv.start("127.0.0.1", 0)
    settings.OPENAI_BASE_URL = srv.base_url  # type: ignore[attr-defined]
    settings.OPENAI_API_KEY = srv.api_key  # type: ignore[attr-defined]
    try:
        yield srv
        assert not srv.validation_failures, srv.validation_failures
    finally:
        await srv.stop()
