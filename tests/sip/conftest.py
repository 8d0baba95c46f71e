"""Fixtures of the SIP tests: the protocol server (from realtime.server.testing) and, for calls
through Django, those of the live-calls tests."""

from __future__ import annotations

from realtime.server.testing import realtime_server  # noqa: F401
from tests.calls.conftest import fresh_channel_layer, live_demo, upstream  # noqa: F401
