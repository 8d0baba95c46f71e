"""`POST /openai/webhook`: OpenAI's signed webhooks; `realtime.call.incoming` starts a SIP call.

The view only verifies, claims the delivery, validates the event and hands over to `calls.sip`.
Refusals are logged with their reason: 400 (missing headers, not JSON, a signed event whose call is
malformed), 401 (bad, stale or future-dated signature), 503 (no secret configured). A webhook-id is
processed once; a replay or a concurrent retry gets 200 and is ignored. The event is validated
inside the claim, and a delivery that was refused or failed is released, so OpenAI's retry is
processed.
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
    # From here the webhook-id is claimed: every way out that did not process it releases the claim,
    # so OpenAI's retry of the delivery is processed rather than dropped as a duplicate.
    try:
        incoming = sip.incoming_call(request.body)
    except sip.WebhookRefused as refused:
        await sip.release_webhook(webhook_id)
        logger.warning("OpenAI webhook %s refused (%s): %s", webhook_id, refused.status, refused.reason)
        return JsonResponse({"error": "webhook refused", "detail": refused.reason}, status=refused.status)
    except BaseException:
        await sip.release_webhook(webhook_id)
        raise
    if incoming is None:
        logger.info("OpenAI webhook %s of type %s ignored", webhook_id, getattr(event, "type", "?"))
        return JsonResponse({"status": "ignored"})
    call_id, sip_headers = incoming
    try:
        call_pk = await sip.handle_incoming_call(call_id, sip_headers)
    except Exception:
        await sip.release_webhook(webhook_id)
        logger.exception("OpenAI webhook %s: SIP call %s could not be handled", webhook_id, call_id)
        return JsonResponse({"error": "could not handle the call"}, status=500)
    except BaseException:
        await sip.release_webhook(webhook_id)
        raise
    return JsonResponse({"status": "accepted" if call_pk else "not_accepted", "call": call_pk})

