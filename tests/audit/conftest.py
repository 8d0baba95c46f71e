"""Fixtures of the audit tests: a supervisor (staff), an outsider (logged in, not staff), a small
scenario with two configuration versions, and a seeded set of calls and handoffs whose figures
the tests work out by hand.

Records are written through calls.actions, as in a real call; only their timestamps are then
moved onto a fixed timeline (the actions stamp "now"), so periods and "ended right after" are exact.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest

from agents.compile import compile_scenario
from agents.models import Agent, HandoffEdge, Scenario, ScenarioVersion
from agents.versions import record_version
from calls import actions
from calls.models import Call, HandoffEvent
from tests.agents.conftest import make_agent

DAY = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)


def shop_scenario(slug: str = "shop", cap: int = 2) -> Scenario:
    """front → billing, billing → front, front → returns, returns → billing; human is the fallback."""
    agents = {name: make_agent(f"{slug}-{name}" if slug != "shop" else name)
              for name in ("front", "billing", "returns", "human")}
    scenario = Scenario.objects.create(slug=slug, name=slug.title(), root_agent=agents["front"],
                                       fallback_agent=agents["human"], max_handoff_depth=cap)
    scenario.agents.set(agents.values())
    for source, target in (("front", "billing"), ("billing", "front"), ("front", "returns"), ("returns", "billing")):
        HandoffEdge.objects.create(scenario=scenario, from_agent=agents[source], to_agent=agents[target],
                                   when=f"{target} questions")
    scenario.validate_graph()
    return scenario


@dataclass
class Seeded:
    scenario: Scenario
    v1: ScenarioVersion
    v2: ScenarioVersion
    calls: dict[str, Call] = field(default_factory=dict)
    handoffs: dict[str, HandoffEvent] = field(default_factory=dict)


def start_call(scenario: Scenario, started: dt.datetime, caller: str) -> Call:
    spec = compile_scenario(scenario.slug).to_dict()  # read afresh, as a transport does
    call = actions.do_start_call(channel=Call.Channel.BROWSER, spec=spec, scenario=scenario, caller_id=caller)
    Call.objects.filter(pk=call.pk).update(started_at=started)
    return call


def handoff(call: Call, name: str, seeded: Seeded, at: dt.datetime, source: str, target: str, depth: int, *,
            reason: str, applied: bool | None, ms: int = 0, fallback: bool = False) -> None:
    row = actions.do_record_handoff(call.pk, from_agent=source, to_agent=target, reason=reason, depth=depth,
                                    fallback=fallback, context={"summary": f"caller said something to {target}"})
    if applied is not None:
        actions.do_mark_handoff_applied(call.pk, to_agent=target, depth=depth, applied=applied, applied_ms=ms,
                                        error="" if applied else "invalid session")
    HandoffEvent.objects.filter(pk=row.pk).update(created_at=at)
    row.refresh_from_db()
    seeded.handoffs[name] = row


def end_call(call: Call, at: dt.datetime) -> None:
    actions.do_end_call(call.pk, "caller_hung_up")
    Call.objects.filter(pk=call.pk).update(ended_at=at)


@pytest.fixture
def seeded(db: Any) -> Seeded:
    """Scenario "shop" (max handoff depth 2) in two versions, four calls, and two handoffs that the
    shop's figures must leave out (another scenario; a day outside the period).

    v1: c1 front→billing (applied 100 ms) then billing→front (applied 300 ms), ends 5 s later;
        c2 front→billing (refused), ends 60 s later.
    v2: c3 front→returns (applied 200 ms), returns→billing (applied 250 ms), billing→human
        (fallback past the cap: depth 3 > 2, applied 400 ms), ends 3 s later;
        c4 front→human (fallback for an unknown target, depth 1; the server has not answered), still live.
    """
    scenario = shop_scenario()
    v1 = record_version(scenario)
    assert v1 is not None
    seeded = Seeded(scenario, v1, v1)
    t = DAY
    c1 = start_call(scenario, t, "caller-1")
    handoff(c1, "c1a", seeded, t + dt.timedelta(seconds=10), "front", "billing", 1, reason="wants a refund of the bill",
            applied=True, ms=100)
    handoff(c1, "c1b", seeded, t + dt.timedelta(seconds=40), "billing", "front", 2, reason="asked about a new order",
            applied=True, ms=300)
    end_call(c1, t + dt.timedelta(seconds=45))
    c2 = start_call(scenario, t + dt.timedelta(hours=1), "caller-2")
    handoff(c2, "c2a", seeded, t + dt.timedelta(hours=1, seconds=20), "front", "billing", 1,
            reason="question about the bill", applied=False)
    end_call(c2, t + dt.timedelta(hours=1, seconds=80))

    front = Agent.objects.get(slug="front")
    front.instructions = "You are front. Greet the caller by name."
    front.save()
    v2 = record_version(scenario)
    assert v2 is not None and v2.number == 2
    seeded.v2 = v2
    t2 = DAY + dt.timedelta(days=1)
    c3 = start_call(scenario, t2, "caller-3")
    handoff(c3, "c3a", seeded, t2 + dt.timedelta(seconds=5), "front", "returns", 1, reason="return the headphones",
            applied=True, ms=200)
    handoff(c3, "c3b", seeded, t2 + dt.timedelta(seconds=30), "returns", "billing", 2, reason="refund to the card",
            applied=True, ms=250)
    handoff(c3, "c3c", seeded, t2 + dt.timedelta(seconds=50), "billing", "human", 3, reason="too many transfers",
            applied=True, ms=400, fallback=True)
    end_call(c3, t2 + dt.timedelta(seconds=53))
    c4 = start_call(scenario, t2 + dt.timedelta(hours=2), "caller-4")
    handoff(c4, "c4a", seeded, t2 + dt.timedelta(hours=2, seconds=7), "front", "human", 1,
            reason="wants the loyalty team", applied=None, fallback=True)

    other = shop_scenario("other", cap=6)
    record_version(other)
    c5 = start_call(other, t2, "caller-5")
    handoff(c5, "c5a", seeded, t2 + dt.timedelta(seconds=9), "other-front", "other-billing", 1,
            reason="refund of the bill", applied=True, ms=900)
    c6 = start_call(scenario, DAY - dt.timedelta(days=20), "caller-6")
    handoff(c6, "c6a", seeded, DAY - dt.timedelta(days=20, seconds=-10), "front", "billing", 1,
            reason="bill refund long ago", applied=True, ms=5000)
    seeded.calls = {"c1": c1, "c2": c2, "c3": c3, "c4": c4, "c5": c5, "c6": c6}
    return seeded


PERIOD = {"start": "2026-03-10", "end": "2026-03-11"}
