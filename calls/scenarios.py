"""Compiled scenarios for calls: the only bridge from `agents/` configuration into a live call."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from realtime.spec import ScenarioSpec


class UnknownScenario(LookupError):
    pass


#: slug -> ((scenario id, config_changed_at), compiled spec): what this worker compiled last.
_COMPILED: dict[str, tuple[tuple[int, Any], ScenarioSpec]] = {}
#: spec hash -> spec, for calls that start from their stored spec (a media socket, maybe on another
#: worker than the webhook): the hash names the content, so a hit is the same spec.
_BY_HASH: dict[str, ScenarioSpec] = {}
CACHE_LIMIT = 256


def _remember(cache: dict[str, Any], key: str, value: Any) -> None:
    if len(cache) >= CACHE_LIMIT:
        cache.clear()
    cache[key] = value


def compile_for_call(slug: str) -> tuple[Any, ScenarioSpec]:
    """(Scenario row, compiled spec) for `slug`; UnknownScenario when there is none or it is broken.

    A call start reads the scenario's row only: the spec compiled from the same (id,
    `config_changed_at`) is reused, and every change to the graph moves that mark (agents.signals)."""
    from django.core.exceptions import ValidationError

    from agents.compile import compile_scenario
    from agents.models import Scenario

    # The mark alone first: the full row and its agents are read only to compile.
    scenario = Scenario.objects.only("pk", "slug", "config_changed_at").filter(slug=slug).first()
    if scenario is None:
        raise UnknownScenario(f"no scenario {slug!r}")
    key = (scenario.pk, scenario.config_changed_at)
    cached = _COMPILED.get(slug)
    if cached is not None and cached[0] == key:
        return scenario, cached[1]
    scenario = (Scenario.objects.select_related("root_agent", "supervisor_agent", "fallback_agent")
                .filter(slug=slug).first())
    if scenario is None:
        raise UnknownScenario(f"no scenario {slug!r}")
    key = (scenario.pk, scenario.config_changed_at)
    try:
        spec = compile_scenario(scenario)
    except ValidationError as error:
        raise UnknownScenario(f"scenario {slug!r} does not compile: {'; '.join(error.messages)}") from error
    _remember(_COMPILED, slug, (key, spec))
    _remember(_BY_HASH, spec.hash, spec)
    return scenario, spec


def spec_of_call(call_id: int, spec_hash: str | None = None) -> ScenarioSpec:
    """The spec a call runs with, as its record stores it (read in full only when this worker has
    not seen that spec's hash yet). ``spec_hash``: the call's, when the caller has just read it."""
    from calls.models import Call

    if spec_hash is None:
        spec_hash = Call.objects.filter(pk=call_id).values_list("spec_hash", flat=True).get()
    if spec_hash and (spec := _BY_HASH.get(spec_hash)) is not None:
        return spec
    spec = ScenarioSpec.from_dict(Call.objects.filter(pk=call_id).values_list("spec", flat=True).get())
    if spec_hash == spec.hash:
        _remember(_BY_HASH, spec.hash, spec)
    return spec


@dataclass(frozen=True)
class Route:
    """Which scenario an inbound phone call runs, and why. `slug` is "" when nothing matched."""

    slug: str
    reason: str


def dialled_number(address: str) -> str | None:
    """The E.164 number in what the caller dialled: a number as Twilio posts `To` (`+12025550100`),
    or a SIP/tel address as in a SIP `To` header (`<sip:+12025550100@sip.example.com>;tag=x`).
    None when it holds no E.164 number (e.g. `sip:proj_abc@sip.api.openai.com`)."""
    from agents.validation import normalise_phone_number

    text = (address or "").strip()
    match = re.search(r"(?:sips?|tel):([^@;>]+)", text, flags=re.IGNORECASE)
    if match:
        text = unquote(match.group(1))
    return normalise_phone_number(text)


def scenario_for_number(number: str) -> str:
    """The slug of the scenario that lists `number` (normalised E.164) among its inbound numbers, or ""."""
    from agents.models import Scenario

    for slug, numbers in Scenario.objects.order_by("slug").values_list("slug", "inbound_numbers"):
        if isinstance(numbers, list) and number in numbers:
            return str(slug)
    return ""


def resolve_inbound_scenario(*, explicit: str = "", dialled: str = "", default: str = "") -> Route:
    """The scenario of an inbound phone call, in this order:

    1. `explicit`: the scenario the call names itself (Twilio: the webhook URL's `?scenario=`; SIP:
       the trunk's scenario header). It is final: an unknown name is not routed elsewhere.
    2. the dialled number (`dialled`: Twilio's `To`, the SIP `To` header), compared as E.164 with the
       scenarios' inbound numbers;
    3. `default`, the channel's default scenario setting;
    4. only while no scenario lists any inbound number (one line, nothing configured yet): the first
       scenario by slug.

    Otherwise the slug is "" and `reason` says why, for the log of the refused call.
    """
    from agents.models import Scenario

    if explicit := (explicit or "").strip():
        return Route(explicit, "named by the call")
    number = dialled_number(dialled)
    if number and (slug := scenario_for_number(number)):
        return Route(slug, f"dialled number {number}")
    if default := (default or "").strip():
        return Route(default, "default scenario setting")
    shown = number or repr(dialled or "")
    rows = list(Scenario.objects.order_by("slug").values_list("slug", "inbound_numbers"))
    if not rows:
        return Route("", f"no scenario is configured (dialled {shown})")
    if not any(numbers for _, numbers in rows):
        return Route(str(rows[0][0]), "first scenario (no scenario lists inbound numbers)")
    return Route("", f"the dialled number {shown} reaches no scenario and no default scenario is set")
