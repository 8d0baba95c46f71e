"""Missing or wrong credentials are refused with HTTP 401 before the upgrade."""

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from realtime.server import RealtimeServer
from realtime.server.testing import openai_client_for


async def test_missing_authorization_is_refused_with_401(realtime_server: RealtimeServer) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with connect(f"{realtime_server.url}?model=gpt-realtime-2"):
            pass
    assert info.value.response.status_code == 401
    assert b"invalid_api_key" in info.value.response.body
    assert realtime_server.sessions == []


async def test_wrong_key_is_refused_through_the_official_client(realtime_server: RealtimeServer) -> None:
    client = openai_client_for(realtime_server, api_key="sk-wrong")
    with pytest.raises(InvalidStatus) as info:
        async with client.realtime.connect(model="gpt-realtime-2"):
            pass
    assert info.value.response.status_code == 401
    assert realtime_server.sessions == []
    assert realtime_server.refused == ["401 /v1/realtime"]


async def test_unknown_path_is_404(realtime_server: RealtimeServer) -> None:
    url = realtime_server.url.replace("/v1/realtime", "/v1/other")
    with pytest.raises(InvalidStatus) as info:
        async with connect(url, additional_headers={"Authorization": f"Bearer {realtime_server.api_key}"}):
            pass
    assert info.value.response.status_code == 404
