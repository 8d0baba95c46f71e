"""HTTP endpoints of live calls: browser call tokens, the Twilio voice webhook, client secrets.

Views only parse input, check who is asking and call actions; records are written in calls.actions.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import httpx
import openai
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
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
from realtime.spec import ScenarioSpec

logger = logging.getLogger(__name__)

BROWSER_WS_PATH = "/ws/calls/browser/"
LINE_NOT_AVAILABLE = "Sorry, this line is not available."
TOO_MANY_CALLS = "Sorry, we cannot take your call right now. Please try again in a few minutes."


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
    call_sid = request.POST.get("CallSid", "").strip()
    if not call_sid:
        logger.warning("twilio voice webhook refused: no CallSid")
        return HttpResponse("CallSid is required", status=400, content_type="text/plain")
    caller = request.POST.get("From", "")
    window = settings.TWILIO_VOICE_RATE_WINDOW_SECONDS
    # One request per CallSid creates the call: a concurrent repeat finds the claim and is refused;
    # a later one finds the call (looked up under the claim, so none slips between). The claim is
    # taken with the rate limits' counts, in one round trip to the cache.
    claim = f"twilio:voice:claim:{call_sid}"
    limited, claimed = _count_and_claim(
        [(f"twilio:voice:caller:{caller[:64]}", settings.TWILIO_VOICE_CALLER_RATE_LIMIT, window),
         ("twilio:voice:all", settings.TWILIO_VOICE_RATE_LIMIT, window)], claim, 30)
    if limited:
        if claimed:
            cache.delete(claim)
        logger.warning("twilio voice webhook: call %s from %s refused: rate limit", call_sid, caller)
        return HttpResponse(say_and_hangup_twiml(TOO_MANY_CALLS), content_type="text/xml")
    if not claimed:
        if (repeat := _repeat_of_call(call_sid)) is not None:
            return repeat
        logger.warning("twilio voice webhook: call %s refused: a request for it is being answered", call_sid)
        return HttpResponse("this call is being answered", status=409, content_type="text/plain")
    try:
        if (repeat := _repeat_of_call(call_sid)) is not None:
            return repeat
        return _answer_new_call(request, call_sid, caller)
    finally:
        cache.delete(claim)


def _answer_new_call(request: HttpRequest, call_sid: str, caller: str) -> HttpResponse:
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
        caller_id=caller, external_id=call_sid,
        codec="pcmu", status=Call.Status.RINGING,
    )
    return _connect_stream(call)


def _connect_stream(call: Call) -> HttpResponse:
    token = tokens.twilio_stream_token(call_id=call.pk, scenario=call.scenario_slug)
    # The token travels in the URL and as a custom parameter: Twilio may drop query strings.
    twiml = connect_stream_twiml(
        media_stream_url(settings.PUBLIC_BASE_URL, token), {"scenario": call.scenario_slug, "token": token}
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


def _repeat_of_call(call_sid: str) -> HttpResponse | None:
    """The answer to a repeated webhook of a call that exists: the same call's TwiML while it still
    rings (its media stream not yet connected; one stream only can ever join it), a refusal once
    it was answered or ended. None when the CallSid is new."""
    call = (Call.objects.filter(channel=Call.Channel.TWILIO, external_id=call_sid[:128])
            .only("pk", "status", "started_at", "scenario_slug").order_by("pk").first())
    if call is None:
        return None
    fresh = timezone.now() - call.started_at < timedelta(seconds=settings.CALL_TOKEN_MAX_AGE_SECONDS)
    if call.status == Call.Status.RINGING and fresh:
        logger.info("twilio voice webhook: call %s repeated while ringing; call %s answered again", call_sid, call.pk)
        return _connect_stream(call)
    logger.warning("twilio voice webhook: call %s repeated (call %s is %s); refused", call_sid, call.pk, call.status)
    return HttpResponse("this call was already answered", status=409, content_type="text/plain")


def _count_and_claim(limits: list[tuple[str, int, int]], claim: str, claim_s: int) -> tuple[bool, bool]:
    """Count one more request in each fixed window of ``limits`` (key, limit, window seconds) and
    add ``claim`` (for ``claim_s``); (whether a limit is passed, whether the claim was ours). On
    Redis it is one atomic round trip (MULTI: SET NX EX, INCR per window; SET NX EX the claim);
    elsewhere the cache's own calls."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        counted = [_rate_limited(key, limit, window) for key, limit, window in limits]  # every window counts
        limited = any(counted)
        return limited, bool(cache.add(claim, 1, timeout=claim_s))
    pipe = backend._cache.get_client(write=True).pipeline(transaction=True)
    for key, _, window in limits:
        name = backend.make_and_validate_key(key)
        pipe.set(name, 0, ex=window, nx=True)
        pipe.incr(name)
    pipe.set(backend.make_and_validate_key(claim), 1, ex=claim_s, nx=True)
    answers = pipe.execute()
    counts = answers[1:-1:2]
    return any(count > limit for count, (_, limit, _) in zip(counts, limits, strict=True)), bool(answers[-1])


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
    """Mint an ephemeral Realtime client secret (60 s) for a live call of the asking staff member.

    A client secret is direct, billed access to the upstream with an agent's instructions, so it is
    for staff only, and only for a call of their own that is still live (POST `call=<id>`): the
    secret carries the session of that call's current agent, from the spec the call runs with.
    Non-staff get 403; a call that is not theirs 404; an ended call 409."""
    if (refused := _login_required_json(request)) is not None:
        return refused
    if not request.user.is_staff:
        return JsonResponse({"error": "client secrets are for staff only"}, status=403)
    try:
        call_pk = int(str(_request_data(request).get("call") or ""))
    except ValueError:
        return JsonResponse({"error": "name the call (call=<id>) the client secret is for"}, status=400)
    call = Call.objects.filter(pk=call_pk, user=request.user).first()
    if call is None:
        return JsonResponse({"error": "no such call of yours"}, status=404)
    if not call.is_live:
        return JsonResponse({"error": "the call has ended"}, status=409)
    if _rate_limited(f"calls:client-secret:{request.user.pk}", settings.CLIENT_SECRET_RATE_LIMIT,
                     settings.CLIENT_SECRET_RATE_WINDOW_SECONDS):
        return JsonResponse({"error": "too many client secrets; try again shortly"}, status=429)
    try:
        spec = ScenarioSpec.from_dict(call.spec)
        agent = spec.agents.get(call.current_agent) or spec.root
    except (KeyError, TypeError, ValueError):
        return JsonResponse({"error": "the call's configuration cannot be read"}, status=409)
    session = dict(agent.session)
    session.setdefault("type", "realtime")
    try:
        secret = openai_client(timeout=10.0).realtime.client_secrets.create(
            expires_after={"anchor": "created_at", "seconds": settings.CLIENT_SECRET_TTL_SECONDS},
            session=session,  # type: ignore[arg-type]
        )
    except (openai.OpenAIError, httpx.HTTPError) as error:  # the upstream's failure must not leak details (or keys) to the page
        logger.warning("client secret for call %s failed: %s", call.pk, type(error).__name__)
        return JsonResponse({"error": "the realtime service did not issue a client secret"}, status=502)
    logger.info("client secret issued to %s for call %s (agent %s)", request.user.get_username(), call.pk, agent.slug)
    return JsonResponse({
        "value": secret.value,
        "expires_at": secret.expires_at,
        "call": call.pk,
        "scenario": spec.slug,
        "agent": agent.slug,
        "model": session.get("model", ""),
    })
