"""The OpenAI Agents SDK's realtime runner (openai-agents, unchanged) against the server: a function
tool, a handoff between two agents, audio input with server VAD, an interrupt; and the one setup
that trips it (a URL without ``?model=``) answered with an error that names the fix.

The SDK's package is called ``agents``, like this project's app, so it runs in its own process
(`agents_sdk_client.py`, with ``python -P``) while the test peer runs here. One process runs every
scenario (each its own session, in order): starting the SDK is the slow part."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from realtime.server import function_call, response
from realtime.server.testing import running_server

CLIENT = Path(__file__).with_name("agents_sdk_client.py")
SDK_MODEL = "gpt-realtime-2.1"  # what openai-agents 0.24 puts in its session.update


def _by_scenario(lines: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    current = ""
    for line in lines:
        if line["kind"] == "scenario":
            current = line["name"]
            out[current] = []
        else:
            out[current].append(line)
    return out


def _kinds(lines: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["kind"] == kind]


async def test_the_agents_sdk_realtime_runner_unchanged(tmp_path: Path) -> None:
    async with running_server(max_session_seconds=120.0) as server:
        server.script(
            # tools: a function tool, then a handoff, then the billing agent answers
            response(function_call("lookup_order", {"order_id": "A1"})),
            response(function_call("transfer_to_billing", {})),
            response("Billing here, how can I help?"),
            # audio: the answer to the caller's spoken turn
            response("It shipped on Monday."),
            # interrupt: a long answer the caller cuts off
            response("one two three four five six seven eight nine ten eleven twelve", delay_ms=60, ms_per_word=200),
        )
        server.add_transcripts("where is my order")
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "OPENAI_API_KEY", "OPENAI_BASE_URL")}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-P", str(CLIENT), f"{server.url}?model={SDK_MODEL}", server.api_key or "",
            "tools", "audio", "interrupt", "no_model",
            cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 150)
        assert proc.returncode == 0, err.decode()[-3000:]
        assert not server.validation_failures, server.validation_failures
        tools_session, audio_session, interrupt_session, no_model_session = server.sessions
    seen = _by_scenario([json.loads(line) for line in out.decode().splitlines() if line.startswith("{")])

    # a function tool and a handoff between two agents
    tools = seen["tools"]
    assert _kinds(tools, "tool_start")[0] == {"kind": "tool_start", "tool": "lookup_order", "arguments": '{"order_id": "A1"}'}
    assert _kinds(tools, "tool_end")[0]["output"] == "order A1 shipped on Monday"
    assert _kinds(tools, "handoff") == [{"kind": "handoff", "source": "Front", "target": "Billing"}]
    assert _kinds(tools, "response_done")[-1]["texts"] == ["Billing here, how can I help?"]
    outputs = [i.data for i in tools_session.items if i.data["type"] == "function_call_output"]
    assert outputs[0]["output"] == "order A1 shipped on Monday"
    assert tools_session.config["instructions"] == "You are the billing desk."  # the handoff's update applied
    assert tools_session.config["model"] == SDK_MODEL
    assert not tools_session.errors, tools_session.errors

    # audio input, turns found by server VAD
    types = [e["type"] for e in audio_session.server_events]
    assert "input_audio_buffer.speech_started" in types and "input_audio_buffer.speech_stopped" in types
    user = [i for i in audio_session.items if i.data.get("role") == "user"]
    assert user and user[0].audio_ms(0) >= 600
    assert user[0].data["content"][0]["transcript"] == "where is my order"
    assert _kinds(seen["audio"], "response_done")[-1]["texts"] == ["It shipped on Monday."]
    assert _kinds(seen["audio"], "audio_received")[0]["audio_bytes"] > 0
    assert not audio_session.errors, audio_session.errors

    # an interrupt: the SDK cancels, the response ends cancelled
    assert _kinds(seen["interrupt"], "interrupt_sent")
    assert "response.cancel" in [e["type"] for e in interrupt_session.client_events]
    done = _kinds(seen["interrupt"], "response_done")[-1]
    assert done["status"] == "cancelled"
    assert len((done["texts"][0] or "").split()) < 12
    assert not interrupt_session.errors, interrupt_session.errors

    # no ?model= in the URL: the SDK's model in session.update is refused, and the error says how to fix it
    message = _kinds(seen["no_model"], "error")[0]["error"]
    assert "cannot be changed" in message
    assert f"?model={SDK_MODEL}" in message
    assert no_model_session.errors[0]["param"] == "session.model"
