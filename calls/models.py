"""Records of live calls.

A Call stores the compiled spec it ran with (and its hash), so an audit shows which configuration
handled it. Everything else is an append-only, typed row written by `calls.actions` only. Audit rows
(handoffs, tools, guardrail trips, escalations) point at their call with SET_NULL so the trail
survives the deletion of the call record; users and scenarios are SET_NULL everywhere.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

LOCAL_SUFFIX = " (local)"
"""Usage answered by the local offline engine is kept under "<agent> (local)" in ``Call.usage``."""


class Call(models.Model):
    class Channel(models.TextChoices):
        BROWSER = "browser", "Browser"
        TWILIO = "twilio", "Phone (Twilio)"
        SIP = "sip", "SIP"

    class Status(models.TextChoices):
        RINGING = "ringing", "Ringing"
        ACTIVE = "active", "Active"
        ENDED = "ended", "Ended"

    scenario = models.ForeignKey("agents.Scenario", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="calls")
    scenario_slug = models.CharField(max_length=64, blank=True, db_index=True)
    spec = models.JSONField(default=dict, blank=True)
    spec_hash = models.CharField(max_length=64, blank=True)
    scenario_version = models.ForeignKey(
        "agents.ScenarioVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="calls",
        help_text="The configuration version the call ran with (its spec hash).")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    caller_id = models.CharField(max_length=128, blank=True, help_text="Phone number or user name of the caller.")
    external_id = models.CharField(max_length=128, blank=True, help_text="Twilio CallSid / provider call id.")
    codec = models.CharField(max_length=16, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RINGING, db_index=True)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=64, blank=True)
    current_agent = models.CharField(max_length=64, blank=True)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    usage = models.JSONField(default=dict, blank=True, help_text="Token usage per agent.")
    latency_samples_ms = models.JSONField(default=list, blank=True, help_text="Voice-to-voice latency per turn.")
    latency_p50_ms = models.PositiveIntegerField(null=True, blank=True)
    latency_p95_ms = models.PositiveIntegerField(null=True, blank=True)
    idle_prompts = models.PositiveIntegerField(
        default=0, help_text="Times the caller went silent past the agent's idle timeout (server_vad idle_timeout_ms).")
    last_heartbeat = models.DateTimeField(null=True, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="calls")
    consumer_channel = models.CharField(max_length=255, blank=True)
    last_seq = models.PositiveBigIntegerField(default=0, help_text="Sequence number of the last published event.")
    summary_task_id = models.CharField(max_length=64, blank=True, help_text="Claim of the post-call summary task.")
    words_removed_at = models.DateTimeField(
        null=True, blank=True, help_text="When retention removed the caller's words (transcript, summaries).")

    class Meta:
        ordering = ("-started_at",)
        indexes = (
            models.Index(fields=["status", "last_heartbeat"]),
            models.Index(fields=["ended_at"], condition=Q(words_removed_at__isnull=True),
                         name="call_words_kept_ended_idx"),
            # A phone webhook's repeat finds its call by (channel, provider call id).
            models.Index(fields=["channel", "external_id"], name="call_channel_external_id"),
        )

    def __str__(self) -> str:
        return f"Call {self.pk} ({self.channel}, {self.scenario_slug or 'no scenario'})"

    @property
    def group_name(self) -> str:
        return call_group(self.pk)

    @property
    def is_live(self) -> bool:
        return self.status != self.Status.ENDED

    def limits(self) -> dict[str, Any]:
        return dict(self.spec.get("limits") or {})

    @property
    def silence_window_ms(self) -> int | None:
        """The root agent's server_vad silence window: the part of the voice-to-voice latency
        (measured from the end of the caller's speech) spent waiting to be sure the turn is over."""
        spec = self.spec or {}
        agent = (spec.get("agents") or {}).get(spec.get("root_agent") or "") or {}
        detection = (((agent.get("session") or {}).get("audio") or {}).get("input") or {}).get("turn_detection") or {}
        if detection.get("type") != "server_vad":
            return None
        return int(detection.get("silence_duration_ms") or 500)

    @property
    def has_local_usage(self) -> bool:
        """Part of the call was answered by the local offline engine (priced at 0)."""
        return any(str(agent).endswith(LOCAL_SUFFIX) for agent in (self.usage or {}))

    @property
    def cost_label(self) -> str:
        """The cost as shown: "$0.0123", "local" (all offline, priced 0) or "$0.0123 + local"."""
        amount = f"${self.cost:.4f}" if self.cost < 1 else f"${self.cost:.2f}"
        if not self.has_local_usage:
            return amount
        return "local" if not self.cost else f"{amount} + local"

    def dashboard_row(self) -> dict[str, Any]:
        """What the supervisor dashboard's calls list shows of this call (JSON-safe)."""
        return {
            "id": self.pk,
            "scenario": self.scenario_slug,
            "channel": self.channel,
            "caller_id": self.caller_id,
            "status": self.status,
            "agent": self.current_agent,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "end_reason": self.end_reason,
            "cost": str(self.cost),
            "local": self.has_local_usage,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p95_ms": self.latency_p95_ms,
            "idle_prompts": self.idle_prompts,
            "seq": self.last_seq,
            "pending_approvals": self.pending_approvals(),
        }

    def pending_approvals(self) -> int:
        """Tool calls waiting for a supervisor (annotated as `pending` by list queries)."""
        annotated = getattr(self, "pending", None)
        if annotated is not None:
            return int(annotated)
        if self.status == self.Status.ENDED:
            return 0
        return self.tool_invocations.filter(status="awaiting_approval").count()


def call_group(call_id: int) -> str:
    """The channel group of a call's own consumer: supervisors, listeners and Celery reach the live
    call there (hang-up, whisper, summary, recreate, listen, take-over). Not its published events:
    those go to `call_events_group`, so the consumer is never sent its own records back."""
    return f"call.{call_id}"


def call_events_group(call_id: int) -> str:
    """The channel group of a call's published events (`call.event`): the call's dashboard pages."""
    return f"call.{call_id}.events"


class SessionSegment(models.Model):
    """One Realtime session of a call; a call has several when sessions are recreated."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="segments")
    index = models.PositiveIntegerField()
    model = models.CharField(max_length=64, blank=True)
    agent = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=64, blank=True)
    gap_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Silence while this session was opened.")

    class Meta:
        ordering = ("call", "index")
        constraints = (models.UniqueConstraint(fields=["call", "index"], name="unique_segment_index"),)

    def __str__(self) -> str:
        return f"Session {self.index} of call {self.call_id}"


class TranscriptItem(models.Model):
    class Role(models.TextChoices):
        CALLER = "user", "Caller"
        AGENT = "assistant", "Agent"
        SYSTEM = "system", "System"
        HUMAN = "human", "Human agent"

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="transcript")
    item_id = models.CharField(max_length=128)
    role = models.CharField(max_length=16, choices=Role.choices)
    text = models.TextField(blank=True)
    agent = models.CharField(max_length=64, blank=True)
    truncated = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("call", "created_at", "id")
        constraints = (models.UniqueConstraint(fields=["call", "item_id"], name="unique_transcript_item"),)

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:60]}"


class HandoffEvent(models.Model):
    # Indexed by handoff_call_order_idx (call, created_at, id), which also gives a call's handoffs in order.
    call = models.ForeignKey(Call, null=True, on_delete=models.SET_NULL, related_name="handoffs", db_index=False)
    from_agent = models.CharField(max_length=64)
    to_agent = models.CharField(max_length=64)
    reason = models.TextField(blank=True)
    context = models.JSONField(default=dict, blank=True, help_text="What travelled with the handoff.")
    depth = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    voice_kept = models.BooleanField(default=False, help_text="The voice could not change after the first audio.")
    fallback = models.BooleanField(default=False, help_text="Routed to the fallback agent.")
    applied = models.BooleanField(
        null=True, blank=True,
        help_text="Whether the Realtime server applied the new agent's session (unknown until it answers).")
    applied_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="From the session.update to the server's session.updated.")
    apply_error = models.TextField(blank=True, help_text="Why the server refused the new agent's session.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("created_at", "id")
        indexes = (
            # The audit's list and analytics: a period (newest first), a call's handoffs in order.
            models.Index(fields=["created_at", "id"], name="handoff_created_idx"),
            models.Index(fields=["call", "created_at", "id"], name="handoff_call_order_idx"),
        )

    def __str__(self) -> str:
        return f"{self.from_agent} → {self.to_agent}"


class ToolInvocation(models.Model):
    class Status(models.TextChoices):
        STARTED = "started", "Started"
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        DENIED = "denied", "Denied"
        TIMED_OUT = "timed_out", "Timed out"

    call = models.ForeignKey(Call, null=True, on_delete=models.SET_NULL, related_name="tool_invocations")
    call_id_ref = models.CharField("function call id", max_length=128, blank=True)
    agent = models.CharField(max_length=64, blank=True)
    name = models.CharField(max_length=64)
    arguments = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    approved_by = models.CharField(max_length=150, blank=True)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.STARTED)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("created_at", "id")
        constraints = (
            models.UniqueConstraint(fields=["call", "call_id_ref"], condition=~Q(call_id_ref=""),
                                    name="unique_tool_invocation"),
        )

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class GuardrailEvent(models.Model):
    call = models.ForeignKey(Call, null=True, on_delete=models.SET_NULL, related_name="guardrail_events")
    agent = models.CharField(max_length=64, blank=True)
    category = models.CharField(max_length=64)
    text = models.TextField(blank=True)
    action = models.CharField(max_length=64, blank=True)
    item_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("created_at", "id")

    def __str__(self) -> str:
        return f"{self.category}: {self.action}"


class Escalation(models.Model):
    class Source(models.TextChoices):
        MODEL = "model", "Asked for by the model"
        GUARDRAIL = "guardrail", "Guardrail"
        CALLER = "caller", "Caller wants a human"
        FAILURES = "failures", "Repeated failures"

    class WebhookStatus(models.TextChoices):
        NONE = "none", "No webhook"
        PENDING = "pending", "Pending"
        POSTING = "posting", "Posting"
        RETRYING = "retrying", "Retrying"
        POSTED = "posted", "Posted"
        FAILED = "failed", "Failed"

    call = models.ForeignKey(Call, null=True, on_delete=models.SET_NULL, related_name="escalations")
    reason = models.TextField(blank=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    agent = models.CharField(max_length=64, blank=True)
    webhook_url = models.URLField(blank=True)
    webhook_status = models.CharField(max_length=16, choices=WebhookStatus.choices, default=WebhookStatus.NONE)
    webhook_response_code = models.PositiveIntegerField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    posted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("created_at", "id")

    def __str__(self) -> str:
        return f"Escalation ({self.source}) of call {self.call_id}"


class Summary(models.Model):
    class Kind(models.TextChoices):
        POST_CALL = "post_call", "Post-call summary"
        ROLLING = "rolling", "Rolling context summary"

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="summaries")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    text = models.TextField()
    disposition = models.CharField(max_length=32, blank=True, help_text="Wrap-up code.")
    model = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("created_at", "id")
        verbose_name_plural = "summaries"
        constraints = (
            models.UniqueConstraint(fields=["call"], condition=Q(kind="post_call"), name="one_post_call_summary"),
        )

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of call {self.call_id}"


class CallEvent(models.Model):
    """The published events of a call, in sequence: what a dashboard that reconnects with
    `last_seq` is sent again (a snapshot of the events after it, then the live deltas)."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    type = models.CharField(max_length=32)
    event = models.JSONField(help_text="The event as published (type, at and its fields).")

    class Meta:
        ordering = ("call", "seq")
        constraints = (models.UniqueConstraint(fields=["call", "seq"], name="unique_call_event_seq"),)

    def __str__(self) -> str:
        return f"Event {self.seq} ({self.type}) of call {self.call_id}"


class SupervisorAction(models.Model):
    """The audit of what a supervisor did to a live call from the dashboard."""

    class Kind(models.TextChoices):
        APPROVE = "approve", "Approved a tool call"
        DENY = "deny", "Denied a tool call"
        WHISPER = "whisper", "Whispered to the agent"
        SAY = "say", "Spoke to the caller through the agent"
        HANGUP = "hangup", "Hung up"
        LISTEN = "listen", "Listened in"
        TAKE_OVER = "take_over", "Took the call over"
        HAND_BACK = "hand_back", "Handed the call back"

    call = models.ForeignKey(Call, null=True, on_delete=models.SET_NULL, related_name="supervisor_actions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                             related_name="supervisor_actions")
    username = models.CharField(max_length=150, help_text="Kept when the user is deleted.")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    text = models.TextField(blank=True)
    tool_call_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True,
                                    help_text="A take-over: when the call was handed back (open while empty).")

    class Meta:
        ordering = ("created_at", "id")

    def __str__(self) -> str:
        return f"{self.username}: {self.kind} on call {self.call_id}"


class HumanAgentPresence(models.Model):
    """Whether a human agent (a staff user in the "Human agents" group) takes queued calls now."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="presence")
    available = models.BooleanField(default=False)
    since = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.user_id}: {'available' if self.available else 'away'}"


class Voicemail(models.Model):
    """What a caller said after nobody took the call from the queue (calls.queue), as WAV."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="voicemails")
    audio = models.BinaryField(help_text="WAV, mono pcm16 at the call's rate.")
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Voicemail of call {self.call_id} ({self.duration_ms} ms)"


class QueueEntry(models.Model):
    """An escalated call waiting for a human agent (calls.queue)."""

    class Status(models.TextChoices):
        WAITING = "waiting", "Waiting"
        ACCEPTED = "accepted", "Accepted by a human"
        TIMED_OUT = "timed_out", "Nobody answered in time"
        ABANDONED = "abandoned", "The call ended while waiting"

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="queue_entries")
    escalation = models.ForeignKey(Escalation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.TextField(blank=True)
    agent = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.WAITING, db_index=True)
    enqueued_at = models.DateTimeField(default=timezone.now)
    timeout_s = models.PositiveIntegerField(default=0)
    fallback = models.CharField(max_length=16, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    accepted_username = models.CharField(max_length=150, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("enqueued_at", "id")
        constraints = (models.UniqueConstraint(fields=["call"], condition=Q(status="waiting"),
                                               name="one_waiting_entry_per_call"),)

    def __str__(self) -> str:
        return f"Call {self.call_id} in the queue ({self.status})"
