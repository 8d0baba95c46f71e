"""Admin forms. The model `clean()` methods check each record; these forms add the rules that need
unsaved related data (an agent's chosen tools, a scenario's handoffs), with the same validation
functions as the import, so nothing is saved when a scenario would break."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from agents import validation
from agents.models import Agent, HandoffEdge, Scenario, Tool
from agents.options import REALTIME_MODELS, SUPERVISOR_MODELS


class PrettyJSONField(forms.JSONField):
    """A JSON field shown indented, so a schema can be read and edited in a textarea."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


def _scenarios_of_agents(agent_ids: set[int]) -> list[Scenario]:
    from agents.exchange import _scenario_ids_using

    return list(Scenario.objects.filter(pk__in=_scenario_ids_using(agent_ids)).order_by("slug"))


def _problems_with_overrides(agent_ids: set[int], overrides: dict[str, validation.AgentFacts]) -> list[str]:
    problems: list[str] = []
    for scenario in _scenarios_of_agents(agent_ids):
        facts = validation.ScenarioFacts.from_scenario(scenario, overrides=overrides)
        problems += [f"In the scenario {scenario.slug}: {p}" for p in validation.scenario_problems(facts)]
    return problems


class ToolForm(forms.ModelForm):
    webhook_url = forms.URLField(
        required=False, assume_scheme="https", label="Webhook URL", help_text="HTTPS endpoint the tool calls."
    )
    parameters = PrettyJSONField(
        widget=forms.Textarea(attrs={"rows": 14, "cols": 90, "class": "vLargeTextField agents-json"}),
        help_text=Tool._meta.get_field("parameters").help_text,
    )

    class Meta:
        model = Tool
        fields = "__all__"

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.instance.pk and not self.errors:
            # A renamed tool or a changed built-in can break a scenario its agents are in.
            old = Tool.objects.get(pk=self.instance.pk)
            overrides = {}
            for agent in old.agents.all():
                facts = validation.AgentFacts.from_agent(agent)
                facts.tool_names = [cleaned.get("name", old.name) if n == old.name else n for n in facts.tool_names]
                if old.kind == "builtin" and old.builtin in facts.builtins:
                    facts.builtins.remove(old.builtin)
                if cleaned.get("kind") == "builtin" and cleaned.get("builtin"):
                    facts.builtins.append(cleaned["builtin"])
                overrides[agent.slug] = facts
            problems = _problems_with_overrides({a.pk for a in old.agents.all()}, overrides)
            if problems:
                raise ValidationError(problems)
        return cleaned


def _model_choices() -> list[Any]:
    return [
        ("", "Default for the kind"),
        ("Realtime voice models", [(m, m) for m in REALTIME_MODELS]),
        ("Text supervisor models", [(m, m) for m in SUPERVISOR_MODELS]),
    ]


class AgentForm(forms.ModelForm):
    model = forms.ChoiceField(
        choices=_model_choices, required=False, help_text=Agent._meta.get_field("model").help_text
    )

    class Meta:
        model = Agent
        fields = "__all__"
        widgets: ClassVar[dict[str, Any]] = {
            "instructions": forms.Textarea(attrs={"rows": 10, "cols": 90, "class": "vLargeTextField"}),
            "handoff_description": forms.Textarea(attrs={"rows": 2, "cols": 90, "class": "vLargeTextField"}),
        }

    class Media:
        js = ("agents/charcount.js",)
        css: ClassVar[dict[str, Any]] = {"all": ("agents/admin.css",)}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields.get("instructions")
        if field is not None:
            limit = settings.AGENT_INSTRUCTIONS_MAX_CHARS
            field.widget.attrs.update({"data-max-chars": str(limit), "data-limit-kind": "realtime"})
            field.help_text = f"Voice specialists: at most {limit} characters (text supervisors have no limit)."

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        tools = list(cleaned.get("tools") or [])
        names = [t.name for t in tools]
        choice = cleaned.get("tool_choice") or "auto"
        if not choice.startswith(validation.TRANSFER_PREFIX):
            problem = validation.tool_choice_problem(cleaned.get("name", ""), choice, names)
            if problem:
                self.add_error("tool_choice", problem)
                return cleaned
        if self.instance.pk:
            facts = validation.AgentFacts(
                slug=cleaned.get("slug", self.instance.slug),
                name=cleaned.get("name", ""),
                kind=cleaned.get("kind", "realtime"),
                instructions=cleaned.get("instructions", ""),
                tool_choice=choice,
                tool_names=names,
                builtins=[t.builtin for t in tools if t.kind == "builtin" and t.builtin],
            )
            problems = _problems_with_overrides({self.instance.pk}, {self.instance.slug: facts})
            if problems:
                raise ValidationError(problems)
        elif choice.startswith(validation.TRANSFER_PREFIX):
            self.add_error(
                "tool_choice", "A new agent has no handoffs yet: save it with auto, then add the handoff first."
            )
        return cleaned


class ScenarioForm(forms.ModelForm):
    escalation_webhook_url = forms.URLField(
        required=False, assume_scheme="https", label="Escalation webhook URL",
        help_text=Scenario._meta.get_field("escalation_webhook_url").help_text,
    )
    blocked_phrases = PrettyJSONField(required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 90}))
    off_brand_terms = PrettyJSONField(required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 90}))
    guardrail_patterns = PrettyJSONField(required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 90}))

    class Meta:
        model = Scenario
        fields = "__all__"

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for name in ("blocked_phrases", "off_brand_terms", "guardrail_patterns"):
            if cleaned.get(name) is None and name in cleaned:
                cleaned[name] = []
        return cleaned

    def _post_clean(self) -> None:
        super()._post_clean()
        # The handoff inline validates the whole graph after this form; it reads the chosen agents here.
        self.instance._pending_members = list(self.cleaned_data.get("agents") or []) if not self.errors else None


class HandoffEdgeForm(forms.ModelForm):
    contract = PrettyJSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=HandoffEdge._meta.get_field("contract").help_text,
    )

    class Meta:
        model = HandoffEdge
        fields = ("from_agent", "to_agent", "when", "contract")
        widgets: ClassVar[dict[str, Any]] = {"when": forms.Textarea(attrs={"rows": 2, "cols": 40})}

    def clean_contract(self) -> Any:
        return self.cleaned_data.get("contract") or []


class HandoffEdgeFormSet(forms.BaseInlineFormSet):
    """Checks the whole handoff graph with the scenario form's unsaved values."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        scenario: Scenario = self.instance
        members = getattr(scenario, "_pending_members", None)
        if members is None or not scenario.root_agent_id:
            return  # the scenario form has errors of its own; they are shown first
        edges = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if not data or data.get("DELETE") or not data.get("from_agent") or not data.get("to_agent"):
                continue
            edges.append((data["from_agent"], data["to_agent"]))
        facts = validation.ScenarioFacts.build(
            root=scenario.root_agent,
            supervisor=scenario.supervisor_agent,
            fallback=scenario.fallback_agent,
            members=members,
            edges=edges,
        )
        problems = validation.scenario_problems(facts)
        if problems:
            raise ValidationError(problems)


class ImportScenarioForm(forms.Form):
    file = forms.FileField(help_text="A JSON file made by Export (or manage.py exportscenario).")
