"""Webhook tools over real HTTP: secret header by name, response-size cap, no redirect to
another host, timeout — failures come back as tool output text."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest_asyncio

from realtime import events as ev
from realtime.server import RealtimeServer, function_call, response
from realtime.tools import ToolRunner, ToolSecret

from .factories import make_session, retail_spec, webhook_tool
from .webhook_server import Reply, Request, WebhookServer, webhook_server


async def _answer(request: Request, server: WebhookServer) -> Reply:
    if request.path == "/big":
        return Reply(body=b'{"blob": "' + b"x" * 5000 + b'"}')
    if request.path == "/away":
        return Reply("302 Found", b"", {"Location": f"http://localhost:{server.port}/ok"})
    if request.path == "/near":
        return Reply("302 Found", b"", {"Location": "/ok"})
    if request.path == "/slow":
        await asyncio.sleep(2)
    if request.path == "/fail":
        return Reply("500 Internal Server Error")
    return Reply()


@pytest_asyncio.fixture
async def hook() -> AsyncIterator[WebhookServer]:
    async with webhook_server(_answer) as server:
        yield server


async def test_secret_header_sent_by_name(hook: WebhookServer) -> None:
    runner = ToolRunner(secrets={"CRM": ToolSecret.bound("s3cret-value", ["127.0.0.1"])})
    outcome = await runner.run(webhook_tool("crm", hook.base + "/ok", secret_name="CRM"), {}, timeout_s=2)
    assert outcome.result == {"ok": True}
    assert hook.requests[0].key == "s3cret-value"


async def test_missing_secret_is_an_error_without_calling(hook: WebhookServer) -> None:
    outcome = await ToolRunner().run(webhook_tool("crm", hook.base + "/ok", secret_name="CRM"), {}, timeout_s=2)
    assert outcome.error == "the webhook's secret is not configured"
    assert hook.requests == []


async def test_response_size_cap(hook: WebhookServer) -> None:
    runner = ToolRunner(max_response_bytes=1024)
    outcome = await runner.run(webhook_tool("big", hook.base + "/big"), {}, timeout_s=2)
    assert "larger than 1024 bytes" in outcome.error


async def test_redirect_to_another_host_is_refused(hook: WebhookServer) -> None:
    outcome = await ToolRunner().run(webhook_tool("away", hook.base + "/away"), {}, timeout_s=2)
    assert "another host" in outcome.error
    assert [r.path for r in hook.requests] == ["/away"]


async def test_redirect_on_the_same_host_is_followed(hook: WebhookServer) -> None:
    outcome = await ToolRunner().run(webhook_tool("near", hook.base + "/near"), {}, timeout_s=2)
    assert outcome.result == {"ok": True}
    assert [r.path for r in hook.requests] == ["/near", "/ok"]


async def test_webhook_timeout_and_http_error(hook: WebhookServer) -> None:
    slow = await ToolRunner().run(webhook_tool("slow", hook.base + "/slow", timeout=0.2), {}, timeout_s=2)
    assert "timed out" in slow.error
    failed = await ToolRunner().run(webhook_tool("fail", hook.base + "/fail"), {}, timeout_s=2)
    assert failed.error == "the webhook answered HTTP 500"


async def test_webhook_in_a_call_keeps_the_secret_out_of_events(server: RealtimeServer, hook: WebhookServer) -> None:
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
    assert hook.requests[0].key == "s3cret-value"
    assert all("s3cret-value" not in json.dumps(e.to_dict()) for e in rec.events)
