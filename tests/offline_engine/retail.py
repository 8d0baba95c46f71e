"""A retail scenario in the demo's shapes (authentication -> returns) with Python tool handlers,
and a driver that talks to a `CallSession` by voice. No Django."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from realtime import events as ev
from realtime.config import EngineConfig
from realtime.session import CallSession
from realtime.spec import AgentSpec, Guardrails, Limits, ScenarioSpec, ToolSpec
from realtime.tools import ToolRunner
from tests.engine.factories import Recorder as EngineRecorder

PHONE = {"type": "string", "description": "The customer's phone number", "pattern": r"^\+?[0-9]{10,15}$"}
ORDER_ID = {"type": "string", "description": "The order ID", "pattern": r"^ORD-\d{5}$"}
TRANSFER_PARAMS = {
    "type": "object",
    "properties": {
        "reason": {"type": "string", "description": "Why the caller is being transferred"},
        "conversation_summary": {"type": "string", "description": "A short summary of the conversation so far"},
    },
    "required": ["reason", "conversation_summary"],
}
SERVER_VAD = {
    "type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500,
    "create_response": True, "interrupt_response": True,
}
AUTH_INSTRUCTIONS = (
    "You are the authentication agent for Acme Retail. Greet the caller with \"Welcome to Acme Retail! "
    "How can I help you today?\" Before helping, verify the customer's identity with their phone number "
    "and date of birth using verify_customer. Then transfer them to the right department."
)
RETURNS_INSTRUCTIONS = (
    "You are the returns agent for Acme Retail. Look up the customer's orders, check the return policy "
    "for the order, then start the return."
)


def fn(name: str, description: str, properties: dict[str, Any], required: list[str]) -> ToolSpec:
    return ToolSpec(
        name=name, description=description, kind="python", handler=name,
        parameters={"type": "object", "properties": properties, "required": required},
    )


def transfer(to: str, description: str) -> ToolSpec:
    return ToolSpec(name=f"transfer_to_{to}", description=description, parameters=TRANSFER_PARAMS, kind="transfer", transfer_to=to)


def _agent(slug: str, instructions: str, tools: tuple[ToolSpec, ...], fmt: str) -> AgentSpec:
    session = {
        "type": "realtime",
        "instructions": instructions,
        "output_modalities": ["audio"],
        "audio": {
            "input": {"format": {"type": fmt}, "turn_detection": SERVER_VAD, "transcription": {"model": "gpt-4o-mini-transcribe", "language": "en"}},
            "output": {"format": {"type": fmt}, "voice": "marin"},
        },
        "tools": [t.function_tool() for t in tools],
        "tool_choice": "auto",
    }
    return AgentSpec(
        slug=slug, name=slug.title(), kind="realtime", instructions=instructions, handoff_description=f"{slug} desk",
        model="", voice="marin", tool_choice="auto", tools=tools, session=session,
    )


def retail_spec(fmt: str = "audio/pcm") -> ScenarioSpec:
    auth_tools = (
        fn("verify_customer", "Verify the customer's identity using their phone number and date of birth.",
           {"phone_number": PHONE, "date_of_birth": {"type": "string", "format": "date", "description": "The customer's date of birth"}},
           ["phone_number", "date_of_birth"]),
        transfer("returns", "Transfer the caller to the returns agent for returns and refunds."),
        transfer("sales", "Transfer the caller to the sales agent for new purchases, products and discounts."),
    )
    returns_tools = (
        fn("lookup_orders", "Look up the customer's recent orders by phone number.", {"phone_number": PHONE}, ["phone_number"]),
        fn("check_return_policy", "Check whether an order is eligible for return under the return policy.", {"order_id": ORDER_ID}, ["order_id"]),
        fn("start_return", "Start a return for an order.",
           {"order_id": ORDER_ID, "reason": {"type": "string", "enum": ["damaged", "wrong_item", "no_longer_needed", "other"], "description": "The reason for the return"}},
           ["order_id", "reason"]),
    )
    sales_tools = (
        fn("list_discounted_products", "List products that are currently discounted in a category.",
           {"category": {"type": "string", "description": "The product category"}}, ["category"]),
    )
    agents = {
        "authentication": _agent("authentication", AUTH_INSTRUCTIONS, auth_tools, fmt),
        "returns": _agent("returns", RETURNS_INSTRUCTIONS, returns_tools, fmt),
        "sales": _agent("sales", "You are the sales agent for Acme Retail. Help callers find deals.", sales_tools, fmt),
    }
    return ScenarioSpec(
        slug="retail", name="Retail", root_agent="authentication", agents=agents, supervisor_agent=None,
        fallback_agent=None, limits=Limits(max_handoff_depth=4, max_session_seconds=3600, summarize_every_turns=0),
        guardrails=Guardrails(),
    )


CUSTOMER = {"phone_number": "5551234567", "date_of_birth": "1985-03-03"}


async def handler(key: str, args: dict[str, Any]) -> Any:
    """The Python tools of the scenario (demo-like data)."""
    if key == "verify_customer":
        ok = args.get("phone_number") == CUSTOMER["phone_number"] and args.get("date_of_birth") == CUSTOMER["date_of_birth"]
        return {"verified": ok, "customer_name": "Jordan Lee"} if ok else {"verified": False}
    if key == "lookup_orders":
        return {"orders": [
            {"order_id": "ORD-12345", "item": "running shoes", "status": "delivered"},
            {"order_id": "ORD-54321", "item": "blue rain jacket", "status": "delivered"},
        ]}
    if key == "check_return_policy":
        return {"eligible": True, "days_left": 20}
    if key == "start_return":
        return {"return_id": "RET-777", "status": "started"}
    if key == "list_discounted_products":
        return {"products": [{"name": "Trail jacket", "price": 79.0}]}
    raise KeyError(key)


class Recorder(EngineRecorder):
    """The engine tests' recorder, plus the story of a call."""

    def story(self) -> list[tuple[Any, ...]]:
        """What happened, without ids or times: transcripts, tool calls, handoffs, in order."""
        out: list[tuple[Any, ...]] = []
        for e in self.events:
            if isinstance(e, ev.TranscriptDone):
                out.append(("transcript", e.role, e.text))
            elif isinstance(e, ev.ToolStarted):
                out.append(("tool", e.name, e.arguments))
            elif isinstance(e, ev.Handoff):
                out.append(("handoff", e.from_agent, e.to_agent))
        return out


async def settle(rec: Recorder, busy: Any, quiet_s: float = 0.6, timeout: float = 60.0) -> None:
    """Wait until nothing has happened for ``quiet_s`` and ``busy()`` is false (the server has no
    response running and no transcription in flight)."""

    async def loop() -> None:
        while True:
            rec.changed.clear()
            try:
                await asyncio.wait_for(rec.changed.wait(), quiet_s)
            except TimeoutError:
                if not busy():
                    return

    await asyncio.wait_for(loop(), timeout)


@dataclass
class RetailCall:
    """A CallSession on the retail spec, started against the offline server, and its server session."""

    rec: Recorder
    session: CallSession
    upstream: Any

    def busy(self) -> bool:
        """The server session is answering or transcribing."""
        return self.upstream.active is not None or bool(self.upstream._transcribing)


async def start_retail_call(server: Any, fmt: str) -> RetailCall:
    rec = Recorder()
    config = EngineConfig(base_url=server.base_url, api_key=server.api_key or "sk-test", model="gpt-realtime-2",
                          audio_format=fmt, tool_timeout_s=5.0)
    session = CallSession(retail_spec(fmt), config, tools=ToolRunner(handler, {}), emit=rec)
    count = len(server.sessions)
    await session.start()
    return RetailCall(rec, session, await server.wait_for_session(count + 1))
