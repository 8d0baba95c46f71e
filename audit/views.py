"""The audit pages (staff only, like the dashboard): handoffs across calls with filters, their
per-edge analytics, two configuration versions side by side, and the filtered set exported as CSV
or JSON Lines (streamed)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from agents.models import Scenario, ScenarioVersion
from audit import charts
from audit.analytics import Figures, handoff_figures
from audit.export import FORMATS, DepthCaps, handoff_rows
from audit.filters import HandoffFilter
from calls.dashboard_views import supervisor_required
from calls.models import HandoffEvent

PAGE_SIZE = 50
LIST_VALUES = ("id", "created_at", "call_id", "call__scenario_slug", "call__scenario_version_id",
               "call__scenario_version__number", "call__spec_hash", "from_agent", "to_agent", "reason", "depth",
               "fallback", "applied", "applied_ms", "apply_error")


class CountedPaginator(Paginator):
    """Counts the filtered handoffs alone, without the joins the listed columns need."""

    def __init__(self, rows: Any, per_page: int, *, count: int) -> None:
        super().__init__(rows, per_page)
        self._count = count

    @property
    def count(self) -> int:  # type: ignore[override]
        return self._count


def _choices(form: HandoffFilter) -> dict[str, Any]:
    """What the filter form offers: scenarios, the chosen scenario's versions, its agents."""
    slug = form.cleaned_data.get("scenario") if form.is_valid() else form.data.get("scenario")
    if not slug and form.is_valid() and form.cleaned_data.get("version"):
        slug = ScenarioVersion.objects.filter(pk=form.cleaned_data["version"]).values_list(
            "scenario_slug", flat=True).first()
    scenarios = sorted(set(Scenario.objects.values_list("slug", flat=True))
                       | set(ScenarioVersion.objects.order_by().values_list("scenario_slug", flat=True).distinct()))
    versions = list(ScenarioVersion.objects.filter(scenario_slug=slug).order_by("-number")
                    .only("pk", "number", "spec_hash", "created_at", "scenario_slug")) if slug else []
    agents = sorted({a for v in versions[:5] for a in (v.spec.get("agents") or {})}) if versions else []
    return {"scenarios": scenarios, "versions": versions, "agents": agents}


def _form(request: HttpRequest) -> HandoffFilter:
    return HandoffFilter(request.GET or None)


@require_GET
@supervisor_required
def handoffs(request: HttpRequest) -> HttpResponse:
    form = _form(request)
    bound_ok = form.is_valid() if form.is_bound else True
    rows: list[dict[str, Any]] = []
    page = None
    if bound_ok:
        qs = form.queryset() if form.is_bound else HandoffFilter({}).queryset()
        paginator = CountedPaginator(qs.values(*LIST_VALUES), PAGE_SIZE, count=qs.order_by().count())
        page = paginator.get_page(request.GET.get("page"))
        caps = DepthCaps()
        for row in page.object_list:
            cap = caps(row["call__spec_hash"])
            row["depth_cap"] = bool(row["fallback"] and cap is not None and row["depth"] > cap)
            row["call_url"] = reverse("calls:dashboard_call", args=[row["call_id"]]) if row["call_id"] else ""
            rows.append(row)
    query = form.query_string() if form.is_bound else ""
    context = {"form": form, "rows": rows, "page": page, "query": query, **_choices(form)}
    return render(request, "audit/handoffs.html", context, status=200 if bound_ok else 400)


def _graph_spec(form: HandoffFilter) -> dict[str, Any] | None:
    """The configuration the graph is drawn from: the chosen version, else the scenario's latest."""
    data = form.cleaned_data
    if data.get("version"):
        return ScenarioVersion.objects.filter(pk=data["version"]).values_list("spec", flat=True).first()
    if data.get("scenario"):
        return (ScenarioVersion.objects.filter(scenario_slug=data["scenario"]).order_by("-number")
                .values_list("spec", flat=True).first())
    return None


def _pictures(figures: Figures, spec: dict[str, Any] | None) -> dict[str, Any]:
    return {"graph_svg": mark_safe(charts.edge_graph(figures.edges, spec)),
            "days_svg": mark_safe(charts.daily_bars(figures.days))}


@require_GET
@supervisor_required
def analytics(request: HttpRequest) -> HttpResponse:
    form = _form(request)
    context: dict[str, Any] = {"form": form, "ended_after_seconds": settings.AUDIT_ENDED_AFTER_HANDOFF_SECONDS,
                               **_choices(form)}
    if form.is_bound and not form.is_valid():
        return render(request, "audit/analytics.html", context, status=400)
    if not form.is_bound:
        form = HandoffFilter({})
        form.is_valid()
    figures = handoff_figures(form.queryset())
    spec = _graph_spec(form)
    context.update(figures=figures, query=form.query_string(), scenario=form.cleaned_data.get("scenario"),
                   **(_pictures(figures, spec) if spec or figures.edges else {}))
    return render(request, "audit/analytics.html", context)


@require_GET
@supervisor_required
def compare(request: HttpRequest) -> HttpResponse:
    """Two versions of a scenario side by side over the same period and filters."""
    form = _form(request)
    context: dict[str, Any] = {"form": form, **_choices(form)}
    ids = [request.GET.get("a", ""), request.GET.get("b", "")]
    problems = []
    if not form.is_valid():
        problems.append("The filter is not valid.")
    versions = []
    for label, raw in zip(("first", "second"), ids, strict=True):
        version = ScenarioVersion.objects.filter(pk=int(raw)).first() if raw.isdigit() else None
        if version is None:
            problems.append(f"Choose the {label} version.")
        versions.append(version)
    if not problems and versions[0].scenario_slug != versions[1].scenario_slug:  # type: ignore[union-attr]
        problems.append("Both versions must belong to the same scenario.")
    context["problems"] = problems
    context["a"], context["b"] = versions
    if problems:
        return render(request, "audit/compare.html", context, status=400 if request.GET else 200)
    sides = []
    for version in versions:
        assert version is not None
        data = {**form.cleaned_data, "scenario": version.scenario_slug, "version": version.pk}
        figures = handoff_figures(HandoffFilter(data).queryset() if HandoffFilter(data).is_valid()
                                  else HandoffEvent.objects.none(), per_day=False)
        sides.append({"version": version, "figures": figures,
                      "graph_svg": mark_safe(charts.edge_graph(figures.edges, version.spec))})
    first, second = sides[0]["figures"].totals, sides[1]["figures"].totals
    measures = [("Fallback rate", first.fallback_rate, second.fallback_rate),
                ("Refusal rate", first.refusal_rate, second.refusal_rate),
                ("Ended right after", _share(first.ended_after, sides[0]["figures"].calls),
                 _share(second.ended_after, sides[1]["figures"].calls))]
    context.update(sides=sides, compare_svg=mark_safe(charts.comparison_bars(
        measures, (versions[0].label, versions[1].label))))  # type: ignore[union-attr]
    a, b = versions
    if a is not None and b is not None and a.scenario_id:
        context["diff_url"] = reverse("admin:agents_scenario_version_diff", args=[a.scenario_id]) + f"?a={a.pk}&b={b.pk}"
    return render(request, "audit/compare.html", context)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@require_GET
@supervisor_required
def export(request: HttpRequest, fmt: str) -> HttpResponse:
    form = HandoffFilter(request.GET)
    if not form.is_valid():
        problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
        return HttpResponseBadRequest(f"The filter is not valid: {problems}\n", content_type="text/plain")
    lines, content_type = FORMATS[fmt]
    response = StreamingHttpResponse(lines(handoff_rows(form.queryset())), content_type=content_type)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="handoffs-{stamp}.{fmt}"'
    response["Cache-Control"] = "no-store"
    return response
