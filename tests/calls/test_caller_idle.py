"""The caller going silent (server_vad idle_timeout_ms): `do_record_caller_idle` counts it on the call,
logs a `caller.idle` event with the call's next sequence number and publishes it after commit to the
call's group and, as a change of the call's row, to the dashboard group."""

from __future__ import annotations

from typing import Any

import pytest

from calls import actions
from calls.events import DASHBOARD_CALL, DASHBOARD_CHANGES, DASHBOARD_GROUP, EventSchemaError, check_event
from calls.models import Call, CallEvent
from tests.calls.conftest import GroupListener

SPEC = {"slug": "retail", "root_agent": "authentication", "hash": "f" * 64, "limits": {}, "agents": {}}

pytestmark = pytest.mark.django_db


def test_each_idle_timeout_is_counted_logged_and_published_in_sequence(
        listen: Any, django_capture_on_commit_callbacks: Any) -> None:
    capture = django_capture_on_commit_callbacks
    with capture(execute=True):
        call = actions.do_start_call(channel=Call.Channel.TWILIO, spec=SPEC, caller_id="+447700900123")
    assert call.idle_prompts == 0 and call.last_seq == 1
    listener = listen(call.pk)
    dashboard = GroupListener(group=DASHBOARD_GROUP)
    try:
        with capture(execute=True):
            actions.do_record_transcript(call.pk, item_id="a1", role="assistant", text="Hello?", agent="authentication")
        with capture(execute=True) as callbacks:
            assert actions.do_record_caller_idle(call.pk, ms=8000, agent="authentication", item_id="item_s1") == 1
        assert len(callbacks) == 2  # the call's group and the dashboard group, after commit only
        with capture(execute=True):
            assert actions.do_record_caller_idle(call.pk, ms=8020, agent="returns", item_id="item_s2") == 2
        messages = listener.drain()
        changes = dashboard.drain()
    finally:
        dashboard.close()

    for message in messages:
        check_event(message)
    assert [(m["seq"], m["event"]["type"]) for m in messages] == [
        (2, "transcript"), (3, "caller.idle"), (4, "caller.idle")]
    first, second = (m["event"] for m in messages[1:])
    assert {k: first[k] for k in ("ms", "agent", "item_id", "idle_prompts")} == {
        "ms": 8000, "agent": "authentication", "item_id": "item_s1", "idle_prompts": 1}
    assert (second["ms"], second["agent"], second["idle_prompts"]) == (8020, "returns", 2)

    call.refresh_from_db()
    assert (call.idle_prompts, call.last_seq) == (2, 4)
    logged = list(CallEvent.objects.filter(call=call).order_by("seq").values_list("seq", "type", "event"))
    assert [(seq, kind) for seq, kind, _ in logged] == [
        (1, "call_started"), (2, "transcript"), (3, "caller.idle"), (4, "caller.idle")]
    assert logged[2][2] == first and logged[3][2] == second  # the log holds the event as published

    assert "caller.idle" in DASHBOARD_CHANGES
    assert [(m["type"], m["change"], m["seq"], m["call"]["idle_prompts"]) for m in changes] == [
        (DASHBOARD_CALL, "caller.idle", 3, 1), (DASHBOARD_CALL, "caller.idle", 4, 2)]
    assert call.dashboard_row()["idle_prompts"] == 2


def test_a_rolled_back_idle_timeout_is_neither_counted_nor_published(listen: Any) -> None:
    from django.db import transaction

    call = actions.do_start_call(channel=Call.Channel.BROWSER, spec=SPEC)
    listener = listen(call.pk)
    with pytest.raises(RuntimeError), transaction.atomic():
        actions.do_record_caller_idle(call.pk, ms=8000, agent="authentication")
        raise RuntimeError("rollback")
    assert listener.drain() == []
    call.refresh_from_db()
    assert (call.idle_prompts, call.last_seq) == (0, 1)
    assert not CallEvent.objects.filter(call=call, type="caller.idle").exists()


def test_the_schema_of_caller_idle() -> None:
    event = {"type": "caller.idle", "at": "x", "ms": 8000, "agent": "a", "item_id": "i", "idle_prompts": 1}
    check_event({"type": "call.event", "call_id": 1, "seq": 2, "event": event})
    with pytest.raises(EventSchemaError, match="missing idle_prompts"):
        check_event({"type": "call.event", "call_id": 1, "seq": 2,
                     "event": {k: v for k, v in event.items() if k != "idle_prompts"}})
    with pytest.raises(EventSchemaError, match="ms has type str"):
        check_event({"type": "call.event", "call_id": 1, "seq": 2, "event": {**event, "ms": "8000"}})
