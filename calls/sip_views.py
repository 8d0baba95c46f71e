"""`POST /openai/webhook`: OpenAI's signed webhooks; `realtime.call.incoming` starts a SIP call.

The view only verifies, claims the delivery and hands over to `calls.sip`. Refusals are logged with
their reason: 400 (missing headers, not JSON), 401 (bad, stale or future-dated signature), 503 (no
secret configured). A webhook-id is processed once; a replay or a concurrent retry gets 200 and is
ignored, and a delivery that failed is released so OpenAI's retry is processed.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from calls import sip

logger = logging.getLogger(__name__)


@csrf_exempt
async def openai_webhook(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return JsonResponse({"error": "POST only"}, status=405)
    headers = {key.lower(): value for key, value in request.headers.items()}
    try:
        event = sip.verify_webhook(request.body, headers)
    except sip.WebhookRefused as refused:
        log = logger.error if refused.status >= 500 else logger.warning
        log("OpenAI webhook refused (%s): %s", refused.status, refused.reason)
        return JsonResponse({"error": "webhook refused"}, status=refused.status)
    webhook_id = headers["webhook-id"]
    if not await sip.claim_webhook(webhook_id):
        logger.info("OpenAI webhook %s already processed (replay or retry); ignored", webhook_id)
        return JsonResponse({"status": "duplicate"})
    if event.type != "realtime.call.incoming":
        logger.info("OpenAI webhook %s of type %s ignored", webhook_id, event.type)
        return JsonResponse({"status": "ignored"})
    try:
        call_id, sip_headers = incoming_call_fields(event)
    except ValueError as error:  # signed, but not the shape of an incoming call: release for a retry
        await sip.release_webhook(webhook_id)
        logger.warning("OpenAI webhook %s refused (400): %s", webhook_id, error)
        return JsonResponse({"error": "malformed realtime.call.incoming event"}, status=400)
    try:
        call_pk = await sip.handle_incoming_call(call_id, sip_headers)
    except Exception:
        await sip.release_webhook(webhook_id)
        logger.exception("OpenAI webhook %s: SIP call %s could not be handled", webhook_id, call_id)
        return JsonResponse({"error": "could not handle the call"}, status=500)
    return JsonResponse({"status": "accepted" if call_pk else "not_accepted", "call": call_pk})


def incoming_call_fields(event: object) -> tuple[str, list[tuple[str, str]]]:
    """The call id and SIP headers of a `realtime.call.incoming` event; ValueError if it has another shape
    (the SDK builds the event without validating it)."""

    def field(value: object, name: str) -> object:
        return value.get(name) if isinstance(value, dict) else getattr(value, name, None)

    data = field(event, "data")
    call_id, headers = field(data, "call_id"), field(data, "sip_headers")
    if not isinstance(call_id, str) or not call_id or not isinstance(headers, list):
        raise ValueError("data needs a call_id (string) and sip_headers (list)")
    pairs = [(field(header, "name"), field(header, "value")) for header in headers]
    if not all(isinstance(name, str) and isinstance(value, str) for name, value in pairs):
        raise ValueError("each SIP header needs a string name and value")
    return call_id, pairs  # type: ignore[return-value]
