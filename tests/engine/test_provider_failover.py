"""A scenario that names the offline engine as its failover provider keeps answering when the
upstream cannot be reached; one that does not ends cleanly on the fallback path."""

from __future__ import annotations

import socket

from realtime import events as ev
from realtime.server import RealtimeServer, response
from realtime.session import CallSession
from realtime.tools import ToolRunner

from .factories import Recorder, config_for, demo_handler, retail_spec


def unreachable_base_url() -> str:
    """A loopback port nobody listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


async def start_failing_over(server: RealtimeServer) -> tuple[Recorder, CallSession]:
    """A call whose primary upstream is unreachable and whose failover is ``server`` (offline), started."""
    server.script(response("Hello from the local engine."))
    spec = retail_spec().model_copy(update={"failover_provider": "offline"})
    config = config_for(server, base_url=unreachable_base_url(), api_key="sk-primary",
                        failover_base_url=server.base_url, failover_api_key=server.api_key or "sk-test")
    rec = Recorder()
    session = CallSession(spec, config, ToolRunner(python_handler=demo_handler), rec)
    await session.start()
    return rec, session


async def test_unreachable_upstream_fails_over_to_the_offline_provider(server: RealtimeServer) -> None:
    rec, session = await start_failing_over(server)
    greeting = await rec.wait_type(ev.TranscriptDone, role="assistant")
    assert greeting.text == "Hello from the local engine."
    failover = rec.of(ev.ProviderFailover)
    assert len(failover) == 1 and failover[0].provider == "offline"
    assert "Connect" in failover[0].reason or "refused" in failover[0].reason.lower()
    assert session.provider == "offline"
    assert len(server.sessions) == 1
    await session.close("hangup")


async def test_without_a_failover_provider_the_call_ends_on_the_fallback_path(server: RealtimeServer) -> None:
    spec = retail_spec()  # failover_provider ""
    config = config_for(server, base_url=unreachable_base_url(), retry_budget=2,
                        failover_base_url=server.base_url)
    rec = Recorder()
    session = CallSession(spec, config, ToolRunner(python_handler=demo_handler), rec)
    await session.start()
    await session.wait_closed()
    assert not rec.of(ev.ProviderFailover)
    assert rec.of(ev.CallEnded)[-1].reason == "session_lost"
    assert rec.of(ev.Escalation)[-1].agent == "human_escalation"
    assert server.sessions == []


async def test_after_failover_moderation_asks_the_failover_provider(server: RealtimeServer) -> None:
    from realtime.spec import Guardrails

    server.script(response("Hello."), response("Whoever packed that parcel is an idiot, sorry."),
                  response("Let me arrange a replacement."))
    spec = retail_spec(guardrails=Guardrails(moderation=True)).model_copy(update={"failover_provider": "offline"})
    config = config_for(server, base_url=unreachable_base_url(), api_key="sk-primary",
                        failover_base_url=server.base_url, failover_api_key=server.api_key or "sk-test")
    rec = Recorder()
    session = CallSession(spec, config, ToolRunner(python_handler=demo_handler), rec)
    await session.start()
    await rec.wait_type(ev.TranscriptDone, role="assistant")
    await session.send_text("my parcel arrived broken")
    trip = await rec.wait_type(ev.GuardrailTripped, timeout=5)
    assert (trip.category, trip.classifier) == ("moderation:harassment", "moderation")
    assert server.moderation_requests  # the checks reached the provider the call is on
    assert not [e for e in rec.of(ev.Error) if e.code == "guardrail_failed"]
    await session.close("hangup")
