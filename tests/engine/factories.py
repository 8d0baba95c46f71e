"""Scenario specs and a recording harness for engine tests (no Django)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from realtime import events as ev
from realtime.config import EngineConfig
from realtime.server import RealtimeServer
from realtime.session import CallSession
from realtime.spec import AgentSpec, Guardrails, Limits, ScenarioSpec, ToolSpec, WebhookSpec
from realtime.tools import ToolRunner, ToolSecret

TRANSFER_PARAMS = {
    "type": "object",
    "properties": {
        "reason": {"type": "string"},
        "conversation_summary": {"type": "string"},
    },
    "required": ["reason", "conversation_summary"],
    "additionalProperties": False,
}
ORDER_PARAMS = {
    "type": "object",
    "properties": {"order_id": {"type": "integer", "minimum": 1}},
    "required": ["order_id"],
    "additionalProperties": False,
}
EMPTY_PARAMS: dict[str, Any] = {"type": "object", "properties": {}}


def python_tool(name: str, handler: str = "", params: dict[str, Any] | None = None, **kw: Any) -> ToolSpec:
    return ToolSpec(name=name, description=f"{name} tool", parameters=params or EMPTY_PARAMS, kind="python", handler=handler or name, **kw)


def transfer(to: str) -> ToolSpec:
    return ToolSpec(
        name=f"transfer_to_{to}", description=f"Transfer to {to}", parameters=TRANSFER_PARAMS, kind="transfer", transfer_to=to
    )


def builtin(name: str, kind: str, params: dict[str, Any] | None = None) -> ToolSpec:
    return ToolSpec(name=name, description=name, parameters=params or EMPTY_PARAMS, kind="builtin", builtin=kind)


def webhook_tool(name: str, url: str, *, secret_name: str = "", timeout: float = 2.0) -> ToolSpec:
    return ToolSpec(
        name=name, description=name, parameters=EMPTY_PARAMS, kind="webhook",
        webhook=WebhookSpec(url=url, timeout_seconds=timeout, secret_header="X-Api-Key" if secret_name else "", secret_name=secret_name),
    )


def agent(
    slug: str,
    tools: tuple[ToolSpec, ...] = (),
    *,
    voice: str = "marin",
    modality: str = "text",
    tool_choice: str = "auto",
    kind: str = "realtime",
    turn_detection: dict[str, Any] | None = None,
) -> AgentSpec:
    instructions = f"You are the {slug} agent."
    session: dict[str, Any] = {}
    if kind == "realtime":
        session = {
            "type": "realtime",
            "instructions": instructions,
            "output_modalities": [modality],
            "audio": {
                "input": {"turn_detection": turn_detection, "transcription": {"model": "gpt-4o-mini-transcribe"}},
                "output": {"voice": voice},
            },
            "tools": [t.function_tool() for t in tools],
            "tool_choice": tool_choice,
        }
    return AgentSpec(
        slug=slug, name=slug.replace("_", " ").title(), kind=kind,  # type: ignore[arg-type]
        instructions=instructions, handoff_description=f"{slug} desk", model="" if kind == "realtime" else "gpt-4.1",
        voice=voice, tool_choice=tool_choice, tools=tools, session=session,
    )


SERVER_VAD = {
    "type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 100, "silence_duration_ms": 200,
    "create_response": True, "interrupt_response": True,
}


def retail_spec(
    *,
    modality: str = "text",
    max_depth: int = 6,
    summarize_every: int = 0,
    max_session_seconds: int = 3600,
    guardrails: Guardrails | None = None,
    front_tool_choice: str = "auto",
    turn_detection: dict[str, Any] | None = None,
    extra_front_tools: tuple[ToolSpec, ...] = (),
) -> ScenarioSpec:
    front_tools = (
        python_tool("lookup_order", params=ORDER_PARAMS),
        python_tool("slow_lookup"),
        python_tool("broken_lookup"),
        python_tool("issue_refund", params=ORDER_PARAMS, needs_approval=True),
        builtin("ask_supervisor", "ask_supervisor", {
            "type": "object",
            "properties": {"relevant_context_and_last_user_message": {"type": "string"}},
            "required": ["relevant_context_and_last_user_message"],
        }),
        builtin("escalate", "escalate", {"type": "object", "properties": {"reason": {"type": "string"}}}),
        builtin("end_call", "end_call"),
        transfer("billing"),
        transfer("ghost"),  # the compiled edge names an agent that is not in the spec
        *extra_front_tools,
    )
    billing_tools = (python_tool("billing_balance"), transfer("front"))
    agents = {
        "front": agent("front", front_tools, modality=modality, tool_choice=front_tool_choice, turn_detection=turn_detection),
        "billing": agent("billing", billing_tools, voice="cedar", modality=modality, turn_detection=turn_detection),
        "human_escalation": agent("human_escalation", (transfer("front"),), modality=modality, turn_detection=turn_detection),
        "supervisor": agent("supervisor", (python_tool("check_policy", params=ORDER_PARAMS),), kind="supervisor"),
    }
    return ScenarioSpec(
        slug="retail", name="Retail", root_agent="front", agents=agents,
        supervisor_agent="supervisor", fallback_agent="human_escalation",
        limits=Limits(max_handoff_depth=max_depth, max_session_seconds=max_session_seconds, summarize_every_turns=summarize_every),
        guardrails=guardrails or Guardrails(),
    )


async def demo_handler(key: str, args: dict[str, Any]) -> Any:
    """The python handlers the test scenarios name."""
    if key == "lookup_order":
        return {"order_id": args["order_id"], "status": "shipped"}
    if key == "slow_lookup":
        await asyncio.sleep(5)
        return {"status": "late"}
    if key == "broken_lookup":
        raise RuntimeError("inventory database unavailable")
    if key == "issue_refund":
        return {"refunded": args["order_id"]}
    if key == "billing_balance":
        return {"balance": "12.50"}
    if key == "check_policy":
        return {"policy": "refunds within 30 days"}
    raise KeyError(key)


@dataclass
class Recorder:
    """Collects emitted events; lets a test wait for one."""

    events: list[ev.EngineEvent] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, event: ev.EngineEvent) -> None:
        event.to_dict()  # every event must serialise
        self.events.append(event)
        self.changed.set()

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait_for(self, predicate: Callable[[ev.EngineEvent], bool], timeout: float = 3.0, after: int = 0) -> Any:
        async def loop() -> Any:
            index = after
            while True:
                while index < len(self.events):
                    event = self.events[index]
                    index += 1
                    if predicate(event):
                        return event
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(loop(), timeout)

    async def wait_type(self, kind: type[Any], timeout: float = 3.0, after: int = 0, **match: Any) -> Any:
        return await self.wait_for(
            lambda e: isinstance(e, kind) and all(getattr(e, k) == v for k, v in match.items()), timeout, after
        )

    def protocol(self, direction: str, event_type: str) -> list[dict[str, Any]]:
        return [
            e.payload for e in self.events
            if isinstance(e, ev.ProtocolEvent) and e.direction == direction and e.payload.get("type") == event_type
        ]


def config_for(server: RealtimeServer, **kw: Any) -> EngineConfig:
    base = EngineConfig(
        base_url=server.base_url, api_key=server.api_key or "sk-test", model="gpt-realtime-2",
        tool_timeout_s=0.5, approval_timeout_s=0.5, supervisor_timeout_s=1.0,
        retry_backoff_s=0.05, retry_backoff_max_s=0.2, connect_timeout_s=2.0,
    )
    return replace(base, **kw)


def make_session(
    server: RealtimeServer,
    spec: ScenarioSpec | None = None,
    *,
    handler: Callable[[str, dict[str, Any]], Awaitable[Any]] = demo_handler,
    secrets: dict[str, ToolSecret] | None = None,
    **config: Any,
) -> tuple[CallSession, Recorder]:
    recorder = Recorder()
    session = CallSession(
        spec or retail_spec(),
        config_for(server, **config),
        tools=ToolRunner(handler, secrets or {}),
        emit=recorder,
    )
    return session, recorder
