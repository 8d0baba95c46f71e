"""Compiled scenarios for calls: the only bridge from `agents/` configuration into a live call."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from realtime.spec import ScenarioSpec


class UnknownScenario(LookupError):
    pass


def compile_for_call(slug: str) -> tuple[Any, ScenarioSpec]:
    """(Scenario row, compiled spec) for `slug`; UnknownScenario when there is none or it is broken."""
    from django.core.exceptions import ValidationError

    from agents.compile import compile_scenario
    from agents.models import Scenario

    scenario = (Scenario.objects.select_related("root_agent", "supervisor_agent", "fallback_agent")
                .filter(slug=slug).first())
    if scenario is None:
        raise UnknownScenario(f"no scenario {slug!r}")
    try:
        return scenario, compile_scenario(scenario)
    except ValidationError as error:
        raise UnknownScenario(f"scenario {slug!r} does not compile: {'; '.join(error.messages)}") from error


def default_phone_scenario() -> str:
    """TWILIO_DEFAULT_SCENARIO, else the first scenario by slug ("" when there is none)."""
    from agents.models import Scenario

    if settings.TWILIO_DEFAULT_SCENARIO:
        return str(settings.TWILIO_DEFAULT_SCENARIO)
    return Scenario.objects.order_by("slug").values_list("slug", flat=True).first() or ""
