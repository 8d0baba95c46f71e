"""Read-only audit views of calls: records are written by calls.actions only, never by hand."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from calls.models import (
    Call,
    Escalation,
    GuardrailEvent,
    HandoffEvent,
    SessionSegment,
    Summary,
    SupervisorAction,
    ToolInvocation,
    TranscriptItem,
)


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(ReadOnlyMixin, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False


class SegmentInline(ReadOnlyInline):
    model = SessionSegment
    fields = ("index", "model", "agent", "started_at", "ended_at", "end_reason", "gap_ms")
    readonly_fields = fields


class TranscriptInline(ReadOnlyInline):
    model = TranscriptItem
    fields = ("created_at", "role", "agent", "text", "truncated")
    readonly_fields = fields


class HandoffInline(ReadOnlyInline):
    model = HandoffEvent
    fields = ("created_at", "from_agent", "to_agent", "reason", "depth", "duration_ms", "applied", "applied_ms",
              "voice_kept", "fallback")
    readonly_fields = fields


class ToolInline(ReadOnlyInline):
    model = ToolInvocation
    fields = ("created_at", "agent", "name", "status", "arguments", "result", "error", "duration_ms", "approved_by")
    readonly_fields = fields


class SummaryInline(ReadOnlyInline):
    model = Summary
    fields = ("created_at", "kind", "disposition", "text")
    readonly_fields = fields


@admin.register(Call)
class CallAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "started_at", "channel", "scenario_slug", "caller_id", "status", "end_reason",
                    "current_agent", "cost", "latency_p50_ms", "latency_p95_ms", "idle_prompts")
    list_filter = ("status", "channel", "scenario_slug", "end_reason")
    search_fields = ("caller_id", "external_id", "scenario_slug", "spec_hash")
    date_hierarchy = "started_at"
    inlines = (SegmentInline, TranscriptInline, HandoffInline, ToolInline, SummaryInline)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in Call._meta.fields]


class AuditAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_select_related = ("call",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]


@admin.register(HandoffEvent)
class HandoffEventAdmin(AuditAdmin):
    list_display = ("created_at", "call", "from_agent", "to_agent", "depth", "applied", "applied_ms", "fallback",
                    "voice_kept")
    list_filter = ("fallback", "applied", "to_agent")


@admin.register(ToolInvocation)
class ToolInvocationAdmin(AuditAdmin):
    list_display = ("created_at", "call", "agent", "name", "status", "duration_ms", "approved_by")
    list_filter = ("status", "name")


@admin.register(GuardrailEvent)
class GuardrailEventAdmin(AuditAdmin):
    list_display = ("created_at", "call", "agent", "category", "action")
    list_filter = ("category",)


@admin.register(Escalation)
class EscalationAdmin(AuditAdmin):
    list_display = ("created_at", "call", "source", "webhook_status", "attempts", "posted_at")
    list_filter = ("source", "webhook_status")


@admin.register(Summary)
class SummaryAdmin(AuditAdmin):
    list_display = ("created_at", "call", "kind", "disposition")
    list_filter = ("kind", "disposition")


@admin.register(SupervisorAction)
class SupervisorActionAdmin(AuditAdmin):
    list_display = ("created_at", "call", "username", "kind", "tool_call_id")
    list_filter = ("kind", "username")
