"""The live calls list: actions publish each change of a call's row to the dashboard group, and the
list socket forwards it (a call starting in the browser shows up at once)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from calls import actions
from calls.events import DASHBOARD_CALL, DASHBOARD_GROUP
from calls.models import Call
from realtime.server import response
from tests.calls.conftest import GroupListener, browser_call
from tests.dashboard.conftest import close, dashboard_socket

SPEC = {"slug": "retail", "root_agent": "authentication", "hash": "c" * 64, "limits": {}, "agents": {}}


@pytest.mark.django_db
def test_row_changes_reach_the_dashboard_group_and_nothing_else(django_capture_on_commit_callbacks: Any) -> None:
    listener = GroupListener(group=DASHBOARD_GROUP)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            call = actions.do_start_call(channel=Call.Channel.BROWSER, spec=SPEC, caller_id="alice")
        steps = [
            (actions.do_open_session, (call.pk,), {"model": "gpt-realtime-1.5", "agent": "authentication"}),
            (actions.do_record_transcript, (call.pk,), {"item_id": "i1", "role": "user", "text": "Hi"}),
            (actions.do_record_handoff, (call.pk,), {"from_agent": "authentication", "to_agent": "returns"}),
            (actions.do_record_tool, (call.pk,), {"tool_call_id": "fc_1", "name": "refund",
                                                  "status": "awaiting_approval", "arguments": {}}),
            (actions.do_record_usage, (call.pk,), {"agent": "returns", "usage": {"input_tokens": 3},
                                                   "cost": Decimal("0.5")}),
            (actions.do_record_latency, (call.pk,), {"voice_to_voice_ms": 420}),
            (actions.do_end_call, (call.pk, "hangup"), {}),
        ]
        for do, args, kwargs in steps:
            with django_capture_on_commit_callbacks(execute=True):
                do(*args, **kwargs)
        messages = listener.drain()
    finally:
        listener.close()
    assert {m["type"] for m in messages} == {DASHBOARD_CALL}
    assert [m["change"] for m in messages] == ["call_started", "handoff", "tool", "usage", "latency", "call_ended"]
    assert [m["seq"] for m in messages] == [1, 4, 5, 6, 7, 8]  # session (2) and transcript (3) are not row changes
    started, handoff, tool, usage, latency, ended = (m["call"] for m in messages)
    assert (started["status"], started["agent"], started["caller_id"], started["scenario"]) == (
        "active", "authentication", "alice", "retail")
    assert handoff["agent"] == "returns"
    assert tool["pending_approvals"] == 1
    assert usage["cost"] == "0.500000"
    assert (latency["latency_p50_ms"], latency["latency_p95_ms"]) == (420, 420)
    assert (ended["status"], ended["end_reason"], ended["pending_approvals"]) == ("ended", "hangup", 0)
    assert ended["ended_at"] is not None


@pytest.mark.django_db(transaction=True)
async def test_the_list_receives_a_call_started_when_a_browser_call_starts(
        live_demo: Any, upstream: Any, operator: Any, supervisor: Any) -> None:
    upstream.script(response("Hello."))
    dashboard, connected = await dashboard_socket(supervisor, "/ws/dashboard/")
    assert connected
    snapshot = await dashboard.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "snapshot")
    assert snapshot["live"] == []

    call = await browser_call(operator)
    hello = await call.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "call")
    started = await dashboard.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "call")
    assert started["change"] == "call_started"
    assert started["call"]["id"] == hello["call_id"]
    assert (started["call"]["status"], started["call"]["channel"], started["call"]["caller_id"]) == (
        "active", "browser", "operator")

    await call.communicator.send_json_to({"type": "hangup"})
    ended = await dashboard.wait_for(lambda f: isinstance(f, dict) and f.get("change") == "call_ended")
    assert ended["call"]["status"] == "ended" and ended["seq"] > started["seq"]
    await call.wait_closed()
    await close(dashboard)
