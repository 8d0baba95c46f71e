"""The admin: tools, agents, scenarios (handoffs inline, graph picture, compiled preview, duplicate,
export and import) and the demo records the Python tools work on."""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from agents.compile import compile_scenario
from agents.exchange import ImportRefused, export_scenario_json, import_scenario_json
from agents.forms import (
    AgentForm,
    HandoffEdgeForm,
    HandoffEdgeFormSet,
    ImportScenarioForm,
    ScenarioForm,
    ToolForm,
)
from agents.graph import render_handoff_graph
from agents.models import Agent, HandoffEdge, Scenario, Tool


@admin.register(Tool)
class ToolAdmin(admin.ModelAdmin):
    form = ToolForm
    list_display = ("name", "kind", "target", "needs_approval", "used_by")
    list_filter = ("kind", "builtin", "needs_approval")
    search_fields = ("name", "description", "handler")
    fieldsets = (
        (None, {"fields": ("name", "description", "parameters", "kind", "needs_approval")}),
        ("Python handler", {"fields": ("handler",)}),
        ("Built-in action", {"fields": ("builtin",)}),
        (
            "HTTP webhook",
            {"fields": ("webhook_url", "webhook_method", "webhook_timeout_seconds", "webhook_secret_header",
                        "webhook_secret_name")},
        ),
    )

    @admin.display(description="runs")
    def target(self, tool: Tool) -> str:
        if tool.kind == Tool.Kind.PYTHON:
            return tool.handler
        if tool.kind == Tool.Kind.BUILTIN:
            return tool.get_builtin_display()
        return f"{tool.webhook_method} {tool.webhook_url}"

    @admin.display(description="agents")
    def used_by(self, tool: Tool) -> str:
        return ", ".join(a.slug for a in tool.agents.all())

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tool]:
        return super().get_queryset(request).prefetch_related("agents")


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    form = AgentForm
    list_display = ("name", "slug", "kind", "model_shown", "voice", "tool_choice", "tool_count", "instruction_chars")
    list_filter = ("kind", "voice", "turn_detection")
    search_fields = ("slug", "name", "instructions", "handoff_description")
    filter_horizontal = ("tools",)
    prepopulated_fields = {"slug": ("name",)}  # noqa: RUF012
    fieldsets = (
        (None, {"fields": ("name", "slug", "kind", "instructions", "handoff_description")}),
        ("Model and voice", {"fields": ("model", "voice", "output_modality", "speed", "max_output_tokens")}),
        (
            "Turn detection",
            {"fields": ("turn_detection", "vad_threshold", "vad_prefix_padding_ms", "vad_silence_duration_ms",
                        "vad_idle_timeout_ms", "vad_create_response", "vad_interrupt_response", "vad_eagerness")},
        ),
        ("Caller audio", {"fields": ("transcription_model", "transcription_language", "noise_reduction")}),
        ("Tools", {"fields": ("tools", "tool_choice")}),
    )

    @admin.display(description="model")
    def model_shown(self, agent: Agent) -> str:
        return agent.model or f"{agent.effective_model} (default)"

    @admin.display(description="tools")
    def tool_count(self, agent: Agent) -> int:
        return len(agent.tools.all())

    @admin.display(description="instructions")
    def instruction_chars(self, agent: Agent) -> str:
        return f"{len(agent.instructions)} chars"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Agent]:
        return super().get_queryset(request).prefetch_related("tools")


class HandoffEdgeInline(admin.TabularInline):
    model = HandoffEdge
    form = HandoffEdgeForm
    formset = HandoffEdgeFormSet
    fk_name = "scenario"
    extra = 1
    verbose_name = "handoff"
    verbose_name_plural = "handoffs (each becomes a transfer_to_<agent> tool of the agent it starts from)"


class InboundNumbersField(forms.CharField):
    """A scenario's inbound numbers as text, one per line (commas also separate them). The model's
    rules check and normalise each one, so the admin and the import refuse the same things."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 40})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return "\n".join(str(number) for number in value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return [entry.strip() for entry in re.split(r"[\n,;]", text) if entry.strip()]


class ScenarioAdminForm(ScenarioForm):
    inbound_numbers = InboundNumbersField(
        required=False, label="Inbound numbers",
        help_text="One phone number per line, in international form, e.g. +1 202 555 0100 (spaces, dashes "
        "and brackets are fine; stored as +12025550100). A call to one of them runs this scenario, unless "
        "the call names a scenario itself. A number leads to one scenario only.",
    )


@admin.register(Scenario)
class ScenarioAdmin(admin.ModelAdmin):
    form = ScenarioAdminForm
    inlines = (HandoffEdgeInline,)
    list_display = ("name", "slug", "root_agent", "supervisor_agent", "fallback_agent", "handoff_count", "numbers",
                    "links")
    search_fields = ("slug", "name", "description")
    filter_horizontal = ("agents",)
    actions = ("duplicate_scenarios", "export_scenario")
    change_form_template = "admin/agents/scenario/change_form.html"
    change_list_template = "admin/agents/scenario/change_list.html"
    fieldsets = (
        (None, {"fields": ("name", "slug", "description")}),
        ("Agents", {"fields": ("root_agent", "supervisor_agent", "fallback_agent", "agents")}),
        ("Limits", {"fields": ("max_handoff_depth", "max_session_seconds", "summarize_every_turns",
                               "max_call_seconds", "failover_provider")}),
        ("Guardrails", {"fields": ("blocked_phrases", "off_brand_terms", "guardrail_patterns",
                                   "moderation_check", "escalation_webhook_url")}),
        ("Phone numbers", {"fields": ("inbound_numbers",)}),
    )

    @admin.display(description="inbound numbers")
    def numbers(self, scenario: Scenario) -> str:
        return ", ".join(scenario.inbound_numbers or [])

    @admin.display(description="handoffs")
    def handoff_count(self, scenario: Scenario) -> int:
        return len(scenario.edges.all())

    @admin.display(description="")
    def links(self, scenario: Scenario) -> str:
        return format_html(
            '<a href="{}">preview</a> · <a href="{}">graph</a> · <a href="{}">export</a>',
            reverse("admin:agents_scenario_preview", args=[scenario.pk]),
            reverse("admin:agents_scenario_graph", args=[scenario.pk]),
            reverse("admin:agents_scenario_export", args=[scenario.pk]),
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Scenario]:
        return (
            super().get_queryset(request)
            .select_related("root_agent", "supervisor_agent", "fallback_agent")
            .prefetch_related("edges")
        )

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("import/", wrap(self.import_view), name="agents_scenario_import"),
            path("<int:pk>/export/", wrap(self.export_view), name="agents_scenario_export"),
            path("<int:pk>/graph.svg", wrap(self.graph_view), name="agents_scenario_graph"),
            path("<int:pk>/preview/", wrap(self.preview_view), name="agents_scenario_preview"),
            *super().get_urls(),
        ]

    # --- pictures and previews ---------------------------------------------------------------------

    def compiled_context(self, scenario: Scenario) -> dict[str, Any]:
        """The graph picture and, per realtime agent, the session.update JSON (or the problems)."""
        context: dict[str, Any] = {"graph_svg": mark_safe(render_handoff_graph(scenario))}
        try:
            spec = compile_scenario(scenario)
        except ValidationError as exc:
            context["compile_problems"] = exc.messages
            return context
        context["spec_hash"] = spec.hash
        context["previews"] = [
            {
                "slug": agent.slug,
                "name": agent.name,
                "kind": agent.kind,
                "payload": json.dumps(
                    agent.session_update() if agent.kind == "realtime"
                    else {"model": agent.model, "instructions": agent.instructions,
                          "tools": [t.responses_tool() for t in agent.tools]},
                    indent=2, ensure_ascii=False,
                ),
            }
            for agent in sorted(spec.agents.values(), key=lambda a: (a.slug != spec.root_agent, a.slug))
        ]
        return context

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = dict(extra_context or {})
        scenario = self.get_object(request, object_id)
        if scenario is not None:
            extra_context.update(self.compiled_context(scenario))
        return super().change_view(request, object_id, form_url, extra_context)

    def _get_scenario(self, request: HttpRequest, pk: int) -> Scenario:
        scenario = get_object_or_404(self.get_queryset(request), pk=pk)
        if not self.has_view_permission(request, scenario):
            raise PermissionDenied
        return scenario

    def graph_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return HttpResponse(render_handoff_graph(self._get_scenario(request, pk)), content_type="image/svg+xml")

    def preview_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        scenario = self._get_scenario(request, pk)
        context = {
            **self.admin_site.each_context(request),
            **self.compiled_context(scenario),
            "opts": self.model._meta,
            "scenario": scenario,
            "title": f"Compiled preview: {scenario.name}",
        }
        return TemplateResponse(request, "admin/agents/scenario/preview.html", context)

    # --- export, import, duplicate -------------------------------------------------------------------

    def export_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        scenario = self._get_scenario(request, pk)
        response = HttpResponse(export_scenario_json(scenario), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="scenario-{scenario.slug}.json"'
        return response

    @admin.action(description="Export the selected scenario as JSON")
    def export_scenario(self, request: HttpRequest, queryset: QuerySet[Scenario]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Pick exactly one scenario to export.", messages.WARNING)
            return None
        return self.export_view(request, queryset.get().pk)

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not (self.has_add_permission(request) and self.has_change_permission(request)):
            raise PermissionDenied
        problems: list[str] = []
        if request.method == "POST":
            form = ImportScenarioForm(request.POST, request.FILES)
            if form.is_valid():
                try:
                    scenario = import_scenario_json(form.cleaned_data["file"].read())
                except ImportRefused as exc:
                    problems = exc.problems
                else:
                    self.message_user(request, f"Imported the scenario {scenario.slug}.", messages.SUCCESS)
                    return HttpResponseRedirect(reverse("admin:agents_scenario_change", args=[scenario.pk]))
        else:
            form = ImportScenarioForm()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "problems": problems,
            "title": "Import a scenario",
        }
        return TemplateResponse(request, "admin/agents/scenario/import.html", context, status=400 if problems else 200)

    @admin.action(description="Duplicate the selected scenarios")
    def duplicate_scenarios(self, request: HttpRequest, queryset: QuerySet[Scenario]) -> None:
        for original in queryset:
            copy = duplicate_scenario(original)
            self.message_user(request, f"Duplicated {original.slug} as {copy.slug}.", messages.SUCCESS)


def duplicate_scenario(original: Scenario) -> Scenario:
    """A copy of the scenario (same agents, its own handoffs) under a free slug ending in -copy.
    The copy answers no phone number: a number leads to one scenario only."""
    with transaction.atomic():
        slug, n = f"{original.slug}-copy"[:64], 2
        while Scenario.objects.filter(slug=slug).exists():
            slug, n = f"{original.slug}-copy-{n}"[:64], n + 1
        members = list(original.agents.all())
        edges = list(original.edges.all())
        copy = Scenario.objects.get(pk=original.pk)
        copy.pk = None
        copy.slug, copy.name = slug, f"{original.name} (copy)"[:120]
        copy.inbound_numbers = []
        copy.save()
        copy.agents.set(members)
        HandoffEdge.objects.bulk_create(
            HandoffEdge(scenario=copy, from_agent_id=e.from_agent_id, to_agent_id=e.to_agent_id, when=e.when,
                        contract=e.contract)
            for e in edges
        )
    return copy
