"""Usage and cost: every response.done summed per call and per agent, priced by model class."""

from __future__ import annotations

import pytest

from realtime import events as ev
from realtime.config import DEFAULT_PRICES
from realtime.server import RealtimeServer, function_call, response
from realtime.usage import cost_of, price_class, tokens_from_usage

from .factories import make_session


def test_price_classes_by_prefix() -> None:
    assert price_class("gpt-realtime-mini-2025-12-15", DEFAULT_PRICES) == "gpt-realtime-mini"
    assert price_class("gpt-realtime-2", DEFAULT_PRICES) == "gpt-realtime"
    assert price_class("gpt-realtime", DEFAULT_PRICES) == "gpt-realtime"
    assert price_class("whisper-1", DEFAULT_PRICES) is None


def test_cost_per_million_tokens() -> None:
    usage = {
        "input_tokens": 1_200_000, "output_tokens": 1_000_000,
        "input_token_details": {
            "audio_tokens": 1_000_000, "text_tokens": 200_000,
            "cached_tokens": 500_000, "cached_tokens_details": {"audio_tokens": 400_000, "text_tokens": 100_000},
        },
        "output_token_details": {"audio_tokens": 1_000_000, "text_tokens": 0},
    }
    tokens = tokens_from_usage(usage)
    assert tokens["audio_in"] == 600_000 and tokens["audio_in_cached"] == 400_000
    # 0.6*32 + 0.4*0.40 + 1*64 + 0.1*4 + 0.1*0.40
    assert cost_of(tokens, "gpt-realtime-2", DEFAULT_PRICES) == pytest.approx(19.2 + 0.16 + 64 + 0.4 + 0.04)


async def test_usage_summed_per_call_and_agent(server: RealtimeServer) -> None:
    server.script(
        response("Hello there."),
        response(function_call("transfer_to_billing", {"reason": "r", "conversation_summary": "s"})),
        response("Billing here."),
    )
    session, rec = make_session(server)
    await session.start()
    await session.send_text("billing please")
    await rec.wait_for(lambda e: isinstance(e, ev.TranscriptDone) and e.text == "Billing here.")
    await rec.wait_for(lambda e: isinstance(e, ev.Usage) and e.agent == "billing")
    usages = rec.of(ev.Usage)
    done = rec.protocol("server", "response.done")
    assert len(usages) == len(done) == 3
    reported = sum(d["response"]["usage"]["input_tokens"] for d in done)
    assert usages[-1].totals["input_tokens"] == reported == session.usage.totals["input_tokens"]
    assert [u.agent for u in usages] == ["front", "front", "billing"]
    assert set(session.usage.per_agent) == {"front", "billing"}
    expected = sum(cost_of(tokens_from_usage(d["response"]["usage"]), "gpt-realtime-2", DEFAULT_PRICES) for d in done)
    assert usages[-1].total_cost_usd == pytest.approx(expected) and expected > 0
    assert sum(session.usage.per_agent_cost_usd.values()) == pytest.approx(expected)
    assert usages[-1].cost_per_minute_usd > 0
    await session.close()
