"""The browser call page: an operator picks a scenario and a codec and calls it from the browser.

The page (templates/calls/call.html, static/calls/) asks ``POST /calls/token/`` for a short-lived
signed token and opens the WebSocket ``/ws/calls/browser/?token=...`` (calls/consumers.py). Nothing
secret reaches the page: no key, no upstream URL, only the scenario list and the token endpoint.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET

from agents.models import Scenario

# The codecs the browser can speak: value, label, sample rate (Hz). pcm16 is the default.
CODECS = [
    ("pcm16", "Wideband: PCM16, 24 kHz", 24000),
    ("pcmu", "Phone line: G.711 mu-law, 8 kHz", 8000),
]
TOKEN_URL = "/calls/token/"


@require_GET
@login_required
@ensure_csrf_cookie
def call_page(request: HttpRequest) -> HttpResponse:
    scenarios = list(Scenario.objects.order_by("name", "slug").values("slug", "name", "description"))
    selected = request.GET.get("scenario", "")
    if selected not in {s["slug"] for s in scenarios}:
        selected = scenarios[0]["slug"] if scenarios else ""
    codec = request.GET.get("codec", "pcm16")
    if codec not in {c[0] for c in CODECS}:
        codec = "pcm16"
    return render(
        request,
        "calls/call.html",
        {
            "scenarios": scenarios,
            "selected_scenario": selected,
            "codecs": CODECS,
            "selected_codec": codec,
            "token_url": TOKEN_URL,
        },
    )
