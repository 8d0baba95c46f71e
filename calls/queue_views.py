"""The queue of human agents on the dashboard: the page, its state (polled), a human agent's
availability, and accepting a waiting call (the first to accept gets it). Staff only; accepting
needs the "Human agents" group and being marked available."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from calls import actions
from calls.dashboard_views import supervisor_required
from calls.models import HumanAgentPresence, QueueEntry, Voicemail
from calls.takeover import is_human_agent


def _state(user: Any) -> dict[str, Any]:
    available = HumanAgentPresence.objects.filter(user=user, available=True).exists()
    callbacks = [{"entry_id": e.pk, "call_id": e.call_id, "caller_id": e.call.caller_id, "reason": e.reason[:200],
                  "at": e.ended_at.isoformat() if e.ended_at else ""}
                 for e in QueueEntry.objects.filter(status=QueueEntry.Status.TIMED_OUT, fallback="callback")
                 .select_related("call").order_by("-ended_at")[:20]]
    voicemails = [{"voicemail_id": v.pk, "call_id": v.call_id, "caller_id": v.call.caller_id,
                   "duration_ms": v.duration_ms, "url": f"/dashboard/queue/voicemails/{v.pk}.wav"}
                  for v in Voicemail.objects.select_related("call").defer("audio").order_by("-created_at")[:20]]
    return {"human_agent": is_human_agent(user), "available": available, "waiting": actions.waiting_entries(),
            "callbacks": callbacks, "voicemails": voicemails}


@supervisor_required
@require_GET
def queue_page(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/queue.html", {"state": _state(request.user)})


@supervisor_required
@require_GET
def queue_state(request: HttpRequest) -> JsonResponse:
    return JsonResponse(_state(request.user))


@supervisor_required
@require_GET
def voicemail_audio(request: HttpRequest, voicemail_id: int) -> HttpResponse:
    voicemail = get_object_or_404(Voicemail, pk=voicemail_id)
    response = HttpResponse(bytes(voicemail.audio), content_type="audio/wav")
    response["Cache-Control"] = "private, no-store"
    return response


@supervisor_required
@require_POST
def set_availability(request: HttpRequest) -> JsonResponse:
    if not is_human_agent(request.user):
        return JsonResponse({"error": "only members of the Human agents group take queued calls"}, status=403)
    available = request.POST.get("available") in ("1", "true", "on")
    actions.do_set_available(request.user, available)
    return JsonResponse(_state(request.user))


@supervisor_required
@require_POST
def accept(request: HttpRequest, entry_id: int) -> JsonResponse:
    if not is_human_agent(request.user):
        return JsonResponse({"error": "only members of the Human agents group take queued calls"}, status=403)
    try:
        entry = actions.do_accept_queue_entry(entry_id, user=request.user)
    except actions.SupervisorActionRefused as refused:
        return JsonResponse({"error": str(refused)}, status=409)
    return JsonResponse({"call_id": entry.call_id, "call_url": f"/dashboard/calls/{entry.call_id}/?accepted=1"})
