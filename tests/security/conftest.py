"""Fixtures of the abuse tests: the live-call fixtures (demo scenarios, the protocol server as
upstream, an operator, a fresh channel layer per test) shared with tests/calls."""

from tests.calls.conftest import (  # noqa: F401 - fixtures
    demo,
    fresh_channel_layer,
    live_demo,
    operator,
    threaded_realtime_server,
    upstream,
)
