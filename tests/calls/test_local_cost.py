"""Offline usage is priced at 0 and marked "local" wherever costs are shown; a failover call shows
both parts: the priced one and the local one. The latency shown says its silence window."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from calls import actions
from calls.models import LOCAL_SUFFIX, Call

from .test_actions_publish import SPEC

TOKENS = {"input_tokens": 100, "output_tokens": 50}


@pytest.fixture
def call(db: Any) -> Call:
    return actions.do_start_call(channel=Call.Channel.BROWSER, spec=SPEC, caller_id="operator")


def test_an_all_local_call_costs_nothing_and_says_local(call: Call) -> None:
    actions.do_record_usage(call.pk, agent="returns" + LOCAL_SUFFIX, usage=TOKENS, cost=Decimal(0))
    call.refresh_from_db()
    assert call.cost == 0 and call.cost_label == "local"
    row = call.dashboard_row()
    assert row["local"] is True and row["cost"] == "0.000000"


def test_a_failover_call_shows_both_parts(call: Call) -> None:
    actions.do_record_usage(call.pk, agent="returns", usage=TOKENS, cost=Decimal("0.0123"))
    actions.do_record_usage(call.pk, agent="returns" + LOCAL_SUFFIX, usage=TOKENS, cost=Decimal(0))
    call.refresh_from_db()
    assert call.cost_label == "$0.0123 + local"
    assert set(call.usage) == {"returns", "returns" + LOCAL_SUFFIX}


def test_a_priced_call_is_not_marked_local(call: Call) -> None:
    actions.do_record_usage(call.pk, agent="returns", usage=TOKENS, cost=Decimal("0.5"))
    call.refresh_from_db()
    assert call.cost_label == "$0.5000" and call.dashboard_row()["local"] is False


def test_the_silence_window_is_shown_apart(call: Call) -> None:
    call.spec = {"root_agent": "a", "agents": {"a": {"session": {"audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 650}}}}}}}
    assert call.silence_window_ms == 650
    call.spec = {"root_agent": "a", "agents": {"a": {"session": {"audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}}}}}
    assert call.silence_window_ms is None
