"""Tool dispatch: the model's function calls run, approved where the tool needs it, and answered.

A function call is run once (its arguments can arrive through two events); a transfer goes to
``Handoffs``, everything else to the ``ToolRunner`` with the session's builtins (escalate,
end_call, ask_supervisor). A tool that needs approval waits for ``resolve_approval`` up to the
approval timeout. The output goes back as the call's function_call_output, or as a system item
when the session was recreated meanwhile (the call item is gone), and a response is asked for.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

from realtime import events as ev
from realtime.config import DEFAULT_SUPERVISOR_MODEL
from realtime.spec import AgentSpec, ToolSpec
from realtime.supervisor import Supervisor
from realtime.tools import BuiltinHandler, ToolOutcome, parse_arguments

from .util import ms_since

if TYPE_CHECKING:
    from .core import CallSession

Approval = tuple[bool, str | None]


class ToolDispatch:
    def __init__(self, session: CallSession) -> None:
        self.s = session
        self.known_calls: set[str] = set()
        """Function calls the open session's conversation holds."""
        self._handled: set[str] = set()
        self._approvals: dict[str, asyncio.Future[Approval]] = {}

    def on_call_item(self, call_id: str) -> None:
        self.known_calls.add(call_id)

    def on_function_call(self, name: str, call_id: str, arguments: str) -> None:
        if not call_id or call_id in self._handled:
            return
        self._handled.add(call_id)
        self.known_calls.add(call_id)
        self.s._spawn(self.run_function_call(name, call_id, arguments, self.s.current_agent))

    async def run_function_call(self, name: str, call_id: str, raw_arguments: str, agent_slug: str) -> None:
        s = self.s
        agent = s.spec.agent(agent_slug)
        tool = agent.tool(name)
        arguments, parse_error = parse_arguments(raw_arguments)
        shown: dict[str, Any] | str = arguments if arguments is not None else raw_arguments
        await s._emit(ev.ToolStarted(name=name, call_id=call_id, arguments=shown, agent=agent_slug))
        approved_by: str | None = None
        if tool is None:
            outcome = ToolOutcome(error=f"the tool {name} is not available to the {agent.name} agent; refused")
        elif parse_error is not None or arguments is None:
            outcome = ToolOutcome(error=parse_error or "invalid arguments")
        elif tool.kind == "transfer":
            await s.handoffs.transfer(tool, arguments, call_id, agent)
            return
        else:
            outcome, approved_by = await self._run_tool(tool, arguments, call_id, agent)
        await s._emit(ev.ToolFinished(
            name=name, call_id=call_id, arguments=shown, agent=agent_slug, result=outcome.result,
            error=outcome.error, duration_ms=outcome.duration_ms, approved_by=approved_by,
            status=outcome.status or "failed",
        ))
        await s._emit(ev.Latency(kind="tool", ms=outcome.duration_ms, turn=s.context.user_turns, detail=name))
        await self.deliver_output(call_id, name, outcome.output_text())

    async def _run_tool(self, tool: ToolSpec, arguments: dict[str, Any], call_id: str,
                        agent: AgentSpec) -> tuple[ToolOutcome, str | None]:
        s = self.s
        approved_by: str | None = None
        if tool.needs_approval:
            invalid = s.tools.validation_error(tool, arguments)
            if invalid is not None:
                return ToolOutcome(error=invalid), None
            started = time.monotonic()
            approved, approved_by = await self._await_approval(tool, arguments, call_id, agent)
            if not approved:
                why = "was denied" + (f" by {approved_by}" if approved_by else " (no approval in time)")
                return ToolOutcome(error=f"the action {tool.name} {why}; tell the caller it cannot be done now",
                                   duration_ms=ms_since(started),
                                   status="denied" if approved_by else "timed_out"), approved_by
        timeout = s.config.tool_timeout_s
        if tool.kind == "builtin" and tool.builtin == "ask_supervisor":
            # The supervisor has its own timeout and answers with a holding line past it.
            timeout = max(timeout, s.config.supervisor_timeout_s + 1.0)
        outcome = await s.tools.run(tool, arguments, timeout_s=timeout, builtins=self._builtins(agent, call_id))
        return outcome, approved_by

    # ------------------------------------------------------------ approvals

    async def _await_approval(self, tool: ToolSpec, arguments: dict[str, Any], call_id: str,
                              agent: AgentSpec) -> Approval:
        s = self.s
        future: asyncio.Future[Approval] = asyncio.get_running_loop().create_future()
        self._approvals[call_id] = future
        await s._emit(ev.ApprovalRequested(name=tool.name, call_id=call_id, arguments=arguments, agent=agent.slug,
                                           timeout_s=s.config.approval_timeout_s))
        try:
            return await asyncio.wait_for(asyncio.shield(future), s.config.approval_timeout_s)
        except TimeoutError:
            return False, None
        finally:
            self._approvals.pop(call_id, None)

    def resolve_approval(self, call_id: str, approved: bool, by: str = "") -> bool:
        future = self._approvals.get(call_id)
        if future is None or future.done():
            return False
        future.set_result((approved, by or None))
        return True

    def cancel_approvals(self) -> None:
        """The call ends: every waiting approval is refused, by no one."""
        for future in self._approvals.values():
            if not future.done():
                future.set_result((False, None))

    # ------------------------------------------------------------ builtins and the supervisor

    def _builtins(self, agent: AgentSpec, call_id: str) -> dict[str, BuiltinHandler]:
        s = self.s

        async def escalate(args: dict[str, Any]) -> Any:
            reason = str(args.get("reason") or "requested by the agent")
            await s._emit(ev.Escalation(reason=reason, source="tool", agent=agent.slug))
            return {"status": "escalated", "note": "A human colleague has been asked to join. Tell the caller."}

        async def end_call(args: dict[str, Any]) -> Any:
            s.responses.end_after_next = str(args.get("reason") or "end_call")
            return {"status": "ending", "note": "Say a short goodbye; the call ends after it."}

        async def ask_supervisor(args: dict[str, Any]) -> Any:
            return await self._ask_supervisor(args, call_id)

        return {"escalate": escalate, "end_call": end_call, "ask_supervisor": ask_supervisor}

    async def _ask_supervisor(self, args: dict[str, Any], call_id: str) -> Any:
        s = self.s
        supervisor_spec = s.spec.supervisor
        if supervisor_spec is None:
            return {"error": "no supervisor is configured for this scenario"}
        context = str(
            args.get("relevant_context_and_last_user_message")
            or args.get("context")
            or json.dumps(args, ensure_ascii=False)
        )

        async def started(name: str, nested_call: str, arguments: dict[str, Any] | str) -> None:
            await s._emit(ev.ToolStarted(name=name, call_id=nested_call, arguments=arguments,
                                         agent=supervisor_spec.slug, source="supervisor"))

        async def finished(name: str, nested_call: str, arguments: dict[str, Any] | str, outcome: ToolOutcome) -> None:
            await s._emit(ev.ToolFinished(
                name=name, call_id=nested_call, arguments=arguments, agent=supervisor_spec.slug,
                result=outcome.result, error=outcome.error, duration_ms=outcome.duration_ms, source="supervisor",
                status=outcome.status or "failed",
            ))

        config = s.config
        supervisor = Supervisor(
            s.link.http_client(),
            supervisor_spec,
            s.tools,
            model=supervisor_spec.model or config.supervisor_model or DEFAULT_SUPERVISOR_MODEL,
            timeout_s=config.supervisor_timeout_s,
            tool_timeout_s=config.tool_timeout_s,
            holding_line=config.supervisor_holding_line,
            max_tool_rounds=config.supervisor_max_tool_rounds,
            builtins={k: v for k, v in self._builtins(supervisor_spec, call_id).items() if k != "ask_supervisor"},
            on_tool_started=started,
            on_tool_finished=finished,
        )
        messages = [item.as_message() for item in s.transcript if item.text]
        answer = await supervisor.ask(messages, context)
        detail = "timeout" if answer.timed_out else (answer.error or "ok")
        await s._emit(ev.Latency(kind="supervisor", ms=answer.duration_ms, turn=s.context.user_turns, detail=detail))
        result: dict[str, Any] = {"next_response": answer.text}
        if answer.timed_out:
            result["note"] = "The supervisor is still working; say this holding line."
        return result

    # ------------------------------------------------------------ output

    async def deliver_output(self, call_id: str, name: str, output: str, params: dict[str, Any] | None = None) -> None:
        """Give a tool's output to the model and ask it to go on.

        If the session was recreated since the call, the function_call item is gone: the output
        goes in as a system text item instead, so the result is never lost."""
        s = self.s
        await s._ready.wait()
        if s.ended:
            return
        if call_id in self.known_calls:
            await s._send({"type": "conversation.item.create",
                           "item": {"type": "function_call_output", "call_id": call_id, "output": output}})
        else:
            await s._send_text_item("res", "system", f"Result of the tool {name}: {output}")
        await s.responses.request(params)
