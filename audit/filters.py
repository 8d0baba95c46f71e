"""The handoff filter shared by the audit pages, the exports and the `exporthandoffs` command:
a period, a scenario and a configuration version, source and target agents, an outcome, and words
in the reason. Bad input is a form error, never a silently wider or narrower set."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.db.models import F, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.utils import timezone

from agents.models import ScenarioVersion
from calls.models import Call, HandoffEvent

OUTCOMES = (
    ("applied", "Applied (the new agent was in force)"),
    ("refused", "Refused by the Realtime server"),
    ("pending", "No answer from the server"),
    ("fallback", "Fallback (to the fallback agent)"),
    ("depth_cap", "Depth cap (fallback after too many transfers)"),
)
MAX_WORDS = 8


def depth_caps() -> dict[str, int]:
    """max_handoff_depth per spec hash: from the versions (a few rows), and for calls no version
    holds, from one call per hash. Reading it here keeps the specs' JSON out of the row scans."""
    caps: dict[str, int] = {}
    cap = KeyTextTransform("max_handoff_depth", KeyTransform("limits", "spec"))
    for spec_hash, value in ScenarioVersion.objects.values_list("spec_hash", cap):
        if value not in (None, ""):
            caps[spec_hash] = int(value)
    loose = set(Call.objects.filter(scenario_version__isnull=True).exclude(spec_hash="").order_by()
                .values_list("spec_hash", flat=True).distinct())
    for spec_hash in loose - set(caps):
        value = Call.objects.filter(spec_hash=spec_hash).order_by().values_list(cap, flat=True)[:1].first()
        if value not in (None, ""):
            caps[spec_hash] = int(value)
    return caps


def depth_cap_q(caps: dict[str, int] | None = None) -> Q:
    """A fallback handoff whose depth went past the call's max_handoff_depth (the engine sends the
    caller to the fallback agent when a transfer would exceed the cap; an unknown target is the
    other cause of a fallback, at a depth within the cap)."""
    by_cap: dict[int, list[str]] = {}
    for spec_hash, cap in (depth_caps() if caps is None else caps).items():
        by_cap.setdefault(cap, []).append(spec_hash)
    past = Q(id__isnull=True)  # nothing, when no spec is known
    for cap, hashes in sorted(by_cap.items()):
        past |= Q(call__spec_hash__in=sorted(hashes), depth__gt=cap)
    return Q(fallback=True) & past


OUTCOME_Q = {
    "applied": lambda: Q(applied=True),
    "refused": lambda: Q(applied=False),
    "pending": lambda: Q(applied__isnull=True),
    "fallback": lambda: Q(fallback=True),
    "depth_cap": depth_cap_q,
}


class HandoffFilter(forms.Form):
    start = forms.DateField(required=False, label="From", help_text="First day (UTC), inclusive.",
                            widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label="To", help_text="Last day (UTC), inclusive.",
                          widget=forms.DateInput(attrs={"type": "date"}))
    scenario = forms.SlugField(required=False, max_length=64)
    version = forms.IntegerField(required=False, min_value=1, label="Configuration version",
                                 help_text="The version's id (the list of a scenario's versions offers them).")
    source = forms.CharField(required=False, max_length=64, label="From agent")
    target = forms.CharField(required=False, max_length=64, label="To agent")
    outcome = forms.ChoiceField(required=False, choices=(("", "Any outcome"), *OUTCOMES))
    q = forms.CharField(required=False, max_length=200, label="Words in the reason")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and end < start:
            self.add_error("end", "The last day is before the first day.")
        version = data.get("version")
        if version is not None:
            found = ScenarioVersion.objects.filter(pk=version).values_list("scenario_slug", flat=True).first()
            if found is None:
                self.add_error("version", "No configuration version has this id.")
            elif data.get("scenario") and data["scenario"] != found:
                self.add_error("version", f"This version belongs to the scenario {found}.")
        if len(self.words(data.get("q") or "")) > MAX_WORDS:
            self.add_error("q", f"Search for at most {MAX_WORDS} words.")
        return data

    @staticmethod
    def words(text: str) -> list[str]:
        return [w for w in text.split() if w]

    def queryset(self, base: QuerySet[HandoffEvent] | None = None) -> QuerySet[HandoffEvent]:
        """The handoffs the (valid) filter selects, newest first."""
        if not self.is_valid():
            raise ValueError("the filter is not valid")
        return filter_handoffs(self.cleaned_data, base)

    def query_string(self, **changes: Any) -> str:
        """The filter as a URL query (valid fields only), with `changes` applied."""
        from urllib.parse import urlencode

        data = {k: v for k, v in (self.cleaned_data if self.is_valid() else {}).items() if v not in (None, "")}
        data.update({k: v for k, v in changes.items()})
        return urlencode({k: v for k, v in data.items() if v not in (None, "")})


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def filter_handoffs(data: dict[str, Any], base: QuerySet[HandoffEvent] | None = None) -> QuerySet[HandoffEvent]:
    qs = HandoffEvent.objects.all() if base is None else base
    if data.get("start"):
        qs = qs.filter(created_at__gte=day_start(data["start"]))
    if data.get("end"):
        qs = qs.filter(created_at__lt=day_start(data["end"] + dt.timedelta(days=1)))
    if data.get("scenario"):
        qs = qs.filter(call__scenario_slug=data["scenario"])
    if data.get("version"):
        qs = qs.filter(call__scenario_version_id=data["version"])
    if data.get("source"):
        qs = qs.filter(from_agent=data["source"])
    if data.get("target"):
        qs = qs.filter(to_agent=data["target"])
    if data.get("outcome"):
        qs = qs.filter(OUTCOME_Q[data["outcome"]]())
    for word in HandoffFilter.words(data.get("q") or ""):
        qs = qs.filter(reason__icontains=word)
    return qs.order_by(F("created_at").desc(), F("id").desc())


def default_period(days: int = 30) -> tuple[dt.date, dt.date]:
    today = timezone.now().date()
    return today - dt.timedelta(days=days - 1), today
