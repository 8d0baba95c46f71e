"""Export and import of a scenario as self-contained JSON (its agents, tools and handoffs by slug
and name), so configurations can live in version control and move between environments.

This is the configuration, not the compiled spec: importing it into an empty database recreates
the scenario, and compiling it there gives the same spec hash.

Importing rewrites shared agents and tools, so it needs the add and change permissions of every model
it writes (`missing_import_permissions`); the admin checks them before it reads a file.

Import validates everything with the same model rules as the admin and runs in one transaction:
a bad file raises `ImportRefused` with every problem listed, and nothing is changed. That includes
the scenario's inbound phone numbers: one already answered by another scenario refuses the file.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from agents.models import Agent, HandoffEdge, Scenario, Tool

EXPORT_FORMAT = "contactcenter.scenario"
EXPORT_VERSION = 1

TOOL_FIELDS = (
    "name", "description", "parameters", "kind", "handler", "builtin", "webhook_url", "webhook_method",
    "webhook_timeout_seconds", "webhook_secret_header", "webhook_secret_name", "needs_approval",
)
AGENT_FIELDS = (
    "slug", "name", "kind", "instructions", "handoff_description", "model", "voice", "output_modality",
    "turn_detection", "vad_threshold", "vad_prefix_padding_ms", "vad_silence_duration_ms", "vad_idle_timeout_ms",
    "vad_create_response", "vad_interrupt_response", "vad_eagerness", "transcription_model",
    "transcription_language", "noise_reduction", "speed", "tool_choice", "max_output_tokens",
)
SCENARIO_FIELDS = (
    "slug", "name", "description", "max_handoff_depth", "max_session_seconds", "summarize_every_turns",
    "max_call_seconds", "blocked_phrases", "off_brand_terms", "guardrail_patterns", "moderation_check",
    "escalation_webhook_url", "failover_provider", "inbound_numbers",
)
# Scenario fields added after version 1 was first written: an older file without them imports them
# as their default.
SCENARIO_DEFAULTS: dict[str, Any] = {"moderation_check": False, "inbound_numbers": []}
SCENARIO_LINKS = ("root_agent", "supervisor_agent", "fallback_agent", "agents", "handoffs")
HANDOFF_FIELDS = ("from", "to", "when", "contract")


# An import creates or rewrites the scenario, its agents (shared with other scenarios), its tools
# (URLs, secrets by name) and its handoffs (replaced): it needs add and change on each of them.
IMPORT_PERMISSIONS = tuple(
    f"agents.{action}_{model}" for model in ("scenario", "agent", "tool", "handoffedge") for action in ("add", "change")
) + ("agents.delete_handoffedge",)


def missing_import_permissions(user: Any) -> list[str]:
    """The permissions an import needs that `user` lacks (empty: they may import)."""
    return [name for name in IMPORT_PERMISSIONS if not user.has_perm(name)]


class ImportRefused(Exception):
    """A scenario file that cannot be imported; `problems` lists every reason, in plain words."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("The scenario file was refused, nothing was changed:\n- " + "\n- ".join(problems))


# --- Export ----------------------------------------------------------------------------------------


def export_scenario(scenario: Scenario) -> dict[str, Any]:
    edges = list(scenario.edges.select_related("from_agent", "to_agent").order_by("from_agent__slug", "to_agent__slug"))
    agents: dict[str, Agent] = {a.slug: a for a in scenario.member_agents()}
    for edge in edges:
        agents.setdefault(edge.from_agent.slug, edge.from_agent)
        agents.setdefault(edge.to_agent.slug, edge.to_agent)
    tools: dict[str, Tool] = {}
    agent_docs = []
    for slug in sorted(agents):
        agent = agents[slug]
        own = list(agent.tools.order_by("name"))
        tools.update({t.name: t for t in own})
        doc = {f: getattr(agent, f) for f in AGENT_FIELDS}
        doc["tools"] = [t.name for t in own]
        agent_docs.append(doc)
    scenario_doc: dict[str, Any] = {f: getattr(scenario, f) for f in SCENARIO_FIELDS}
    scenario_doc.update(
        root_agent=scenario.root_agent.slug,
        supervisor_agent=scenario.supervisor_agent.slug if scenario.supervisor_agent else None,
        fallback_agent=scenario.fallback_agent.slug if scenario.fallback_agent else None,
        agents=sorted(a.slug for a in scenario.agents.all()),
        handoffs=[
            {"from": e.from_agent.slug, "to": e.to_agent.slug, "when": e.when, "contract": e.contract or []}
            for e in edges
        ],
    )
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "scenario": scenario_doc,
        "agents": agent_docs,
        "tools": [{f: getattr(tools[name], f) for f in TOOL_FIELDS} for name in sorted(tools)],
    }


def export_scenario_json(scenario: Scenario) -> str:
    return json.dumps(export_scenario(scenario), indent=2, ensure_ascii=False) + "\n"


# --- Import ----------------------------------------------------------------------------------------


def _messages(exc: ValidationError) -> list[str]:
    if hasattr(exc, "error_dict"):
        out = []
        for field_name, errors in exc.message_dict.items():
            prefix = "" if field_name == "__all__" else f"{field_name.replace('_', ' ')}: "
            out += [prefix + m for m in errors]
        return out
    return list(exc.messages)


def _check_shape(data: Any) -> list[str]:
    """Structural problems (before anything touches the database)."""
    if not isinstance(data, dict):
        return ["The file must contain a JSON object exported from a scenario."]
    if data.get("format") != EXPORT_FORMAT:
        return [f'This is not a scenario export (its "format" must be "{EXPORT_FORMAT}").']
    if data.get("version") != EXPORT_VERSION:
        return [f"Unsupported export version {data.get('version')!r}; this installation reads version {EXPORT_VERSION}."]
    problems = []
    for key, kind in (("scenario", dict), ("agents", list), ("tools", list)):
        if not isinstance(data.get(key), kind):
            problems.append(f'"{key}" is missing or is not a JSON {"object" if kind is dict else "list"}.')
    if problems:
        return problems

    def check(doc: Any, allowed: tuple[str, ...], required: tuple[str, ...], what: str) -> None:
        if not isinstance(doc, dict):
            problems.append(f"{what} must be a JSON object.")
            return
        unknown = sorted(set(doc) - set(allowed))
        if unknown:
            problems.append(f"{what} has unknown fields: {', '.join(unknown)}.")
        missing = [k for k in required if k not in doc]
        if missing:
            problems.append(f"{what} lacks: {', '.join(missing)}.")

    check(data["scenario"], SCENARIO_FIELDS + SCENARIO_LINKS, ("slug", "name", "root_agent"), "The scenario")
    for name, default in SCENARIO_DEFAULTS.items():
        value = data["scenario"].get(name, default)
        if isinstance(default, bool) and not isinstance(value, bool):
            problems.append(f"The scenario's {name} must be true or false, not {json.dumps(value)}.")
        if isinstance(default, list) and not isinstance(value, list):
            problems.append(f"The scenario's {name} must be a list, not {json.dumps(value)}.")
    for index, doc in enumerate(data["agents"], start=1):
        label = f"Agent {doc.get('slug', index) if isinstance(doc, dict) else index}"
        check(doc, AGENT_FIELDS + ("tools",), ("slug", "name", "instructions"), label)
        if isinstance(doc, dict) and not isinstance(doc.get("tools", []), list):
            problems.append(f"{label}: tools must be a list of tool names.")
    for index, doc in enumerate(data["tools"], start=1):
        check(doc, TOOL_FIELDS, ("name", "kind"), f"Tool {doc.get('name', index) if isinstance(doc, dict) else index}")
    handoffs = data["scenario"].get("handoffs", [])
    if not isinstance(handoffs, list):
        problems.append('"handoffs" must be a list.')
    else:
        for index, doc in enumerate(handoffs, start=1):
            check(doc, HANDOFF_FIELDS, ("from", "to"), f"Handoff {index}")
    if not isinstance(data["scenario"].get("agents", []), list):
        problems.append('The scenario\'s "agents" must be a list of agent slugs.')
    return problems


def _assign(obj: Any, doc: dict[str, Any], fields: tuple[str, ...]) -> None:
    for name in fields:
        if name in doc:
            value = doc[name]
            if value is None and not obj._meta.get_field(name).null:
                value = ""
            setattr(obj, name, value)


def import_scenario(data: Any) -> Scenario:
    """Create or update the scenario, its agents and tools from an export. All or nothing."""
    problems = _check_shape(data)
    if problems:
        raise ImportRefused(problems)
    with transaction.atomic():
        scenario = _write(data, problems)
        if problems:
            raise ImportRefused(problems)  # leaving the block rolls every write back
    return scenario


def import_scenario_json(text: str | bytes) -> Scenario:
    try:
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImportRefused([f"The file is not valid JSON: {exc}."]) from exc
    return import_scenario(data)


def _write(data: dict[str, Any], problems: list[str]) -> Scenario:
    """Writes inside the caller's transaction, collecting problems instead of stopping at the first."""
    tools: dict[str, Tool] = {}
    for doc in data["tools"]:
        tool = Tool.objects.filter(name=doc["name"]).first() or Tool()
        _assign(tool, doc, TOOL_FIELDS)
        try:
            tool.full_clean()
            tool.save()
            tools[tool.name] = tool
        except ValidationError as exc:
            problems += [f"Tool {doc['name']}: {m}" for m in _messages(exc)]

    agents: dict[str, Agent] = {}
    for doc in data["agents"]:
        agent = Agent.objects.filter(slug=doc["slug"]).first() or Agent()
        _assign(agent, doc, AGENT_FIELDS)
        try:
            agent.full_clean()
        except ValidationError as exc:
            problems += [f"Agent {doc['slug']}: {m}" for m in _messages(exc)]
            continue
        agent.save()
        own: list[Tool] = []
        for name in doc.get("tools", []):
            tool = tools.get(name) or Tool.objects.filter(name=name).first()
            if tool is None:
                if name not in {d["name"] for d in data["tools"]}:
                    problems.append(f"Agent {agent.slug}: the tool {name!r} is neither in the file nor in this database.")
                continue
            own.append(tool)
        agent.tools.set(own)
        agents[agent.slug] = agent

    def agent_by_slug(slug: Any, role: str) -> Agent | None:
        if slug in (None, ""):
            return None
        found = agents.get(slug) or Agent.objects.filter(slug=slug).first()
        if found is None and slug not in {d["slug"] for d in data["agents"]}:
            problems.append(f"The {role} {slug!r} is neither in the file nor in this database.")
        return found

    doc = data["scenario"]
    scenario = Scenario.objects.filter(slug=doc["slug"]).first() or Scenario()
    _assign(scenario, {**copy.deepcopy(SCENARIO_DEFAULTS), **doc}, SCENARIO_FIELDS)
    root = agent_by_slug(doc.get("root_agent"), "root agent")
    scenario.supervisor_agent = agent_by_slug(doc.get("supervisor_agent"), "supervisor agent")
    scenario.fallback_agent = agent_by_slug(doc.get("fallback_agent"), "fallback agent")
    members = [agent_by_slug(s, "scenario agent") for s in doc.get("agents", [])]
    if root is None:
        if not problems:
            problems.append("The scenario needs a root agent.")
        return scenario
    scenario.root_agent = root
    try:
        scenario.full_clean()
    except ValidationError as exc:
        problems += [f"Scenario {doc['slug']}: {m}" for m in _messages(exc)]
        return scenario
    if problems:
        return scenario
    scenario.save()
    scenario.agents.set([m for m in members if m is not None])
    scenario.edges.all().delete()
    for index, handoff in enumerate(doc.get("handoffs", []), start=1):
        source = agent_by_slug(handoff["from"], f"handoff {index} source")
        target = agent_by_slug(handoff["to"], f"handoff {index} target")
        if source is None or target is None:
            continue
        edge = HandoffEdge(
            scenario=scenario, from_agent=source, to_agent=target,
            when=handoff.get("when") or "", contract=handoff.get("contract") or [],
        )
        try:
            edge.full_clean(exclude=["scenario"], validate_unique=False)
        except ValidationError as exc:
            problems += [f"Handoff {source.slug} → {target.slug}: {m}" for m in _messages(exc)]
            continue
        if scenario.edges.filter(from_agent=source, to_agent=target).exists():
            problems.append(f"The handoff {source.slug} → {target.slug} is listed twice.")
            continue
        edge.save()
    if problems:
        return scenario
    problems += validate_scenarios_touching(scenario, agents.values(), tools.values())
    return scenario


def validate_scenarios_touching(scenario: Scenario, agents: Any, tools: Any) -> list[str]:
    """Graph problems of this scenario and of every other scenario the changed agents/tools are in."""
    problems: list[str] = []
    try:
        scenario.validate_graph()
    except ValidationError as exc:
        problems += exc.messages
    agent_ids = {a.pk for a in agents} | {a.pk for t in tools for a in t.agents.all()}
    others = Scenario.objects.exclude(pk=scenario.pk).filter(
        pk__in=_scenario_ids_using(agent_ids)
    )
    for other in others:
        try:
            other.validate_graph()
        except ValidationError as exc:
            problems += [f"This change would break the scenario {other.slug}: {m}" for m in exc.messages]
    return problems


def _scenario_ids_using(agent_ids: set[int]) -> set[int]:
    from django.db.models import Q

    ids = set(
        Scenario.objects.filter(
            Q(root_agent__in=agent_ids) | Q(supervisor_agent__in=agent_ids) | Q(fallback_agent__in=agent_ids)
            | Q(agents__in=agent_ids)
        ).values_list("pk", flat=True)
    )
    ids |= set(
        HandoffEdge.objects.filter(Q(from_agent__in=agent_ids) | Q(to_agent__in=agent_ids)).values_list(
            "scenario_id", flat=True
        )
    )
    return ids
