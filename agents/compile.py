"""Compile a Scenario (Django models) into the immutable `realtime.spec.ScenarioSpec`.

Each realtime agent gets the exact GA ``session.update`` ``session`` payload (session.type
"realtime", audio.input/audio.output, no beta fields). The audio format is compiled as 24 kHz PCM;
the engine swaps in the transport's format (audio/pcmu for phone calls) when it connects.

Settings the operator turned off are sent as ``null`` (turn detection, transcription, noise
reduction) rather than omitted: a handoff re-sends ``session.update`` in the same Realtime session,
and an omitted field would keep the previous agent's setting.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from agents.models import Agent, HandoffEdge, Scenario, Tool
from realtime.spec import (
    TRANSFER_PREFIX,
    AgentSpec,
    Guardrails,
    Limits,
    People,
    ScenarioSpec,
    ToolSpec,
    WebhookSpec,
)

PCM_24K: dict[str, Any] = {"type": "audio/pcm", "rate": 24000}

REASON_PROPERTY = {
    "type": "string",
    "description": "Why the caller is being transferred, in one sentence.",
}
SUMMARY_PROPERTY = {
    "type": "string",
    "description": (
        "What the caller wants, what they already said (names, numbers, dates) and what has been "
        "done so far, so the next agent does not ask again."
    ),
}


def tool_spec(tool: Tool) -> ToolSpec:
    webhook = None
    if tool.kind == Tool.Kind.WEBHOOK:
        webhook = WebhookSpec(
            url=tool.webhook_url,
            method=tool.webhook_method,
            timeout_seconds=float(tool.webhook_timeout_seconds),
            secret_header=tool.webhook_secret_header,
            secret_name=tool.webhook_secret_name,
        )
    return ToolSpec(
        name=tool.name,
        description=tool.description,
        parameters=tool.parameters,
        kind=tool.kind,  # type: ignore[arg-type]
        needs_approval=tool.needs_approval,
        handler=tool.handler if tool.kind == Tool.Kind.PYTHON else "",
        builtin=tool.builtin if tool.kind == Tool.Kind.BUILTIN else "",
        webhook=webhook,
    )


def transfer_tool_spec(edge: HandoffEdge) -> ToolSpec:
    """The generated ``transfer_to_<slug>`` tool of one handoff edge."""
    target = edge.to_agent
    properties: dict[str, Any] = {
        "reason": dict(REASON_PROPERTY),
        "conversation_summary": dict(SUMMARY_PROPERTY),
    }
    required = ["reason", "conversation_summary"]
    for item in edge.contract or []:
        prop: dict[str, Any] = {"type": item.get("type", "string")}
        if item.get("description"):
            prop["description"] = item["description"]
        properties[item["name"]] = prop
        if item.get("required"):
            required.append(item["name"])
    description = f"Transfer the caller to {target.name}."
    if target.handoff_description:
        description += f" {target.handoff_description.strip()}"
    if edge.when:
        description += f" Transfer when: {edge.when.strip()}"
    return ToolSpec(
        name=f"{TRANSFER_PREFIX}{target.slug}",
        description=description,
        parameters={"type": "object", "properties": properties, "required": required, "additionalProperties": False},
        kind="transfer",
        transfer_to=target.slug,
    )


def turn_detection_payload(agent: Agent) -> dict[str, Any] | None:
    if agent.turn_detection == Agent.TurnDetection.SERVER_VAD:
        payload: dict[str, Any] = {"type": "server_vad"}
        for key, value in (
            ("threshold", agent.vad_threshold),
            ("prefix_padding_ms", agent.vad_prefix_padding_ms),
            ("silence_duration_ms", agent.vad_silence_duration_ms),
            ("idle_timeout_ms", agent.vad_idle_timeout_ms),
        ):
            if value is not None:
                payload[key] = value
        payload["create_response"] = agent.vad_create_response
        payload["interrupt_response"] = agent.vad_interrupt_response
        return payload
    if agent.turn_detection == Agent.TurnDetection.SEMANTIC_VAD:
        return {
            "type": "semantic_vad",
            "eagerness": agent.vad_eagerness,
            "create_response": agent.vad_create_response,
            "interrupt_response": agent.vad_interrupt_response,
        }
    return None


def session_payload(agent: Agent, tools: list[ToolSpec]) -> dict[str, Any]:
    """The GA ``session`` object of ``session.update`` for a realtime agent."""
    transcription: dict[str, Any] | None = None
    if agent.transcription_model:
        transcription = {"model": agent.transcription_model}
        if agent.transcription_language:
            transcription["language"] = agent.transcription_language
    noise_reduction = None if agent.noise_reduction == Agent.NoiseReduction.NONE else {"type": agent.noise_reduction}
    tool_choice: Any = agent.tool_choice
    if tool_choice not in ("auto", "required", "none"):
        tool_choice = {"type": "function", "name": tool_choice}
    return {
        "type": "realtime",
        "model": agent.effective_model,
        "instructions": agent.compiled_instructions,
        "output_modalities": [agent.output_modality],
        "audio": {
            "input": {
                "format": dict(PCM_24K),
                "transcription": transcription,
                "noise_reduction": noise_reduction,
                "turn_detection": turn_detection_payload(agent),
            },
            "output": {"format": dict(PCM_24K), "voice": agent.voice, "speed": agent.speed},
        },
        "tools": [tool.function_tool() for tool in tools],
        "tool_choice": tool_choice,
        "max_output_tokens": agent.max_output_tokens if agent.max_output_tokens else "inf",
    }


def agent_spec(agent: Agent, edges: list[HandoffEdge]) -> AgentSpec:
    tools = [tool_spec(t) for t in agent.tools.all().order_by("name")]
    if agent.kind == Agent.Kind.SUPERVISOR:
        return AgentSpec(
            slug=agent.slug, name=agent.name, kind="supervisor", instructions=agent.compiled_instructions,
            handoff_description=agent.handoff_description, model=agent.effective_model, voice="",
            tool_choice=agent.tool_choice, tools=tuple(tools), session={},
        )
    outgoing = sorted((e for e in edges if e.from_agent_id == agent.pk), key=lambda e: e.to_agent.slug)
    tools += [transfer_tool_spec(e) for e in outgoing]
    return AgentSpec(
        slug=agent.slug, name=agent.name, kind="realtime", instructions=agent.compiled_instructions,
        handoff_description=agent.handoff_description, model=agent.effective_model, voice=agent.voice,
        tool_choice=agent.tool_choice, tools=tuple(tools), session=session_payload(agent, tools),
    )


def compile_scenario(scenario: Scenario | str, *, validate: bool = True) -> ScenarioSpec:
    """Compile a scenario (or its slug) into its spec. Raises ValidationError for a broken graph."""
    if isinstance(scenario, str):
        scenario = Scenario.objects.select_related("root_agent", "supervisor_agent", "fallback_agent").get(
            slug=scenario
        )
    if validate:
        scenario.validate_graph()
        for agent in scenario.member_agents():
            try:
                agent.full_clean(validate_unique=False)
            except ValidationError as exc:
                raise ValidationError([f"{agent.name} ({agent.slug}): {m}" for m in exc.messages]) from exc
    edges = list(scenario.edges.select_related("from_agent", "to_agent"))
    agents = {agent.slug: agent_spec(agent, edges) for agent in scenario.member_agents()}
    return ScenarioSpec(
        slug=scenario.slug,
        name=scenario.name,
        root_agent=scenario.root_agent.slug,
        supervisor_agent=scenario.supervisor_agent.slug if scenario.supervisor_agent else None,
        fallback_agent=scenario.fallback_agent.slug if scenario.fallback_agent else None,
        failover_provider=scenario.failover_provider,
        escalation_webhook_url=scenario.escalation_webhook_url,
        people=People(queue_timeout_s=scenario.human_queue_timeout_seconds,
                      queue_fallback=scenario.human_queue_fallback, caller_language=scenario.caller_language),
        limits=Limits(
            max_handoff_depth=scenario.max_handoff_depth,
            max_session_seconds=scenario.max_session_seconds,
            summarize_every_turns=scenario.summarize_every_turns,
            max_call_seconds=scenario.max_call_seconds,
        ),
        guardrails=Guardrails(
            blocked_phrases=tuple(scenario.blocked_phrases or ()),
            off_brand_terms=tuple(scenario.off_brand_terms or ()),
            patterns=tuple(scenario.guardrail_patterns or ()),
            moderation=scenario.moderation_check,
        ),
        agents=agents,
    )
