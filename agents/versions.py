"""Scenario versions: every compiled spec a scenario had, immutable, and readable diffs between two.

A version is recorded when a save changes what the scenario compiles to (the spec hash): the admin
(scenario, agent and tool saves), an import, or, as a safety net, a call starting on a spec that no
version holds yet (a change made outside those paths). A save that leaves the compiled spec as it
was records nothing. Calls point at the version they ran with.

`backfill_versions()` gives an existing database its current scenarios as version 1 and links the
calls whose spec hash matches; it runs after `migrate` (see `agents.apps`) and is idempotent.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from agents.models import Agent, HandoffEdge, Scenario, ScenarioVersion, Tool

logger = logging.getLogger(__name__)

_author: contextvars.ContextVar[Any] = contextvars.ContextVar("scenario_version_author", default=None)


@contextlib.contextmanager
def authored_by(user: Any) -> Iterator[None]:
    """Versions recorded inside this block name `user` as their author (admin saves and imports)."""
    token = _author.set(user if getattr(user, "is_authenticated", False) else None)
    try:
        yield
    finally:
        _author.reset(token)


def _new_version(scenario: Scenario, spec: dict[str, Any], source: str,
                 imported_from: dict[str, Any] | None = None) -> ScenarioVersion:
    latest = scenario.versions.order_by("-number").values_list("number", flat=True).first()
    author = _author.get()
    version = ScenarioVersion(
        scenario=scenario, scenario_slug=scenario.slug, number=(latest or 0) + 1, spec_hash=spec["hash"],
        spec=spec, author=author, author_name=author.get_username() if author is not None else "",
        source=source, imported_from=imported_from,
    )
    version.save()
    logger.info("scenario %s: version %s recorded (%s, %s)", scenario.slug, version.number, source,
                spec["hash"][:12])
    return version


def _lock(scenario: Scenario) -> None:
    """Serialise version numbering per scenario (two saves or call starts at once)."""
    Scenario.objects.select_for_update().filter(pk=scenario.pk).values_list("pk", flat=True).first()


def record_version(scenario: Scenario, *, source: str = ScenarioVersion.Source.ADMIN,
                   imported_from: dict[str, Any] | None = None) -> ScenarioVersion | None:
    """Record the scenario's compiled spec as a new version if it differs from the latest one.

    Returns the new version, or None when nothing changed or the scenario does not compile (a
    broken graph is not a configuration calls can run)."""
    from agents.compile import compile_scenario

    with transaction.atomic():
        _lock(scenario)
        # Read afresh: a caller's instance may hold related agents cached from before the change.
        scenario = Scenario.objects.select_related("root_agent", "supervisor_agent", "fallback_agent").get(
            pk=scenario.pk)
        try:
            spec = compile_scenario(scenario).to_dict()
        except ValidationError as exc:
            logger.info("scenario %s: no version recorded, it does not compile: %s", scenario.slug,
                        "; ".join(exc.messages)[:300])
            return None
        latest = scenario.versions.order_by("-number").only("spec_hash").first()
        if latest is not None and latest.spec_hash == spec["hash"]:
            return None
        return _new_version(scenario, spec, source, imported_from)


def scenarios_using(*, agents: Iterable[Agent] = (), tools: Iterable[Tool] = ()) -> list[Scenario]:
    """Every scenario whose compiled spec may change with these agents or tools."""
    agent_ids = {a.pk for a in agents} | set(
        Agent.objects.filter(tools__in=[t.pk for t in tools]).values_list("pk", flat=True))
    if not agent_ids:
        return []
    ids = set(Scenario.objects.filter(
        Q(root_agent__in=agent_ids) | Q(supervisor_agent__in=agent_ids) | Q(fallback_agent__in=agent_ids)
        | Q(agents__in=agent_ids)).values_list("pk", flat=True))
    ids |= set(HandoffEdge.objects.filter(Q(from_agent__in=agent_ids) | Q(to_agent__in=agent_ids))
               .values_list("scenario_id", flat=True))
    return list(Scenario.objects.filter(pk__in=ids).order_by("slug"))


def record_versions(scenarios: Iterable[Scenario], *, source: str = ScenarioVersion.Source.ADMIN) -> list[ScenarioVersion]:
    recorded = [record_version(s, source=source) for s in scenarios]
    return [v for v in recorded if v is not None]


def version_document(scenario: Scenario) -> dict[str, Any] | None:
    """What an export says of the version it was taken from: the scenario's latest, or, when that is
    an unchanged import, the version the imported file came from (so the origin travels on)."""
    if scenario.pk is None:
        return None
    # A change made outside the admin and imports is recorded now, so the block names what is exported.
    record_version(scenario, source=ScenarioVersion.Source.EXPORT)
    latest = scenario.versions.order_by("-number").first()
    if latest is None:
        return None
    origin = latest.imported_from
    if isinstance(origin, dict) and origin.get("hash") == latest.spec_hash:
        return {key: origin.get(key) for key in ("number", "hash", "created_at", "author")}  # jsonb reorders keys
    return {"number": latest.number, "hash": latest.spec_hash, "created_at": latest.created_at.isoformat(),
            "author": latest.author_name}


def version_document_problems(doc: Any) -> list[str]:
    if doc is None:
        return []
    if (not isinstance(doc, dict) or not isinstance(doc.get("number"), int) or isinstance(doc.get("number"), bool)
            or not isinstance(doc.get("hash"), str)):
        return ['"scenario_version" must be an object with a whole "number" and a "hash".']
    return []


def record_import(scenario: Scenario, data: dict[str, Any]) -> None:
    """After an import: a version of the imported scenario (naming the version the file came from)
    and of every other scenario whose agents or tools the file changed."""
    imported_from = data.get("scenario_version")
    record_version(scenario, source=ScenarioVersion.Source.IMPORT,
                   imported_from={k: imported_from.get(k) for k in ("number", "hash", "created_at", "author")}
                   if isinstance(imported_from, dict) else None)
    agents = Agent.objects.filter(slug__in=[d.get("slug") for d in data.get("agents") or []])
    tools = Tool.objects.filter(name__in=[d.get("name") for d in data.get("tools") or []])
    others = [s for s in scenarios_using(agents=agents, tools=tools) if s.pk != scenario.pk]
    record_versions(others, source=ScenarioVersion.Source.IMPORT)


def version_for_call(scenario: Scenario | None, spec: dict[str, Any]) -> ScenarioVersion | None:
    """The version a starting call runs with: the latest of the scenario's versions with the spec's
    hash, or (a change no tracked save recorded) a new version holding exactly that spec."""
    spec_hash = str(spec.get("hash") or "")
    if scenario is None or scenario.pk is None or not spec_hash:
        return None
    # Versions are never changed or deleted, and a new one is recorded only with a change that
    # moves the scenario's `config_changed_at`: the answer for (scenario, mark, hash) stays true.
    key = (scenario.pk, scenario.__dict__.get("config_changed_at"), spec_hash)
    if key[1] is not None and (known := _VERSION_OF_CALLS.get(key)) is not None:
        return known
    with transaction.atomic():
        found = scenario.versions.filter(spec_hash=spec_hash).order_by("-number").first()
        if found is None:
            _lock(scenario)
            found = scenario.versions.filter(spec_hash=spec_hash).order_by("-number").first()
            found = found or _new_version(scenario, spec, ScenarioVersion.Source.CALL)
    if key[1] is not None and found is not None:
        transaction.on_commit(lambda: _remember_version(key, found))  # not a version rolled back
    return found


def _remember_version(key: tuple[Any, Any, str], version: ScenarioVersion) -> None:
    if len(_VERSION_OF_CALLS) >= 256:
        _VERSION_OF_CALLS.clear()
    _VERSION_OF_CALLS[key] = version


#: (scenario id, config_changed_at, spec hash) -> the version calls of that spec run with (per process).
_VERSION_OF_CALLS: dict[tuple[Any, Any, str], ScenarioVersion] = {}


def backfill_versions() -> dict[str, int]:
    """Scenarios without versions get their current compiled spec as version 1; calls without a
    version are linked to a version of their scenario with the same spec hash. Idempotent."""
    from calls.models import Call

    created = 0
    for scenario in Scenario.objects.filter(versions__isnull=True).order_by("slug"):
        if record_version(scenario, source=ScenarioVersion.Source.EXISTING) is not None:
            created += 1
    linked = 0
    versions = ScenarioVersion.objects.filter(scenario__isnull=False).order_by("scenario_id", "number")
    latest_by_hash = {(v.scenario_id, v.spec_hash): v.pk for v in versions.only("pk", "scenario_id", "spec_hash")}
    unlinked = (Call.objects.filter(scenario_version__isnull=True, scenario__isnull=False).exclude(spec_hash="")
                .values_list("scenario_id", "spec_hash").distinct())
    for scenario_id, spec_hash in unlinked:
        version_id = latest_by_hash.get((scenario_id, spec_hash))
        if version_id is not None:
            linked += Call.objects.filter(scenario_version__isnull=True, scenario_id=scenario_id,
                                          spec_hash=spec_hash).update(scenario_version_id=version_id)
    if created or linked:
        logger.info("scenario versions: %s scenarios got version 1, %s calls linked by hash", created, linked)
    return {"versions": created, "calls": linked}


# --- diffs ------------------------------------------------------------------------------------------


@dataclass
class Change:
    what: str
    old: str = ""
    new: str = ""
    kind: str = "changed"  # added | removed | changed


@dataclass
class AgentDiff:
    slug: str
    kind: str = "changed"  # added | removed | changed
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (tag: +/-/space/@, line)
    settings: list[Change] = field(default_factory=list)
    tools: list[Change] = field(default_factory=list)
    edges: list[Change] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.kind == "changed" and not (self.instructions or self.settings or self.tools or self.edges)


@dataclass
class SpecDiff:
    scenario: list[Change] = field(default_factory=list)
    limits: list[Change] = field(default_factory=list)
    guardrails: list[Change] = field(default_factory=list)
    agents: list[AgentDiff] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.scenario or self.limits or self.guardrails or self.agents)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _compare(old: dict[str, Any], new: dict[str, Any], keys: Iterable[str], prefix: str = "") -> list[Change]:
    changes = []
    for key in keys:
        if old.get(key) != new.get(key):
            changes.append(Change(f"{prefix}{key}", _show(old.get(key, "")), _show(new.get(key, ""))))
    return changes


def _flatten(data: Any, path: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data:
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{path}.{key}" if path else str(key)))
        return out
    return {path: data}


SCENARIO_KEYS = ("name", "root_agent", "supervisor_agent", "fallback_agent", "failover_provider",
                 "escalation_webhook_url")
AGENT_KEYS = ("name", "kind", "handoff_description", "model", "voice", "tool_choice")
SESSION_SKIPPED = ("instructions", "tools", "model", "tool_choice")


def _instructions_diff(old: str, new: str) -> list[tuple[str, str]]:
    if old == new:
        return []
    lines = []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=2):
        if line.startswith(("---", "+++")):
            continue
        lines.append((line[:1], line[1:]))
    return lines


def _tool_changes(old_tools: list[dict[str, Any]], new_tools: list[dict[str, Any]]) -> list[Change]:
    old = {t["name"]: t for t in old_tools if t.get("kind") != "transfer"}
    new = {t["name"]: t for t in new_tools if t.get("kind") != "transfer"}
    changes = [Change(name, kind="removed") for name in sorted(set(old) - set(new))]
    changes += [Change(name, kind="added") for name in sorted(set(new) - set(old))]
    for name in sorted(set(old) & set(new)):
        a, b = _flatten(old[name]), _flatten(new[name])
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                changes.append(Change(f"{name}: {key}", _show(a.get(key, "")), _show(b.get(key, ""))))
    return changes


def _edge_changes(old_tools: list[dict[str, Any]], new_tools: list[dict[str, Any]]) -> list[Change]:
    old = {t["transfer_to"]: t for t in old_tools if t.get("kind") == "transfer"}
    new = {t["transfer_to"]: t for t in new_tools if t.get("kind") == "transfer"}
    changes = [Change(f"→ {slug}", kind="removed") for slug in sorted(set(old) - set(new))]
    changes += [Change(f"→ {slug}", kind="added") for slug in sorted(set(new) - set(old))]
    for slug in sorted(set(old) & set(new)):
        if old[slug].get("description") != new[slug].get("description"):
            changes.append(Change(f"→ {slug}: when", old[slug].get("description", ""), new[slug].get("description", "")))
        if old[slug].get("parameters") != new[slug].get("parameters"):
            changes.append(Change(f"→ {slug}: contract", _show(old[slug].get("parameters")),
                                  _show(new[slug].get("parameters"))))
    return changes


def spec_diff(old: dict[str, Any], new: dict[str, Any]) -> SpecDiff:
    """What changed from the compiled spec `old` to `new`: scenario settings, limits, guardrails and,
    per agent, its instructions (line diff), settings, tools and outgoing handoffs (edges)."""
    diff = SpecDiff(
        scenario=_compare(old, new, SCENARIO_KEYS),
        limits=_compare(old.get("limits") or {}, new.get("limits") or {},
                        sorted(set(old.get("limits") or {}) | set(new.get("limits") or {}))),
        guardrails=_compare(old.get("guardrails") or {}, new.get("guardrails") or {},
                            sorted(set(old.get("guardrails") or {}) | set(new.get("guardrails") or {}))),
    )
    old_agents, new_agents = old.get("agents") or {}, new.get("agents") or {}
    for slug in sorted(set(old_agents) | set(new_agents)):
        a, b = old_agents.get(slug), new_agents.get(slug)
        if a is None or b is None:
            present = b if a is None else a
            entry = AgentDiff(slug, kind="added" if a is None else "removed")
            entry.edges = [Change(f"→ {t['transfer_to']}", kind=entry.kind)
                           for t in present.get("tools") or [] if t.get("kind") == "transfer"]
            diff.agents.append(entry)
            continue
        entry = AgentDiff(slug)
        entry.instructions = _instructions_diff(a.get("instructions", ""), b.get("instructions", ""))
        entry.settings = _compare(a, b, AGENT_KEYS)
        sa = {k: v for k, v in _flatten(a.get("session") or {}).items() if k.split(".")[0] not in SESSION_SKIPPED}
        sb = {k: v for k, v in _flatten(b.get("session") or {}).items() if k.split(".")[0] not in SESSION_SKIPPED}
        entry.settings += _compare(sa, sb, sorted(set(sa) | set(sb)), prefix="session ")
        entry.tools = _tool_changes(a.get("tools") or [], b.get("tools") or [])
        entry.edges = _edge_changes(a.get("tools") or [], b.get("tools") or [])
        if not entry.empty:
            diff.agents.append(entry)
    return diff
