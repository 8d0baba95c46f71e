"""The chat-supervisor: a text agent the realtime front agent consults for hard turns.

The front agent's ``ask_supervisor`` built-in lands here. The supervisor gets the conversation's
messages and the front agent's context through the Responses API (the ``openai`` package, same
base URL as the Realtime endpoint), runs its own tool loop with our ``ToolRunner`` (one call at a
time: ``parallel_tool_calls=False``) and returns the text the front agent should say. Past the
timeout it returns a safe holding line instead of leaving the caller in silence.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openai import AsyncOpenAI

from realtime.spec import AgentSpec
from realtime.tools import BuiltinHandler, ToolOutcome, ToolRunner, parse_arguments

ToolStartedHook = Callable[[str, str, dict[str, Any] | str], Awaitable[None]]
ToolFinishedHook = Callable[[str, str, dict[str, Any] | str, ToolOutcome], Awaitable[None]]


@dataclass
class SupervisorAnswer:
    text: str
    timed_out: bool = False
    error: str | None = None
    tool_calls: list[str] = field(default_factory=list)
    duration_ms: float = 0.0


class Supervisor:
    def __init__(
        self,
        client: AsyncOpenAI,
        agent: AgentSpec,
        runner: ToolRunner,
        *,
        model: str,
        timeout_s: float,
        tool_timeout_s: float,
        holding_line: str,
        max_tool_rounds: int = 5,
        builtins: Mapping[str, BuiltinHandler] | None = None,
        on_tool_started: ToolStartedHook | None = None,
        on_tool_finished: ToolFinishedHook | None = None,
    ) -> None:
        self.client = client
        self.agent = agent
        self.runner = runner
        self.model = model
        self.timeout_s = timeout_s
        self.tool_timeout_s = tool_timeout_s
        self.holding_line = holding_line
        self.max_tool_rounds = max_tool_rounds
        self.builtins = builtins or {}
        self.on_tool_started = on_tool_started
        self.on_tool_finished = on_tool_finished

    async def ask(self, messages: Sequence[Mapping[str, str]], context: str) -> SupervisorAnswer:
        """The supervisor's next response for the front agent; never raises (except cancel)."""
        started = time.perf_counter()
        answer = SupervisorAnswer(text=self.holding_line)
        try:
            await asyncio.wait_for(self._run(messages, context, answer), self.timeout_s)
        except TimeoutError:
            answer.text, answer.timed_out = self.holding_line, True
        except Exception as exc:  # noqa: BLE001 — an API failure must not leave the caller in silence
            answer.text, answer.error = self.holding_line, f"{type(exc).__name__}: {exc}"
        answer.duration_ms = round((time.perf_counter() - started) * 1000.0, 3)
        return answer

    async def _run(self, messages: Sequence[Mapping[str, str]], context: str, answer: SupervisorAnswer) -> None:
        items: list[Any] = [
            {"role": m["role"], "content": m["content"]}
            for m in messages
            if m.get("content") and m.get("role") in ("user", "assistant")
        ]
        items.append({
            "role": "developer",
            "content": "The front-line voice agent asks for your next response. "
            f"Relevant context and the caller's last message: {context}",
        })
        tools = [t.responses_tool() for t in self.agent.tools]
        for _ in range(self.max_tool_rounds + 1):
            kwargs: dict[str, Any] = {"model": self.model, "instructions": self.agent.instructions, "input": items}
            if tools:
                kwargs["tools"] = tools
                kwargs["parallel_tool_calls"] = False
            response = await self.client.responses.create(**kwargs)
            calls = [o for o in response.output if getattr(o, "type", "") == "function_call"]
            if not calls:
                text = response.output_text.strip()
                answer.text = text or self.holding_line
                return
            for call in calls[:1]:  # no parallel calls: one tool per round
                items.append({
                    "type": "function_call",
                    "call_id": call.call_id,
                    "name": call.name,
                    "arguments": call.arguments,
                })
                output = await self._run_tool(call.name, call.call_id, call.arguments)
                answer.tool_calls.append(call.name)
                items.append({"type": "function_call_output", "call_id": call.call_id, "output": output})
        answer.text = self.holding_line

    async def _run_tool(self, name: str, call_id: str, raw_arguments: str) -> str:
        arguments, error = parse_arguments(raw_arguments)
        shown: dict[str, Any] | str = arguments if arguments is not None else raw_arguments
        if self.on_tool_started:
            await self.on_tool_started(name, call_id, shown)
        tool = self.agent.tool(name)
        if error is not None or arguments is None:
            outcome = ToolOutcome(error=error or "invalid arguments")
        elif tool is None or tool.kind == "transfer":
            outcome = ToolOutcome(error=f"the supervisor has no tool named {name}")
        else:
            outcome = await self.runner.run(tool, arguments, timeout_s=self.tool_timeout_s, builtins=self.builtins)
        if self.on_tool_finished:
            await self.on_tool_finished(name, call_id, shown, outcome)
        return outcome.output_text()


def holding_output(text: str) -> str:
    return json.dumps({"next_response": text}, ensure_ascii=False)
