"""Celery work of live calls: summaries, escalation webhooks and the reaper of lost calls (session
recreation is the engine's alone).

Every task is safe to run twice or on several workers at once: work is claimed with a conditional
UPDATE (`filter(...).update(...)` that changes one row or none) before it is done.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import Any

import httpx
import openai
from celery import shared_task
from django.conf import settings
from django.utils import timezone

from calls import actions
from calls.models import Call, Summary, TranscriptItem
from realtime.context import transcript_lines

logger = logging.getLogger(__name__)

#: Wrap-up codes a post-call summary may give; anything else is recorded as "other".
DISPOSITIONS = (
    "resolved", "escalated", "transferred", "follow_up", "abandoned", "no_conversation", "other",
)

#: Channel-layer message types the call consumers handle.
SUMMARY_MESSAGE = "call.summary"
HANGUP_MESSAGE = "call.hangup"

SUMMARY_INSTRUCTIONS = (
    "You write the wrap-up note of a contact-center call from its transcript. Answer in JSON with "
    "'summary' (three sentences at most: who called, what they wanted, what was done) and "
    "'disposition', one of: " + ", ".join(DISPOSITIONS) + "."
)
ROLLING_INSTRUCTIONS = (
    "Summarise this part of a live contact-center call so an agent can carry on without it: the "
    "caller's identity and verification state, what they asked, facts found (order numbers, amounts, "
    "dates), what was promised. At most 120 words, plain text."
)

SUMMARY_SCHEMA = {
    "type": "object",
    "properties": {
        "summary": {"type": "string"},
        "disposition": {"type": "string", "enum": list(DISPOSITIONS)},
    },
    "required": ["summary", "disposition"],
    "additionalProperties": False,
}

# Upstream failures worth retrying (the model or network had a bad moment).
RETRYABLE = (openai.APIConnectionError, openai.APITimeoutError, openai.InternalServerError,
             openai.RateLimitError, httpx.TransportError)


class EscalationWebhookFailed(Exception):
    pass


def _transcript_text(turns: list[dict[str, Any]]) -> str:
    """The transcript as the summariser model reads it, in the engine's extractive summary's words."""
    rows = [(str(t.get("role") or ""), str(t.get("agent") or ""), str(t.get("text") or "")) for t in turns]
    return "\n".join(transcript_lines(rows))


def _supervisor_text(instructions: str, text: str, *, schema: dict[str, Any] | None = None) -> str:
    """One Responses API call to the supervisor text model at OPENAI_BASE_URL."""
    from calls.upstream import openai_client

    kwargs: dict[str, Any] = {}
    if schema is not None:
        kwargs["text"] = {"format": {"type": "json_schema", "name": "call_summary", "schema": schema, "strict": True}}
    response = openai_client(timeout=settings.SUPERVISOR_TIMEOUT_SECONDS * 4).responses.create(
        model=settings.SUPERVISOR_DEFAULT_MODEL, instructions=instructions, input=text, **kwargs
    )
    return response.output_text.strip()


def _parse_summary(output: str) -> tuple[str, str]:
    """(summary, disposition) from the model's JSON; plain text is kept as the summary."""
    try:
        data = json.loads(output)
    except ValueError:
        return output, "other"
    if not isinstance(data, dict):
        return output, "other"
    disposition = str(data.get("disposition") or "other")
    return str(data.get("summary") or "").strip() or output, disposition if disposition in DISPOSITIONS else "other"


@shared_task(bind=True, autoretry_for=RETRYABLE, retry_backoff=2, retry_backoff_max=120, max_retries=6,
             ignore_result=True)
def summarize_call(self: Any, call_id: int) -> str:
    """Post-call summary and disposition of an ended call, once. Its result is read by nobody
    (the summary is the record): not stored. A call with no words never gets here
    (`actions.do_end_call` writes its summary)."""
    if Summary.objects.filter(call_id=call_id, kind=Summary.Kind.POST_CALL).exists():
        return "exists"
    if not actions.do_claim_summary(call_id, self.request.id or "eager"):
        return "claimed elsewhere"
    turns = list(TranscriptItem.objects.filter(call_id=call_id).order_by("created_at", "id")
                 .values("role", "text", "agent"))
    text = _transcript_text(turns)
    if not text:  # only empty lines
        actions.do_record_summary(call_id, kind=Summary.Kind.POST_CALL, text=actions.NO_CONVERSATION,
                                  disposition="no_conversation")
        return "no_conversation"
    end_reason = Call.objects.filter(pk=call_id).values_list("end_reason", flat=True).get()
    output = _supervisor_text(SUMMARY_INSTRUCTIONS, f"Call ended: {end_reason}\n\n{text}", schema=SUMMARY_SCHEMA)
    summary, disposition = _parse_summary(output)
    actions.do_record_summary(call_id, kind=Summary.Kind.POST_CALL, text=summary, disposition=disposition,
                              model=settings.SUPERVISOR_DEFAULT_MODEL)
    return disposition


@shared_task(bind=True, autoretry_for=RETRYABLE, retry_backoff=1, retry_backoff_max=10, max_retries=3)
def summarize_context(self: Any, call_id: int, request_id: str, turns: list[dict[str, Any]],
                      previous_summary: str = "") -> str:
    """Rolling context summary for a live call, delivered to its consumer through the channel layer."""
    text = _transcript_text(turns)
    if previous_summary:
        text = f"Summary so far: {previous_summary}\n\n{text}"
    summary = _supervisor_text(ROLLING_INSTRUCTIONS, text)
    actions.do_record_summary(call_id, kind=Summary.Kind.ROLLING, text=summary,
                              model=settings.SUPERVISOR_DEFAULT_MODEL)
    actions.send_to_call(call_id, {"type": SUMMARY_MESSAGE, "request_id": request_id, "text": summary})
    return summary


@shared_task(bind=True, max_retries=5)
def post_escalation(self: Any, escalation_id: int) -> str:
    """POST an escalation to its webhook. Claimed before posting, so it is never posted twice."""
    escalation = actions.do_claim_escalation(escalation_id)
    if escalation is None:
        return "not pending"
    call = escalation.call
    body = {
        "escalation_id": escalation.pk,
        "call_id": escalation.call_id,
        "scenario": call.scenario_slug if call else "",
        "channel": call.channel if call else "",
        "caller_id": call.caller_id if call else "",
        "reason": escalation.reason,
        "source": escalation.source,
        "agent": escalation.agent,
        "created_at": escalation.created_at.isoformat(),
    }
    try:
        response = httpx.post(
            escalation.webhook_url, json=body, follow_redirects=False,
            timeout=settings.ESCALATION_WEBHOOK_TIMEOUT_SECONDS,
            headers={"Idempotency-Key": f"escalation-{escalation.pk}"},
        )
        status_code: int | None = response.status_code
        ok = 200 <= response.status_code < 300
    except httpx.HTTPError as error:
        status_code, ok = None, False
        logger.warning("escalation %s webhook failed: %s", escalation_id, type(error).__name__)
    final = self.request.retries >= self.max_retries
    actions.do_finish_escalation(escalation_id, ok=ok, status_code=status_code, final=final)
    if ok:
        logger.info("escalation %s posted (HTTP %s)", escalation_id, status_code)
        return "posted"
    if final:
        logger.error("escalation %s webhook gave up after %s attempts", escalation_id, escalation.attempts)
        return "failed"
    raise self.retry(countdown=min(2 ** self.request.retries, 60))


@shared_task
def reap_lost_calls() -> list[int]:
    """End calls whose consumer stopped sending heartbeats (end reason "lost").

    A call found silent is looked at again CALL_REAPER_CONFIRM_SECONDS later and ended only if it
    is still silent: right after a database outage every live call looks silent, and a consumer
    whose worker is alive writes its heartbeat within a second of the database coming back
    (`calls.live.keep_heartbeat`), so it is spared; a dead worker's calls stay silent and are ended."""
    since = timezone.now() - timedelta(seconds=settings.CALL_HEARTBEAT_TIMEOUT_SECONDS)
    silent = actions.live_calls_without_heartbeat(since)
    if silent and settings.CALL_REAPER_CONFIRM_SECONDS > 0:
        time.sleep(settings.CALL_REAPER_CONFIRM_SECONDS)
        still = actions.live_calls_without_heartbeat(since, among=silent)
        if spared := sorted(set(silent) - set(still)):
            logger.warning("calls %s wrote their heartbeat again (a database outage, not a lost worker): "
                           "not reaped", spared)
        silent = still
    reaped = [call_id for call_id in silent if actions.do_end_call(call_id, "lost")]
    if reaped:
        logger.warning("reaped lost calls %s", reaped)
    return reaped
