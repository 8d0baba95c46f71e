"""A client written with the OpenAI Agents SDK's realtime runner, unchanged, against a server URL.

Run as ``python -P agents_sdk_client.py URL API_KEY SCENARIO...`` (each scenario its own session,
in order; ``no_model`` connects to the URL without its query): ``-P`` keeps the repository off
``sys.path``, because the SDK's top-level package is named ``agents`` like the project's own app.
Prints one JSON object per line: what the SDK's session reported. Imports nothing of the project.
"""

from __future__ import annotations

import asyncio
import json
import math
import struct
import sys
from typing import Any

from agents.realtime import RealtimeAgent, RealtimeRunner

from agents import function_tool


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


@function_tool
def lookup_order(order_id: str) -> str:
    """Look up an order by its id."""
    return f"order {order_id} shipped on Monday"


def tone(ms: int, amplitude: float) -> bytes:
    samples = 24 * ms
    return b"".join(struct.pack("<h", int(amplitude * 32767 * math.sin(2 * math.pi * 220 * i / 24000))) for i in range(samples))


async def run(scenario: str, url: str, api_key: str) -> None:
    billing = RealtimeAgent(name="Billing", instructions="You are the billing desk.")
    front = RealtimeAgent(name="Front", instructions="You are the front desk.", tools=[lookup_order], handoffs=[billing])
    settings: dict[str, Any] = {"output_modalities": ["audio"]}
    if scenario == "audio":
        settings["turn_detection"] = {"type": "server_vad", "silence_duration_ms": 300, "create_response": True}
    else:
        settings["turn_detection"] = None
    runner = RealtimeRunner(starting_agent=front, config={"model_settings": settings})  # type: ignore[typeddict-item]
    session = await runner.run(model_config={"url": url, "api_key": api_key})
    async with session:
        if scenario == "audio":
            # speech then silence, sent faster than real time in 100 ms chunks; the server's VAD ends the turn
            sound = tone(600, 0.3) + bytes(2 * 24 * 800)
            for i in range(0, len(sound), 4800):
                await session.send_audio(sound[i : i + 4800])
        else:
            await session.send_message("Where is my order A1? Then put me through to billing.")
        audio_bytes = 0
        interrupted = False
        async for event in session:
            if event.type == "tool_start":
                say(kind="tool_start", tool=event.tool.name, arguments=event.arguments)
            elif event.type == "tool_end":
                say(kind="tool_end", tool=event.tool.name, output=str(event.output))
            elif event.type == "handoff":
                say(kind="handoff", source=event.from_agent.name, target=event.to_agent.name)
            elif event.type == "audio":
                audio_bytes += len(event.audio.data)
                if scenario == "interrupt" and not interrupted and audio_bytes >= 4800:
                    interrupted = True
                    await session.interrupt()
                    say(kind="interrupt_sent", audio_bytes=audio_bytes)
            elif event.type == "audio_interrupted":
                say(kind="audio_interrupted")
            elif event.type == "error":
                say(kind="error", error=str(event.error))
                if scenario == "no_model":
                    return
            elif event.type == "raw_model_event":
                data = event.data
                if data.type == "raw_server_event":
                    raw = data.data
                    if raw.get("type") == "response.done":
                        response = raw["response"]
                        texts = [c.get("transcript") or c.get("text") for o in response.get("output", [])
                                 for c in o.get("content", []) or []]
                        say(kind="response_done", status=response["status"], texts=texts)
                        if scenario == "interrupt" and interrupted:
                            return
                        if scenario == "audio" and any(texts):
                            say(kind="audio_received", audio_bytes=audio_bytes)
                            return
                        if scenario == "tools" and any(t and "billing" in t.lower() for t in texts):
                            return


async def run_all(url: str, api_key: str, scenarios: list[str]) -> None:
    for scenario in scenarios:
        say(kind="scenario", name=scenario)
        await asyncio.wait_for(run(scenario, url.split("?")[0] if scenario == "no_model" else url, api_key), 30)


def main() -> None:
    url, api_key, *scenarios = sys.argv[1:]
    asyncio.run(run_all(url, api_key, scenarios))


if __name__ == "__main__":
    main()
