"""The server object is a plain ASGI app: drive it with hand-made scopes, as another ASGI server would."""

import asyncio
import json
from typing import Any

from realtime.server import RealtimeServer, response


async def _call(app: RealtimeServer, scope: dict[str, Any], inbound: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for message in inbound:
        queue.put_nowait(message)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "websocket.send" and len([m for m in sent if m["type"] == "websocket.send"]) == 1:
            queue.put_nowait({"type": "websocket.disconnect", "code": 1000})

    await asyncio.wait_for(app(scope, queue.get, send), 5)
    return sent


async def test_http_responses_through_a_bare_asgi_call() -> None:
    app = RealtimeServer(api_key="k")
    app.script_text(response("mounted"))
    body = json.dumps({"model": "gpt-5.4-mini", "input": "hi"}).encode()
    scope = {"type": "http", "method": "POST", "path": "/v1/responses", "headers": [(b"authorization", b"Bearer k")], "query_string": b""}
    sent = await _call(app, scope, [{"type": "http.request", "body": body, "more_body": False}])
    assert sent[0]["status"] == 200
    assert json.loads(sent[1]["body"])["output"][0]["content"][0]["text"] == "mounted"


async def test_websocket_scope_without_extensions() -> None:
    app = RealtimeServer(api_key="k")
    base = {"type": "websocket", "path": "/v1/realtime", "query_string": b"model=gpt-realtime-2", "subprotocols": []}
    refused = await _call(app, {**base, "headers": []}, [{"type": "websocket.connect"}])
    assert refused == [{"type": "websocket.close", "code": 1008}]
    accepted = await _call(app, {**base, "headers": [(b"authorization", b"Bearer k")]}, [{"type": "websocket.connect"}])
    assert accepted[0]["type"] == "websocket.accept"
    assert json.loads(accepted[1]["text"])["type"] == "session.created"
    assert app.sessions[0].closed
