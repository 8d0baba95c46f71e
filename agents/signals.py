"""Every change to what a scenario compiles from moves its `config_changed_at`.

A worker keeps each scenario's compiled spec under (scenario id, `config_changed_at`)
(`calls.scenarios.compile_for_call`), so a call start reads one row instead of compiling the whole
graph. A saved or deleted scenario, agent, tool or handoff, and a changed agent or tool list,
move the mark in the same transaction as the change (a rolled-back change leaves it as it was);
every process sees it on its next call. Changes that bypass Django's signals (a queryset
`update()`, raw SQL) must call `touch_scenarios()` themselves.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import m2m_changed, post_delete, post_save
from django.utils import timezone


def touch_scenarios(scenario_pk: int | None = None) -> None:
    """Mark one scenario (or, by default, every scenario) as changed."""
    from agents.models import Scenario

    scenarios = Scenario.objects.all() if scenario_pk is None else Scenario.objects.filter(pk=scenario_pk)
    scenarios.update(config_changed_at=timezone.now())


def _scenario_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    if kwargs.get("signal") is post_save:
        touch_scenarios(instance.pk)


def _part_changed(sender: Any, instance: Any = None, **kwargs: Any) -> None:
    # Agents and tools are shared between scenarios, and config edits are rare: mark them all.
    if kwargs.get("signal") is m2m_changed and not str(kwargs.get("action", "")).startswith("post_"):
        return
    touch_scenarios()


def connect() -> None:
    from agents.models import Agent, HandoffEdge, Scenario, Tool

    post_save.connect(_scenario_changed, sender=Scenario, dispatch_uid="agents.scenario_changed")
    for model in (Agent, Tool, HandoffEdge):
        for signal in (post_save, post_delete):
            signal.connect(_part_changed, sender=model, dispatch_uid=f"agents.changed.{model.__name__}.{id(signal)}")
    for through in (Scenario.agents.through, Agent.tools.through):
        m2m_changed.connect(_part_changed, sender=through, dispatch_uid=f"agents.changed.{through.__name__}")
