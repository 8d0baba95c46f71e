"""Fixtures of the SIP tests: the protocol server (from realtime.server.testing), for calls
through Django those of the live-calls tests, and the signed webhook's secret and poster."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import AsyncClient

from realtime.server.testing import realtime_server  # noqa: F401
from tests.calls.conftest import fresh_channel_layer, live_demo, upstream  # noqa: F401

SECRET = "whsec_" + "c2lwLXRlc3Qtc2VjcmV0LWZvci13ZWJob29rcw=="
CALLER = "+15551234567"


@pytest.fixture
def webhook_secret(settings: Any) -> str:
    """The webhook secret set, and calls without a routing rule sent to the retail demo."""
    settings.OPENAI_WEBHOOK_SECRET = SECRET
    settings.SIP_DEFAULT_SCENARIO = "retail"
    return SECRET


async def post_webhook(body: bytes, headers: dict[str, str]) -> Any:
    return await AsyncClient().post("/openai/webhook", body, content_type="application/json", headers=headers)
