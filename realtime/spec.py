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
from collections.abc import Mapping
from functools import cached_property
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

SPEC_FORMAT = 1

ToolKind = Literal["python", "webhook", "builtin", "transfer"]
AgentKind = Literal["realtime", "supervisor"]

TRANSFER_PREFIX = "transfer_to_"


def canonical_json(data: Any) -> str:
    """The JSON text hashed for a spec: sorted keys, no whitespace, UTF-8 kept."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class _Part(BaseModel):
    """A part of the spec: immutable; unknown keys of older or newer writers are ignored on reading."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        return cls.model_validate(data)


class WebhookSpec(_Part):
    url: str
    method: str = "POST"
    timeout_seconds: float = 5.0
    secret_header: str = ""
    secret_name: str = ""


class ToolSpec(_Part):
    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    kind: ToolKind
    needs_approval: bool = False
    handler: str = ""
    builtin: str = ""
    webhook: WebhookSpec | None = None
    transfer_to: str = ""

    @field_validator("parameters", mode="before")
    @classmethod
    def _no_parameters(cls, value: Any) -> Any:
        return value or {"type": "object", "properties": {}}

    @field_validator("webhook", mode="before")
    @classmethod
    def _no_webhook(cls, value: Any) -> Any:
        return value or None

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


class AgentSpec(_Part):
    slug: str
    name: str = ""
    kind: AgentKind = "realtime"
    instructions: str = ""
    handoff_description: str = ""
    model: str = ""
    voice: str = ""
    tool_choice: str = "auto"
    tools: tuple[ToolSpec, ...] = ()
    session: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = {**data, "name": data.get("name") or data.get("slug"), "session": data.get("session") or {}}
        return data

    def tool(self, name: str) -> ToolSpec | None:
        for tool in self.tools:
            if tool.name == name:
                return tool
        return None

    def session_update(self) -> dict[str, Any]:
        """The client event that makes a Realtime session this agent."""
        return {"type": "session.update", "session": self.session}


class Limits(_Part):
    max_handoff_depth: int = 6
    max_session_seconds: int = 3600
    summarize_every_turns: int = 5
    max_call_seconds: int = 3600


class People(_Part):
    """People on the call (calls.queue, realtime.translation): ``queue_timeout_s`` > 0 puts an
    escalated call in the queue of human agents for that long before ``queue_fallback`` ("webhook":
    the escalation webhook; "callback": a callback request; "voicemail": the caller's message, recorded
    as audio); ``caller_language``: the caller's
    language (ISO 639-1) when a person speaking English takes the call through live translation."""

    queue_timeout_s: int = 0
    queue_fallback: str = "webhook"
    caller_language: str = ""


class Guardrails(_Part):
    blocked_phrases: tuple[str, ...] = ()
    off_brand_terms: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    # Also send each checked chunk of an answer to the provider's moderation endpoint.
    moderation: bool = False

    @model_serializer(mode="wrap")
    def _moderation_only_when_on(self, handler: Any) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if not self.moderation:
            # Written only when on, so a spec stored before the setting existed keeps its hash.
            data.pop("moderation", None)
        return data


class ScenarioSpec(_Part):
    slug: str
    name: str = ""
    root_agent: str
    agents: dict[str, AgentSpec]
    supervisor_agent: str | None = None
    fallback_agent: str | None = None
    limits: Limits = Field(default_factory=Limits)
    guardrails: Guardrails = Field(default_factory=Guardrails)
    # The provider a call fails over to when its upstream cannot be reached: "" (none) or "offline".
    failover_provider: str = ""
    # Where escalations to a human are posted (the contact center's CRM or ticketing); "" for none.
    escalation_webhook_url: str = ""
    people: People = Field(default_factory=People)

    @model_validator(mode="before")
    @classmethod
    def _read(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if data.get("format", SPEC_FORMAT) != SPEC_FORMAT:
                raise ValueError(f"unsupported spec format {data.get('format')!r}")
            data = {**data, "name": data.get("name") or data.get("slug"),
                    "limits": data.get("limits") or {}, "guardrails": data.get("guardrails") or {}}
        return data

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
        return dict(self.canonical_body)

    @cached_property
    def canonical_body(self) -> dict[str, Any]:
        """The body, built once."""
        data = self.model_dump(mode="json")
        data["agents"] = dict(sorted(data["agents"].items()))
        if data.get("people") == People().model_dump(mode="json"):
            del data["people"]  # unset: the hash of a spec from before this part stays the same
        return {"format": SPEC_FORMAT, **data}

    @cached_property
    def hash(self) -> str:
        """sha256 of the canonical JSON of the body: computed once (the spec is immutable)."""
        return hashlib.sha256(canonical_json(self.canonical_body).encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "hash": self.hash}

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A changed copy (tests, failover): its body and hash are computed afresh."""
        copied = super().model_copy(update=update, deep=deep)
        for cached in ("canonical_body", "hash"):
            copied.__dict__.pop(cached, None)
        return copied

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScenarioSpec:
        spec = cls.model_validate(data)
        if "hash" in data and data["hash"] != spec.hash:
            raise ValueError("spec hash does not match its content")
        return spec

    @classmethod
    def from_json(cls, text: str) -> ScenarioSpec:
        return cls.from_dict(json.loads(text))
