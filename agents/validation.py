"""The configuration rules, in words an operator understands.

One set of pure functions over plain data, used by the model `clean()` methods, the admin forms
(which see unsaved edits) and the JSON import, so every path refuses the same things the same way.
Each function returns problems instead of raising, so a form can show all of them at once.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for

from agents import registry
from agents.options import TOOL_CHOICE_MODES, voices_for_model
from realtime.spec import TRANSFER_PREFIX

if TYPE_CHECKING:
    from agents.models import Agent, Scenario

SECRET_NAME_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,99}$")
CONTRACT_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
CONTRACT_TYPES = ("string", "integer", "number", "boolean")
ALWAYS_IN_CONTRACT = ("reason", "conversation_summary")

Problems = dict[str, list[str]]


def _add(problems: Problems, field_name: str, message: str) -> None:
    problems.setdefault(field_name, []).append(message)


# --- Tools ---------------------------------------------------------------------------------------


def schema_problem(parameters: Any) -> str | None:
    """Why `parameters` is not a usable JSON Schema for function arguments (None when it is).

    The jsonschema library checks it against its metaschema; its own error text is shown as is.
    """
    if not isinstance(parameters, dict):
        return "The parameters must be a JSON object (a JSON Schema), not a list or a single value."
    cls = validator_for(parameters, default=Draft202012Validator)
    try:
        cls.check_schema(parameters)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        return f"Not a valid JSON Schema: {exc.message}" + (f" (at {where})" if where else "")
    if parameters.get("type") != "object":
        return 'The parameters schema must describe an object: {"type": "object", "properties": {...}}.'
    return None


def tool_problems(
    *,
    name: str,
    kind: str,
    parameters: Any,
    handler: str = "",
    builtin: str = "",
    webhook_url: str = "",
    webhook_secret_header: str = "",
    webhook_secret_name: str = "",
) -> Problems:
    problems: Problems = {}
    problem = schema_problem(parameters)
    if problem:
        _add(problems, "parameters", problem)
    if kind == "python":
        if not handler:
            _add(problems, "handler", "Pick the Python handler this tool runs.")
        elif handler not in registry.HANDLERS:
            _add(problems, "handler", f"There is no Python handler called {handler!r} in this installation.")
    elif kind == "webhook":
        if not webhook_url:
            _add(problems, "webhook_url", "A webhook tool needs the URL it calls.")
        if bool(webhook_secret_header) != bool(webhook_secret_name):
            _add(
                problems,
                "webhook_secret_name",
                "Give both the secret header and the secret name, or neither.",
            )
        if webhook_secret_name and not SECRET_NAME_RE.match(webhook_secret_name):
            _add(
                problems,
                "webhook_secret_name",
                "The secret name is the NAME of a setting (capital letters, digits and _, e.g. CRM_TOKEN), "
                "never the secret itself.",
            )
    elif kind == "builtin" and not builtin:
        _add(problems, "builtin", "Pick which built-in action this tool performs.")
    return problems


# --- Agents --------------------------------------------------------------------------------------


def instructions_problem(kind: str, instructions: str) -> str | None:
    limit = settings.AGENT_INSTRUCTIONS_MAX_CHARS
    if kind == "realtime" and len(instructions) > limit:
        return (
            f"Instructions of a voice specialist are limited to {limit} characters; these have "
            f"{len(instructions)}. Keep one job per agent and hand off for the rest."
        )
    return None


def agent_problems(
    *,
    kind: str,
    instructions: str,
    model: str,
    voice: str,
    output_modality: str,
    turn_detection: str,
    tool_choice: str,
    realtime_models: Iterable[str],
    supervisor_models: Iterable[str],
) -> Problems:
    problems: Problems = {}
    problem = instructions_problem(kind, instructions)
    if problem:
        _add(problems, "instructions", problem)
    if kind == "realtime":
        if model not in realtime_models:
            _add(problems, "model", f"{model!r} is not a Realtime model. Pick one of: {', '.join(realtime_models)}.")
        else:
            offered = voices_for_model(model)
            if voice not in offered:
                _add(
                    problems,
                    "voice",
                    f"The model {model} does not offer the voice {voice!r}. It offers: {', '.join(offered)}.",
                )
    else:
        if model not in supervisor_models:
            _add(problems, "model", f"{model!r} is not a text model the Responses API offers.")
    if tool_choice not in TOOL_CHOICE_MODES and not re.match(r"^[a-zA-Z0-9_-]{1,64}$", tool_choice or ""):
        _add(problems, "tool_choice", "Use auto, required, none, or the name of one of the agent's tools.")
    return problems


def tool_choice_problem(agent_name: str, tool_choice: str, tool_names: Iterable[str]) -> str | None:
    names = list(tool_names)
    if tool_choice in TOOL_CHOICE_MODES or tool_choice in names:
        return None
    offered = ", ".join(names) if names else "it has no tools"
    return (
        f"{agent_name}: the tool choice {tool_choice!r} is not one of this agent's tools ({offered}). "
        "Use auto, required, none, or one of its tools."
    )


# --- Handoff contracts and guardrails ---------------------------------------------------------------


def contract_problems(contract: Any) -> list[str]:
    """A handoff contract: a list of {name, description, type, required} beyond reason and summary."""
    if contract in (None, ""):
        return []
    if not isinstance(contract, list):
        return ["The handoff contract must be a JSON list of fields."]
    problems: list[str] = []
    seen: set[str] = set()
    for index, item in enumerate(contract, start=1):
        if not isinstance(item, dict):
            problems.append(f"Field {index} of the handoff contract must be an object with a name.")
            continue
        unknown = set(item) - {"name", "description", "type", "required"}
        if unknown:
            problems.append(f"Field {index}: unknown keys {', '.join(sorted(unknown))}.")
        name = item.get("name")
        if not isinstance(name, str) or not CONTRACT_NAME_RE.match(name):
            problems.append(f"Field {index}: the name must be lower_case letters, digits and _ (e.g. order_id).")
            continue
        if name in ALWAYS_IN_CONTRACT:
            problems.append(f"Field {name!r} always travels with a transfer; do not add it again.")
        if name in seen:
            problems.append(f"Field {name!r} appears twice in the handoff contract.")
        seen.add(name)
        if item.get("type", "string") not in CONTRACT_TYPES:
            problems.append(f"Field {name!r}: the type must be one of {', '.join(CONTRACT_TYPES)}.")
        if not isinstance(item.get("description", ""), str):
            problems.append(f"Field {name!r}: the description must be text.")
        if not isinstance(item.get("required", False), bool):
            problems.append(f"Field {name!r}: required must be true or false.")
    return problems


def _text_list_problem(value: Any, label: str) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        return f"{label} must be a JSON list of non-empty texts, e.g. [\"...\", \"...\"]."
    return None


def guardrail_problems(*, blocked_phrases: Any, off_brand_terms: Any, patterns: Any) -> Problems:
    problems: Problems = {}
    for field_name, value, label in (
        ("blocked_phrases", blocked_phrases, "Blocked phrases"),
        ("off_brand_terms", off_brand_terms, "Off-brand terms"),
        ("guardrail_patterns", patterns, "Guardrail patterns"),
    ):
        problem = _text_list_problem(value, label)
        if problem:
            _add(problems, field_name, problem)
    if "guardrail_patterns" not in problems:
        for pattern in patterns or []:
            try:
                re.compile(pattern)
            except re.error as exc:
                _add(problems, "guardrail_patterns", f"The pattern {pattern!r} is not a valid regular expression: {exc}.")
    return problems


# --- Inbound numbers (routing of phone calls) --------------------------------------------------------

E164_RE = re.compile(r"^\+[1-9][0-9]{7,14}$")
# What people type around the digits of a phone number; dropped before the E.164 check.
PHONE_NUMBER_PUNCTUATION_RE = re.compile(r"[\s\-()]")
E164_HINT = "a + then the country code and number, 8 to 15 digits in all, e.g. +1 202 555 0100"


def normalise_phone_number(value: Any) -> str | None:
    """`+1 (202) 555-0100` -> `+12025550100`; None when the text is not an E.164 number."""
    if not isinstance(value, str):
        return None
    compact = PHONE_NUMBER_PUNCTUATION_RE.sub("", value)
    return compact if E164_RE.match(compact) else None


def inbound_number_problems(value: Any, taken: dict[str, str] | None = None) -> tuple[list[str], list[str]]:
    """(the numbers normalised, the problems) of a scenario's inbound numbers.

    `taken` maps each number another scenario already answers to that scenario's label: a number
    routes to one scenario only.
    """
    if value in (None, ""):
        return [], []
    if not isinstance(value, list):
        return [], [f"Inbound numbers must be a list of phone numbers, {E164_HINT}."]
    taken = taken or {}
    numbers: list[str] = []
    problems: list[str] = []
    for entry in value:
        number = normalise_phone_number(entry)
        if number is None:
            shown = json.dumps(entry, ensure_ascii=False) if not isinstance(entry, str) else repr(entry.strip())
            problems.append(f"{shown} is not a phone number in international (E.164) form: {E164_HINT}.")
            continue
        if number in numbers:
            problems.append(f"The number {number} is listed twice.")
            continue
        if number in taken:
            problems.append(
                f"The number {number} already reaches the scenario {taken[number]}; a number can lead to one "
                "scenario only. Remove it there first."
            )
            continue
        numbers.append(number)
    return numbers, problems


# --- Scenarios (the handoff graph) -------------------------------------------------------------------


@dataclass
class AgentFacts:
    """What the graph rules need to know about one agent."""

    slug: str
    name: str
    kind: str
    instructions: str
    tool_choice: str
    tool_names: list[str] = field(default_factory=list)
    builtins: list[str] = field(default_factory=list)

    @classmethod
    def from_agent(cls, agent: Agent, tools: Iterable[Any] | None = None) -> AgentFacts:
        tool_list = list(agent.tools.all()) if tools is None else list(tools)
        return cls(
            slug=agent.slug,
            name=agent.name,
            kind=agent.kind,
            instructions=agent.instructions or "",
            tool_choice=agent.tool_choice or "auto",
            tool_names=[t.name for t in tool_list],
            builtins=[t.builtin for t in tool_list if t.kind == "builtin" and t.builtin],
        )


@dataclass
class ScenarioFacts:
    """A scenario as plain data: slugs, edges (from, to) and the facts of every agent involved."""

    root: str | None
    supervisor: str | None
    fallback: str | None
    members: list[str]
    edges: list[tuple[str, str]]
    agents: dict[str, AgentFacts]

    @classmethod
    def build(
        cls,
        *,
        root: Agent | None,
        supervisor: Agent | None,
        fallback: Agent | None,
        members: Iterable[Agent],
        edges: Iterable[tuple[Agent, Agent]],
        overrides: dict[str, AgentFacts] | None = None,
    ) -> ScenarioFacts:
        overrides = overrides or {}
        involved: dict[str, Agent] = {}
        member_slugs: list[str] = []
        for agent in [root, supervisor, fallback, *members]:
            if agent is not None and agent.slug not in member_slugs:
                member_slugs.append(agent.slug)
                involved[agent.slug] = agent
        edge_slugs: list[tuple[str, str]] = []
        for source, target in edges:
            involved.setdefault(source.slug, source)
            involved.setdefault(target.slug, target)
            edge_slugs.append((source.slug, target.slug))
        facts = {slug: overrides.get(slug) or AgentFacts.from_agent(agent) for slug, agent in involved.items()}
        return cls(
            root=root.slug if root else None,
            supervisor=supervisor.slug if supervisor else None,
            fallback=fallback.slug if fallback else None,
            members=member_slugs,
            edges=edge_slugs,
            agents=facts,
        )

    @classmethod
    def from_scenario(cls, scenario: Scenario, overrides: dict[str, AgentFacts] | None = None) -> ScenarioFacts:
        edges = [(e.from_agent, e.to_agent) for e in scenario.edges.select_related("from_agent", "to_agent")]
        return cls.build(
            root=scenario.root_agent,
            supervisor=scenario.supervisor_agent,
            fallback=scenario.fallback_agent,
            members=list(scenario.agents.all()) if scenario.pk else [],
            edges=edges,
            overrides=overrides,
        )

    def tool_names_of(self, slug: str) -> list[str]:
        """The agent's tools in this scenario: its own plus one transfer tool per outgoing edge."""
        names = list(self.agents[slug].tool_names)
        names += [f"{TRANSFER_PREFIX}{target}" for source, target in self.edges if source == slug]
        return names


def scenario_problems(facts: ScenarioFacts) -> list[str]:
    """Every graph rule. Empty when the scenario can run."""
    problems: list[str] = []
    agents = facts.agents

    def label(slug: str) -> str:
        return f"{agents[slug].name} ({slug})" if slug in agents else slug

    if not facts.root:
        return ["Pick the root agent: the one that answers the call."]
    if agents[facts.root].kind != "realtime":
        problems.append(f"The root agent {label(facts.root)} must be a realtime voice agent.")
    if facts.supervisor and agents[facts.supervisor].kind != "supervisor":
        problems.append(f"The supervisor {label(facts.supervisor)} must be a text supervisor agent.")
    if facts.fallback and agents[facts.fallback].kind != "realtime":
        problems.append(f"The fallback agent {label(facts.fallback)} must be a realtime voice agent.")
    if facts.supervisor and facts.supervisor in (facts.root, facts.fallback):
        problems.append("The supervisor cannot also be the root or the fallback agent.")

    members = set(facts.members)
    for slug in facts.members:
        if agents[slug].kind == "supervisor" and slug != facts.supervisor:
            problems.append(
                f"{label(slug)} is a text supervisor; a scenario has at most one, set as its supervisor agent."
            )

    seen_edges: set[tuple[str, str]] = set()
    for source, target in facts.edges:
        arrow = f"{label(source)} → {label(target)}"
        for end in (source, target):
            if end not in members:
                problems.append(
                    f"The handoff {arrow} uses {label(end)}, which is not one of this scenario's agents. "
                    "Add it to the scenario's agents first."
                )
        if source == target:
            problems.append(f"The handoff {arrow} goes nowhere: an agent cannot transfer to itself.")
        if facts.supervisor in (source, target) or agents[source].kind != "realtime" or agents[target].kind != "realtime":
            problems.append(f"The handoff {arrow} involves a text supervisor; handoffs are between voice agents.")
        if (source, target) in seen_edges:
            problems.append(f"The handoff {arrow} is listed twice.")
        seen_edges.add((source, target))

    # Reachability: the supervisor is reached through ask_supervisor, the fallback through recovery.
    reached = {facts.root}
    queue = deque([facts.root])
    while queue:
        current = queue.popleft()
        for source, target in facts.edges:
            if source == current and target not in reached:
                reached.add(target)
                queue.append(target)
    for slug in facts.members:
        if slug not in reached and slug not in (facts.supervisor, facts.fallback):
            problems.append(
                f"{label(slug)} cannot be reached: no chain of handoffs leads there from the root agent "
                f"{label(facts.root)}."
            )

    for slug in sorted(members | {s for edge in facts.edges for s in edge}):
        if slug not in agents:
            continue
        agent = agents[slug]
        names = facts.tool_names_of(slug)
        duplicates = sorted({n for n in names if names.count(n) > 1})
        for name in duplicates:
            problems.append(
                f"{label(slug)} has two tools called {name!r} (generated transfer tools included). "
                "Rename the tool or remove the handoff."
            )
        problem = tool_choice_problem(label(slug), agent.tool_choice, names)
        if problem:
            problems.append(problem)
        if "ask_supervisor" in agent.builtins and not facts.supervisor and slug in members:
            problems.append(f"{label(slug)} has an ask-the-supervisor tool but the scenario has no supervisor agent.")
        problem = instructions_problem(agent.kind, agent.instructions)
        if problem:
            problems.append(f"{label(slug)}: {problem}")
    return problems
