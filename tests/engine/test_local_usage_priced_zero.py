"""Usage answered by the local offline engine is counted but priced at 0 and marked local: a call
with no key, and the part of a call after failover to the offline provider."""

from __future__ import annotations

from dataclasses import replace

from realtime import events as ev
from realtime.server import RealtimeServer, response
from realtime.session import CallSession
from realtime.tools import ToolRunner
from realtime.usage import UsageMeter

from .factories import Recorder, config_for, demo_handler, retail_spec
from .test_provider_failover import start_failing_over

USAGE = {"input_tokens": 1000, "output_tokens": 500,
         "input_token_details": {"audio_tokens": 800, "text_tokens": 200},
         "output_token_details": {"audio_tokens": 400, "text_tokens": 100}}


def test_local_usage_is_counted_and_free() -> None:
    meter = UsageMeter({"gpt-realtime": {"audio_in": 32.0, "audio_out": 64.0, "text_in": 4.0, "text_out": 16.0}})
    tokens, cost = meter.add("sales", "gpt-realtime", USAGE, local=True)
    assert cost == 0.0 and tokens["audio_in"] == 800 and meter.cost_usd == 0.0
    _tokens, priced = meter.add("sales", "gpt-realtime", USAGE)
    assert priced > 0 and meter.cost_usd == priced
    assert meter.totals["audio_in"] == 1600


async def test_a_call_without_a_key_is_local(server: RealtimeServer) -> None:
    server.script(response("Hello from the local engine."))
    config = replace(config_for(server), local=True)
    rec = Recorder()
    session = CallSession(retail_spec(), config, ToolRunner(python_handler=demo_handler), rec)
    await session.start()
    usage = await rec.wait_type(ev.Usage)
    assert usage.local and usage.cost_usd == 0.0 and usage.total_cost_usd == 0.0
    await session.close("hangup")


async def test_after_failover_usage_is_local(server: RealtimeServer) -> None:
    rec, session = await start_failing_over(server)
    usage = await rec.wait_type(ev.Usage)
    assert session.provider == "offline"
    assert usage.local and usage.cost_usd == 0.0
    await session.close("hangup")
