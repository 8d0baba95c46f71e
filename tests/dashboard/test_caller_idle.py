"""A live browser call whose caller goes silent: the protocol server's server_vad idle_timeout_ms fires
(`input_audio_buffer.timeout_triggered`), the engine's CallerIdle is recorded through calls.actions
(the call's idle count, a `caller.idle` event in the log) and reaches the supervisor: the live list's
row, the call page's socket (live and when resuming) and the call page itself."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import AsyncClient

from calls.models import Call, CallEvent
from realtime import audio
from realtime.server import response
from realtime.server.testing import chunks
from tests.calls.conftest import browser_call
from tests.dashboard.conftest import close, dashboard_socket

pytestmark = pytest.mark.django_db(transaction=True)

FRAME = 960  # 20 ms of 24 kHz PCM16
IDLE_TIMEOUT_MS = 8000  # the demo retail agents' idle timeout


def is_frame(kind: str, **fields: Any) -> Any:
    return lambda f: isinstance(f, dict) and f.get("type") == kind and all(f.get(k) == v for k, v in fields.items())


def idle_event(f: Any) -> bool:
    return isinstance(f, dict) and f.get("type") == "event" and f["event"].get("type") == "caller.idle"


async def test_a_silent_caller_is_recorded_and_shown_to_the_supervisor(
        live_demo: Any, upstream: Any, operator: Any, supervisor: Any) -> None:
    upstream.script(response("Hello, who am I speaking with?"), response("Are you still there?"))
    board, connected = await dashboard_socket(supervisor, "/ws/dashboard/")
    assert connected
    await board.wait_for(is_frame("snapshot"))

    call = await browser_call(operator)
    hello = await call.wait_for(is_frame("call"))
    call_id = hello["call_id"]
    await call.wait_event("transcript.done", role="assistant", text="Hello, who am I speaking with?")
    await call.wait_event("usage")  # the greeting's response.done: the idle count starts after its playback
    page, connected = await dashboard_socket(supervisor, f"/ws/dashboard/calls/{call_id}/?last_seq=0")
    assert connected
    await page.wait_for(is_frame("snapshot"))

    # The caller says nothing: silence frames move the server's audio clock past the idle timeout.
    for frame in chunks(audio.silence(IDLE_TIMEOUT_MS + 1500, audio.PCM), FRAME):
        await call.communicator.send_to(bytes_data=frame)
    engine_idle = await call.wait_event("caller.idle", timeout=15)
    assert engine_idle["agent"] == "authentication"
    assert IDLE_TIMEOUT_MS <= engine_idle["ms"] < IDLE_TIMEOUT_MS + 1500
    await call.wait_event("transcript.done", role="assistant", text="Are you still there?")
    triggered = [e for e in upstream.sessions[0].server_events if e["type"] == "input_audio_buffer.timeout_triggered"]
    assert [e["item_id"] for e in triggered] == [engine_idle["item_id"]]

    # The supervisor's call page gets the recorded event live ...
    live = await page.wait_for(idle_event)
    assert {k: live["event"][k] for k in ("ms", "agent", "item_id", "idle_prompts")} == {
        "ms": engine_idle["ms"], "agent": "authentication", "item_id": engine_idle["item_id"], "idle_prompts": 1}
    # ... and the live list the call's row with its idle count, under the same sequence number.
    change = await board.wait_for(is_frame("call", change="caller.idle"))
    assert (change["call"]["id"], change["seq"], change["call"]["idle_prompts"]) == (call_id, live["seq"], 1)

    record = await database_sync_to_async(Call.objects.get)(pk=call_id)
    assert record.idle_prompts == 1
    logged = await database_sync_to_async(CallEvent.objects.get)(call_id=call_id, seq=live["seq"])
    assert (logged.type, logged.event) == ("caller.idle", live["event"])

    # A page that resumes from just before it is sent the event from the log.
    resumed, connected = await dashboard_socket(supervisor, f"/ws/dashboard/calls/{call_id}/?last_seq={live['seq'] - 1}")
    assert connected
    snapshot = await resumed.wait_for(is_frame("snapshot"))
    assert snapshot["events"][0] == {"seq": live["seq"], "event": live["event"]}
    assert snapshot["call"]["idle_prompts"] == 1
    await close(resumed)

    # The call page rendered from the log shows the breadcrumb and the count.
    http = AsyncClient()
    await http.aforce_login(supervisor)
    html = (await http.get(f"/dashboard/calls/{call_id}/")).content.decode()
    seconds = (engine_idle["ms"] + 500) // 1000
    assert f"Caller silent for <strong>{seconds} s</strong>" in html
    assert '<dd id="stat-idle"' in html and ">1</dd>" in html.split('<dd id="stat-idle"', 1)[1][:200]
    listing = (await http.get("/dashboard/")).content.decode()
    assert '<td class="num idle">1</td>' in listing

    await call.communicator.send_json_to({"type": "hangup"})
    await call.wait_closed()
    await close(page)
    await close(board)
