"""The supervisor dashboard: the live calls list and one call's page (staff only).

`GET /dashboard/` lists the live calls (ringing, active) and the recently ended ones; the page
then follows `/ws/dashboard/` (calls/dashboard_consumers.py), fed by the dashboard-wide group to
which `calls.actions` publishes every change of a call's row. `GET /dashboard/calls/<id>/` shows a
call's transcript and breadcrumbs from its event log (CallEvent) and follows
`/ws/dashboard/calls/<id>/?last_seq=N`, which sends what came after N, then the live events.
Supervisor actions (approve, deny, whisper, say, hang up) go over that socket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from calls.models import Call, CallEvent, SupervisorAction, ToolInvocation

RECENT_ENDED_CALLS = 25
LIVE_STATUSES = (Call.Status.RINGING, Call.Status.ACTIVE)


def is_supervisor(user: Any) -> bool:
    """Who may watch and act on calls: active staff users."""
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)


def supervisor_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anonymous: to the login page. Logged in but not staff: 403."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not is_supervisor(request.user):
            raise PermissionDenied("The dashboard is for supervisors (staff users).")
        return view(request, *args, **kwargs)

    return wrapped


def dashboard_rows(calls: Iterable[Call]) -> list[dict[str, Any]]:
    return [call.dashboard_row() for call in calls]


def calls_snapshot() -> dict[str, list[dict[str, Any]]]:
    """The live calls (oldest first) and the most recently ended ones, as dashboard rows."""
    waiting = Count("tool_invocations", filter=Q(tool_invocations__status=ToolInvocation.Status.AWAITING_APPROVAL))
    live = Call.objects.filter(status__in=LIVE_STATUSES).annotate(pending=waiting).order_by("started_at")
    ended = Call.objects.filter(status=Call.Status.ENDED).order_by("-ended_at")[:RECENT_ENDED_CALLS]
    return {"live": dashboard_rows(live), "recent": dashboard_rows(ended)}


@require_GET
@supervisor_required
def dashboard(request: HttpRequest) -> HttpResponse:
    snapshot = calls_snapshot()
    return render(request, "dashboard/dashboard.html", {**snapshot, "snapshot": snapshot})


# --- one call ---------------------------------------------------------------------------------------


def timeline(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """A call's events as what its page lists: one entry per turn (a re-recorded turn, e.g.
    truncated, replaces its text), one per tool call (its latest state), one per breadcrumb.
    Usage and latency change the call's figures, not the timeline."""
    entries: list[dict[str, Any]] = []
    keyed: dict[str, dict[str, Any]] = {}
    for event in events:
        kind = event.get("type")
        if kind in ("usage", "latency"):
            continue
        key = ""
        if kind == "transcript":
            key = f"item:{event['item_id']}"
        elif kind == "tool" and event.get("tool_call_id"):
            key = f"tool:{event['tool_call_id']}"
        if key and key in keyed:
            keyed[key].update(event)
            continue
        entry = dict(event)
        if kind == "caller.idle":
            entry["silent_s"] = silent_seconds(entry.get("ms"))
        entries.append(entry)
        if key:
            keyed[key] = entry
    return entries


def silent_seconds(ms: Any) -> int:
    """How long a silent caller was silent, in whole seconds (halves up, as the page's Math.round)."""
    return (max(0, int(ms or 0)) + 500) // 1000


def cached_tokens(usage: dict[str, Any]) -> int:
    """Cached input tokens of an engine usage record (realtime.usage: text_in_cached, audio_in_cached)."""
    return int(usage.get("text_in_cached") or 0) + int(usage.get("audio_in_cached") or 0)


def call_figures(call: Call) -> dict[str, Any]:
    """Usage per agent (tokens) for the call page."""
    agents = []
    for agent, usage in sorted((call.usage or {}).items()):
        agents.append({
            "agent": agent,
            "input_tokens": int(usage.get("input_tokens") or 0),
            "output_tokens": int(usage.get("output_tokens") or 0),
            "cached_tokens": cached_tokens(usage),
        })
    return {"usage_by_agent": agents}


@require_GET
@supervisor_required
def call_detail(request: HttpRequest, call_id: int) -> HttpResponse:
    with transaction.atomic():
        # Every publish updates the call's row: holding it, the figures and the log agree.
        call = get_object_or_404(Call.objects.select_for_update(), pk=call_id)
        logged = list(CallEvent.objects.filter(call=call).order_by("seq").values_list("seq", "event"))
    last_seq = logged[-1][0] if logged else 0
    context = {
        "call": call,
        "row": call.dashboard_row(),
        "entries": timeline(event for _, event in logged),
        "last_seq": last_seq,
        "post_call_summary": call.summaries.filter(kind="post_call").first(),
        "actions": SupervisorAction.objects.filter(call=call).order_by("-created_at")[:50],
        **call_figures(call),
    }
    return render(request, "dashboard/call.html", context)
