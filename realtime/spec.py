"""The compiled scenario: the one immutable, JSON-serialisable contract between configuration and calls.

`agents/` compiles a Scenario (Django models) into a `ScenarioSpec`; every call stores the spec it
ran with (and its hash); the engine in `realtime/` only ever reads a spec, never a model.

The JSON shape (``ScenarioSpec.to_dict()``) is stable:

    {
      "format": 1,
      "slug": "retail", "name": "Retail customer service",
      "root_agent": "authentication", "supervisor_agent": null, "fallback_agent": "human_escalation",
      "failover_provider": "" | "offline", "escalation_webhook_url": "" | "https://...",
      "limits": {"max_handoff_depth": 6, "max_session_seconds": 3600, "summarize_every_turns": 5,
                 "max_call_seconds": 1800},
      "guardrails": {"blocked_phrases": [...], "off_brand_terms": [...], "patterns": [...],
                     "moderation": true},   # only present when on (older specs keep their hash)
      "agents": {
        "<slug>": {
          "slug", "name", "kind": "realtime" | "supervisor", "instructions", "handoff_description",
          "model", "voice", "tool_choice": "auto" | "required" | "none" | "<tool name>",
          "tools": [ToolSpec...],            # the agent's own tools + generated transfer_to_<agent>
          "session": {...}                   # realtime agents: the exact GA session.update `session`
        }
      },
      "hash": "sha256 hex of the canonical JSON of everything above"
    }

A ToolSpec: {"name", "description", "parameters" (JSON Schema), "kind": "python" | "webhook" |
"builtin" | "transfer", "needs_approval", "handler" (python: registry key), "builtin"
("escalate" | "end_call" | "ask_supervisor"), "webhook" ({"url", "method", "timeout_seconds",
"secret_header", "secret_name"}), "transfer_to" (transfer: target agent slug)}.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

SPEC_FORMAT = 1

ToolKind = Literal["python", "webhook", "builtin", "transfer"]
AgentKind = Literal["realtime", "supervisor"]

TRANSFER_PREFIX = "transfer_to_"


def canonical_json(data: Any) -> str:
    """The JSON text hashed for a spec: sorted keys, no whitespace, UTF-8 kept."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class WebhookSpec:
    url: str
    method: str = "POST"
    timeout_seconds: float = 5.0
    secret_header: str = ""
    secret_name: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "method": self.method,
            "timeout_seconds": self.timeout_seconds,
            "secret_header": self.secret_header,
            "secret_name": self.secret_name,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WebhookSpec:
        return cls(
            url=data["url"],
            method=data.get("method", "POST"),
            timeout_seconds=float(data.get("timeout_seconds", 5.0)),
            secret_header=data.get("secret_header", ""),
            secret_name=data.get("secret_name", ""),
        )


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]
    kind: ToolKind
    needs_approval: bool = False
    handler: str = ""
    builtin: str = ""
    webhook: WebhookSpec | None = None
    transfer_to: str = ""

    def function_tool(self) -> dict[str, Any]:
        """The GA realtime function tool (``session.tools`` entry)."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
        }

    def responses_tool(self) -> dict[str, Any]:
        """The Responses API function tool (for text supervisors)."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "strict": False,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "kind": self.kind,
            "needs_approval": self.needs_approval,
            "handler": self.handler,
            "builtin": self.builtin,
            "webhook": self.webhook.to_dict() if self.webhook else None,
            "transfer_to": self.transfer_to,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToolSpec:
        return cls(
            name=data["name"],
            description=data.get("description", ""),
            parameters=data.get("parameters") or {"type": "object", "properties": {}},
            kind=data["kind"],
            needs_approval=bool(data.get("needs_approval", False)),
            handler=data.get("handler", ""),
            builtin=data.get("builtin", ""),
            webhook=WebhookSpec.from_dict(data["webhook"]) if data.get("webhook") else None,
            transfer_to=data.get("transfer_to", ""),
        )


@dataclass(frozen=True)
class AgentSpec:
    slug: str
    name: str
    kind: AgentKind
    instructions: str
    handoff_description: str
    model: str
    voice: str
    tool_choice: str
    tools: tuple[ToolSpec, ...]
    session: dict[str, Any] = field(default_factory=dict)

    def tool(self, name: str) -> ToolSpec | None:
        for tool in self.tools:
            if tool.name == name:
                return tool
        return None

    def session_update(self) -> dict[str, Any]:
        """The client event that makes a Realtime session this agent."""
        return {"type": "session.update", "session": self.session}

    def to_dict(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "name": self.name,
            "kind": self.kind,
            "instructions": self.instructions,
            "handoff_description": self.handoff_description,
            "model": self.model,
            "voice": self.voice,
            "tool_choice": self.tool_choice,
            "tools": [t.to_dict() for t in self.tools],
            "session": self.session,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentSpec:
        return cls(
            slug=data["slug"],
            name=data.get("name", data["slug"]),
            kind=data.get("kind", "realtime"),
            instructions=data.get("instructions", ""),
            handoff_description=data.get("handoff_description", ""),
            model=data.get("model", ""),
            voice=data.get("voice", ""),
            tool_choice=data.get("tool_choice", "auto"),
            tools=tuple(ToolSpec.from_dict(t) for t in data.get("tools", [])),
            session=data.get("session") or {},
        )


@dataclass(frozen=True)
class Limits:
    max_handoff_depth: int = 6
    max_session_seconds: int = 3600
    summarize_every_turns: int = 5
    max_call_seconds: int = 3600

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_handoff_depth": self.max_handoff_depth,
            "max_session_seconds": self.max_session_seconds,
            "summarize_every_turns": self.summarize_every_turns,
            "max_call_seconds": self.max_call_seconds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Limits:
        return cls(**{k: int(v) for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Guardrails:
    blocked_phrases: tuple[str, ...] = ()
    off_brand_terms: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    # Also send each checked chunk of an answer to the provider's moderation endpoint.
    moderation: bool = False

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "blocked_phrases": list(self.blocked_phrases),
            "off_brand_terms": list(self.off_brand_terms),
            "patterns": list(self.patterns),
        }
        if self.moderation:
            # Written only when on, so a spec stored before the setting existed keeps its hash.
            data["moderation"] = True
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Guardrails:
        return cls(
            blocked_phrases=tuple(data.get("blocked_phrases", ())),
            off_brand_terms=tuple(data.get("off_brand_terms", ())),
            patterns=tuple(data.get("patterns", ())),
            moderation=bool(data.get("moderation", False)),
        )


@dataclass(frozen=True)
class ScenarioSpec:
    slug: str
    name: str
    root_agent: str
    agents: dict[str, AgentSpec]
    supervisor_agent: str | None = None
    fallback_agent: str | None = None
    limits: Limits = field(default_factory=Limits)
    guardrails: Guardrails = field(default_factory=Guardrails)
    # The provider a call fails over to when its upstream cannot be reached: "" (none) or "offline".
    failover_provider: str = ""
    # Where escalations to a human are posted (the contact center's CRM or ticketing); "" for none.
    escalation_webhook_url: str = ""

    def agent(self, slug: str) -> AgentSpec:
        return self.agents[slug]

    @property
    def root(self) -> AgentSpec:
        return self.agents[self.root_agent]

    @property
    def supervisor(self) -> AgentSpec | None:
        return self.agents.get(self.supervisor_agent) if self.supervisor_agent else None

    def body(self) -> dict[str, Any]:
        """Everything that is hashed (the spec without its hash)."""
        return {
            "format": SPEC_FORMAT,
            "slug": self.slug,
            "name": self.name,
            "root_agent": self.root_agent,
            "supervisor_agent": self.supervisor_agent,
            "fallback_agent": self.fallback_agent,
            "failover_provider": self.failover_provider,
            "escalation_webhook_url": self.escalation_webhook_url,
            "limits": self.limits.to_dict(),
            "guardrails": self.guardrails.to_dict(),
            "agents": {slug: agent.to_dict() for slug, agent in sorted(self.agents.items())},
        }

    @property
    def hash(self) -> str:
        return hashlib.sha256(canonical_json(self.body()).encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "hash": self.hash}

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScenarioSpec:
        if data.get("format", SPEC_FORMAT) != SPEC_FORMAT:
            raise ValueError(f"unsupported spec format {data.get('format')!r}")
        spec = cls(
            slug=data["slug"],
            name=data.get("name", data["slug"]),
            root_agent=data["root_agent"],
            supervisor_agent=data.get("supervisor_agent"),
            fallback_agent=data.get("fallback_agent"),
            failover_provider=data.get("failover_provider", ""),
            escalation_webhook_url=data.get("escalation_webhook_url", ""),
            limits=Limits.from_dict(data.get("limits", {})),
            guardrails=Guardrails.from_dict(data.get("guardrails", {})),
            agents={slug: AgentSpec.from_dict(a) for slug, a in data["agents"].items()},
        )
        if "hash" in data and data["hash"] != spec.hash:
            raise ValueError("spec hash does not match its content")
        return spec

    @classmethod
    def from_json(cls, text: str) -> ScenarioSpec:
        return cls.from_dict(json.loads(text))
