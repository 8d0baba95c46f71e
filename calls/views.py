"""HTTP endpoints of live calls: browser call tokens, the Twilio voice webhook, client secrets.

Views only parse input, check who is asking and call actions; records are written in calls.actions.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import openai
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from calls import actions, tokens
from calls.live import LIVE, REFUSED_AT_CAPACITY, REFUSED_SHUTTING_DOWN, refusal_message
from calls.models import Call
from calls.scenarios import UnknownScenario, compile_for_call, resolve_inbound_scenario
from calls.twilio import (
    connect_stream_twiml,
    dial_twiml,
    media_stream_url,
    say_and_hangup_twiml,
    signature_is_valid,
)
from calls.upstream import openai_client
from contactcenter import metrics

logger = logging.getLogger(__name__)

BROWSER_WS_PATH = "/ws/calls/browser/"
LINE_NOT_AVAILABLE = "Sorry, this line is not available."


def _request_data(request: HttpRequest) -> dict[str, Any]:
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            return {}
        return data if isinstance(data, dict) else {}
    return request.POST.dict()


def _login_required_json(request: HttpRequest) -> JsonResponse | None:
    if not request.user.is_authenticated:
        return JsonResponse({"error": "login required"}, status=401)
    return None


@require_POST
def browser_call_token(request: HttpRequest) -> JsonResponse:
    """A 60-second token for the browser call WebSocket (CSRF-protected, login required)."""
    if (refused := _login_required_json(request)) is not None:
        return refused
    data = _request_data(request)
    slug = str(data.get("scenario") or "")
    codec = str(data.get("codec") or "pcm16")
    if codec not in tokens.CODECS:
        return JsonResponse({"error": f"codec must be one of {', '.join(tokens.CODECS)}"}, status=400)
    from agents.models import Scenario

    if not slug or not Scenario.objects.filter(slug=slug).exists():
        return JsonResponse({"error": "unknown scenario"}, status=404)
    token = tokens.browser_token(user_id=request.user.pk, scenario=slug, codec=codec)
    return JsonResponse({"token": token, "ws_url": f"{BROWSER_WS_PATH}?token={token}"})


def _twilio_urls(request: HttpRequest) -> list[str]:
    """URLs Twilio may have signed: the public one (behind a proxy) and the one Django saw."""
    public = settings.PUBLIC_BASE_URL.rstrip("/") + request.get_full_path()
    return [public, request.build_absolute_uri()]


@csrf_exempt
@require_POST
def twilio_voice(request: HttpRequest) -> HttpResponse:
    """Answer an incoming phone call with <Connect><Stream> to our media WebSocket.

    The scenario: `?scenario=` on the webhook URL, else the dialled number (`To`), else
    TWILIO_DEFAULT_SCENARIO (see `calls.scenarios.resolve_inbound_scenario`). No scenario: a short
    sorry and a hang-up, with the reason logged."""
    signature = request.headers.get("X-Twilio-Signature", "")
    params = [(name, value) for name in request.POST for value in request.POST.getlist(name)]
    if not signature_is_valid(settings.TWILIO_AUTH_TOKEN, signature, _twilio_urls(request), params):
        logger.warning("twilio voice webhook refused: %s", "no signature" if not signature else "bad signature")
        return HttpResponse("invalid signature", status=403, content_type="text/plain")
    call_sid = request.POST.get("CallSid", "")
    route = resolve_inbound_scenario(
        explicit=request.GET.get("scenario", ""), dialled=request.POST.get("To", ""),
        default=settings.TWILIO_DEFAULT_SCENARIO,
    )
    if not route.slug:
        logger.warning("twilio voice webhook: call %s refused: %s", call_sid, route.reason)
        return HttpResponse(say_and_hangup_twiml(LINE_NOT_AVAILABLE), content_type="text/xml")
    try:
        scenario, spec = compile_for_call(route.slug)
    except UnknownScenario as error:
        logger.warning("twilio voice webhook: call %s refused (%s): %s", call_sid, route.reason, error)
        return HttpResponse(say_and_hangup_twiml(LINE_NOT_AVAILABLE), content_type="text/xml")
    if not LIVE.has_room():
        return _refuse_twilio_call(request, spec, scenario, call_sid)
    logger.info("twilio voice webhook: call %s runs scenario %s (%s)", call_sid, spec.slug, route.reason)
    call = actions.do_start_call(
        channel=Call.Channel.TWILIO, spec=spec.to_dict(), scenario=scenario,
        caller_id=request.POST.get("From", ""), external_id=call_sid,
        codec="pcmu", status=Call.Status.RINGING,
    )
    token = tokens.twilio_stream_token(call_id=call.pk, scenario=spec.slug)
    # The token travels in the URL and as a custom parameter: Twilio may drop query strings.
    twiml = connect_stream_twiml(
        media_stream_url(settings.PUBLIC_BASE_URL, token), {"scenario": spec.slug, "token": token}
    )
    return HttpResponse(twiml, content_type="text/xml")


def _refuse_twilio_call(request: HttpRequest, spec: Any, scenario: Any, call_sid: str) -> HttpResponse:
    """Past this worker's capacity: the call is recorded as refused and the caller hears a short
    sorry and is hung up on, or is put through to the overflow number when one is set."""
    reason = REFUSED_SHUTTING_DOWN if LIVE.draining else REFUSED_AT_CAPACITY
    metrics.call_refused("twilio", reason)
    actions.do_refuse_call(channel=Call.Channel.TWILIO, spec=spec.to_dict(), scenario=scenario,
                           caller_id=request.POST.get("From", ""), external_id=call_sid, codec="pcmu", reason=reason)
    logger.warning("twilio voice webhook: call %s refused: %s (%d live calls on this worker)", call_sid, reason,
                   len(LIVE))
    if settings.TWILIO_OVERFLOW_NUMBER:
        return HttpResponse(dial_twiml(settings.TWILIO_OVERFLOW_NUMBER), content_type="text/xml")
    return HttpResponse(say_and_hangup_twiml(refusal_message(reason)), content_type="text/xml")


def _rate_limited(key: str, limit: int, window_s: int) -> bool:
    """Fixed-window counter in the cache (Redis when REDIS_URL is set, shared by all processes)."""
    cache.add(key, 0, timeout=window_s)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window_s)
        count = 1
    return count > limit


@require_POST
def client_secret(request: HttpRequest) -> JsonResponse:
    """Mint an ephemeral Realtime client secret for a scenario's root agent session (60 s)."""
    if (refused := _login_required_json(request)) is not None:
        return refused
    if _rate_limited(f"calls:client-secret:{request.user.pk}", settings.CLIENT_SECRET_RATE_LIMIT,
                     settings.CLIENT_SECRET_RATE_WINDOW_SECONDS):
        return JsonResponse({"error": "too many client secrets; try again shortly"}, status=429)
    slug = str(_request_data(request).get("scenario") or "")
    try:
        _, spec = compile_for_call(slug)
    except UnknownScenario:
        return JsonResponse({"error": "unknown scenario"}, status=404)
    session = dict(spec.root.session)
    session.setdefault("type", "realtime")
    try:
        secret = openai_client(timeout=10.0).realtime.client_secrets.create(
            expires_after={"anchor": "created_at", "seconds": settings.CLIENT_SECRET_TTL_SECONDS},
            session=session,  # type: ignore[arg-type]
        )
    except (openai.OpenAIError, httpx.HTTPError) as error:  # the upstream's failure must not leak details (or keys) to the page
        logger.warning("client secret for scenario %s failed: %s", slug, type(error).__name__)
        return JsonResponse({"error": "the realtime service did not issue a client secret"}, status=502)
    return JsonResponse({
        "value": secret.value,
        "expires_at": secret.expires_at,
        "scenario": spec.slug,
        "agent": spec.root_agent,
        "model": session.get("model", ""),
    })
