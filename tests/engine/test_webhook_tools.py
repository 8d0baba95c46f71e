"""Webhook tools over real HTTP: secret header by name, response-size cap, no redirect to
another host, timeout — failures come back as tool output text."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest_asyncio

from realtime import events as ev
from realtime.server import RealtimeServer, function_call, response
from realtime.tools import ToolRunner, ToolSecret

from .factories import make_session, retail_spec, webhook_tool


@dataclass
class Hook:
    port: int
    requests: list[dict[str, str]] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest_asyncio.fixture
async def hook() -> AsyncIterator[Hook]:
    state = Hook(0)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        lines = head.split("\r\n")
        path = lines[0].split(" ")[1]
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        state.requests.append({"path": path, "key": headers.get("x-api-key", ""), "body": body.decode()})
        status, extra, payload = "200 OK", "", b'{"ok": true}'
        if path == "/big":
            payload = b'{"blob": "' + b"x" * 5000 + b'"}'
        elif path == "/away":
            status, extra, payload = "302 Found", f"Location: http://localhost:{state.port}/ok\r\n", b""
        elif path == "/near":
            status, extra, payload = "302 Found", "Location: /ok\r\n", b""
        elif path == "/slow":
            await asyncio.sleep(2)
        elif path == "/fail":
            status = "500 Internal Server Error"
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode() + payload
        )
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.port = srv.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        srv.close()
        await srv.wait_closed()


async def test_secret_header_sent_by_name(hook: Hook) -> None:
    runner = ToolRunner(secrets={"CRM": ToolSecret.bound("s3cret-value", ["127.0.0.1"])})
    outcome = await runner.run(webhook_tool("crm", hook.base + "/ok", secret_name="CRM"), {}, timeout_s=2)
    assert outcome.result == {"ok": True}
    assert hook.requests[0]["key"] == "s3cret-value"


async def test_missing_secret_is_an_error_without_calling(hook: Hook) -> None:
    outcome = await ToolRunner().run(webhook_tool("crm", hook.base + "/ok", secret_name="CRM"), {}, timeout_s=2)
    assert outcome.error == "the webhook's secret is not configured"
    assert hook.requests == []


async def test_response_size_cap(hook: Hook) -> None:
    runner = ToolRunner(max_response_bytes=1024)
    outcome = await runner.run(webhook_tool("big", hook.base + "/big"), {}, timeout_s=2)
    assert "larger than 1024 bytes" in outcome.error


async def test_redirect_to_another_host_is_refused(hook: Hook) -> None:
    outcome = await ToolRunner().run(webhook_tool("away", hook.base + "/away"), {}, timeout_s=2)
    assert "another host" in outcome.error
    assert [r["path"] for r in hook.requests] == ["/away"]


async def test_redirect_on_the_same_host_is_followed(hook: Hook) -> None:
    outcome = await ToolRunner().run(webhook_tool("near", hook.base + "/near"), {}, timeout_s=2)
    assert outcome.result == {"ok": True}
    assert [r["path"] for r in hook.requests] == ["/near", "/ok"]


async def test_webhook_timeout_and_http_error(hook: Hook) -> None:
    slow = await ToolRunner().run(webhook_tool("slow", hook.base + "/slow", timeout=0.2), {}, timeout_s=2)
    assert "timed out" in slow.error
    failed = await ToolRunner().run(webhook_tool("fail", hook.base + "/fail"), {}, timeout_s=2)
    assert failed.error == "the webhook answered HTTP 500"


async def test_webhook_in_a_call_keeps_the_secret_out_of_events(server: RealtimeServer, hook: Hook) -> None:
    spec = retail_spec(extra_front_tools=(webhook_tool("crm_lookup", hook.base + "/ok", secret_name="CRM"),))
    server.script(response("Hi."), response(function_call("crm_lookup", {}, call_id="c9")), response("Found you."))
    session, rec = make_session(server, spec, secrets={"CRM": ToolSecret.bound("s3cret-value", ["127.0.0.1"])})
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    await session.send_text("look me up")
    finished = await rec.wait_type(ev.ToolFinished)
    assert finished.result == {"ok": True}
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text == "Found you.")
    await session.close()
    assert hook.requests[0]["key"] == "s3cret-value"
    assert all("s3cret-value" not in json.dumps(e.to_dict()) for e in rec.events)
