"""The configuration domain: tools, agents, scenarios (handoff graphs) and the demo records their
Python tools work on. Everything here is edited in the Django admin and compiled by
`agents.compile` into the immutable `realtime.spec.ScenarioSpec` a call runs with.

Validation lives in `agents.validation` so the admin, the model `clean()` methods and the JSON
import all apply the same rules in the same words.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from agents import registry, validation
from agents.options import (
    REALTIME_MODELS,
    SUPERVISOR_MODELS,
    TRANSCRIPTION_MODELS,
    VOICES,
)
from realtime.spec import TRANSFER_PREFIX

TOOL_NAME_RE = r"^[a-zA-Z0-9_-]{1,64}$"
# transfer_to_<slug> must itself be a valid tool name: 64 - len("transfer_to_") characters left.
AGENT_SLUG_MAX = 64 - len(TRANSFER_PREFIX)


def handler_choices() -> list[tuple[str, str]]:
    """The Python handlers registered by the installed apps (agents/registry.py)."""
    return registry.handler_choices()


def empty_parameters() -> dict[str, Any]:
    return {"type": "object", "properties": {}, "required": []}


def empty_list() -> list[Any]:
    return []


class Tool(models.Model):
    class Kind(models.TextChoices):
        PYTHON = "python", "Python handler"
        WEBHOOK = "webhook", "HTTP webhook"
        BUILTIN = "builtin", "Built-in"

    class Builtin(models.TextChoices):
        ESCALATE = "escalate", "Escalate to a human"
        END_CALL = "end_call", "End the call"
        ASK_SUPERVISOR = "ask_supervisor", "Ask the supervisor"

    class Method(models.TextChoices):
        POST = "POST", "POST"
        GET = "GET", "GET"
        PUT = "PUT", "PUT"
        PATCH = "PATCH", "PATCH"

    name = models.CharField(
        max_length=64,
        unique=True,
        validators=[RegexValidator(TOOL_NAME_RE, "Use 1 to 64 letters, digits, underscores or hyphens.")],
        help_text="What the model calls, e.g. lookup_orders. Letters, digits, _ and - only.",
    )
    description = models.TextField(help_text="Tells the model when and how to use the tool.")
    parameters = models.JSONField(
        default=empty_parameters,
        help_text='The arguments as a JSON Schema object, e.g. {"type": "object", "properties": {...}}.',
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PYTHON)
    handler = models.CharField(
        max_length=64, blank=True, choices=handler_choices, help_text="Python tools: the handler that runs."
    )
    builtin = models.CharField(max_length=32, blank=True, choices=Builtin.choices)
    webhook_url = models.URLField(blank=True, verbose_name="webhook URL")
    webhook_method = models.CharField(max_length=8, choices=Method.choices, default=Method.POST)
    webhook_timeout_seconds = models.FloatField(
        default=5.0, validators=[MinValueValidator(0.1), MaxValueValidator(60.0)]
    )
    webhook_secret_header = models.CharField(
        max_length=100, blank=True, help_text="HTTP header that carries the secret, e.g. X-Webhook-Secret."
    )
    webhook_secret_name = models.CharField(
        max_length=100,
        blank=True,
        help_text="The NAME of the secret: TOOL_SECRET_<NAME> in the environment. The secret itself is never stored.",
    )
    needs_approval = models.BooleanField(
        default=False, help_text="A human approves each call of this tool before it runs."
    )
    redact_arguments = models.JSONField(
        default=empty_list, blank=True, verbose_name="arguments redacted at retention",
        help_text='Argument names whose values are removed when a call\'s transcript expires (the retention '
        'setting), as a JSON list, e.g. ["phone", "date_of_birth"]. ["*"] removes every value. Empty: the '
        "arguments are kept with the audit trail.",
    )

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = validation.tool_problems(
            name=self.name,
            kind=self.kind,
            parameters=self.parameters,
            handler=self.handler,
            builtin=self.builtin,
            webhook_url=self.webhook_url,
            webhook_secret_header=self.webhook_secret_header,
            webhook_secret_name=self.webhook_secret_name,
        )
        redact = self.redact_arguments
        if not isinstance(redact, list) or not all(isinstance(n, str) and n.strip() for n in redact):
            errors["redact_arguments"] = ['Use a JSON list of argument names, e.g. ["phone"], or ["*"] for all.']
        if errors:
            raise ValidationError(errors)


class Agent(models.Model):
    class Kind(models.TextChoices):
        REALTIME = "realtime", "Realtime voice agent"
        SUPERVISOR = "supervisor", "Text supervisor"

    class Modality(models.TextChoices):
        AUDIO = "audio", "Audio (with transcript)"
        TEXT = "text", "Text only"

    class TurnDetection(models.TextChoices):
        NONE = "none", "None (the engine commits turns)"
        SERVER_VAD = "server_vad", "Server VAD (silence based)"
        SEMANTIC_VAD = "semantic_vad", "Semantic VAD (meaning based)"

    class Eagerness(models.TextChoices):
        AUTO = "auto", "Auto"
        LOW = "low", "Low (waits longer)"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High (answers quickly)"

    class NoiseReduction(models.TextChoices):
        NONE = "none", "None"
        NEAR_FIELD = "near_field", "Near field (headset, phone)"
        FAR_FIELD = "far_field", "Far field (speakerphone, room)"

    slug = models.SlugField(
        max_length=AGENT_SLUG_MAX,
        unique=True,
        help_text="Short id used in transfer tools (transfer_to_<slug>) and exports.",
    )
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.REALTIME)
    instructions = models.TextField(help_text="What this agent does and how it speaks.")
    handoff_description = models.TextField(
        blank=True, help_text="One sentence other agents read to decide whether to transfer here."
    )
    caller_phrases = models.TextField(
        blank=True,
        help_text=(
            "Phrases callers use, one per line, each with what it means, e.g. "
            "<code>the juice is off: power outage</code>. Compiled into the instructions under "
            "\"Phrases callers use:\"; the offline engine reads them as vocabulary."
        ),
    )
    model = models.CharField(
        max_length=80,
        blank=True,
        help_text="Empty: the default model for the kind (REALTIME_DEFAULT_MODEL / SUPERVISOR_DEFAULT_MODEL).",
    )
    voice = models.CharField(max_length=32, blank=True, default="marin", choices=[(v, v) for v in VOICES])
    output_modality = models.CharField(max_length=8, choices=Modality.choices, default=Modality.AUDIO)
    turn_detection = models.CharField(
        max_length=16, choices=TurnDetection.choices, default=TurnDetection.SERVER_VAD
    )
    vad_threshold = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Server VAD: 0.0 to 1.0; higher needs louder speech. Empty: the API default (0.5).",
    )
    vad_prefix_padding_ms = models.PositiveIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(5000)], help_text="Server VAD. Empty: 300 ms."
    )
    vad_silence_duration_ms = models.PositiveIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(10000)], help_text="Server VAD. Empty: 500 ms."
    )
    vad_idle_timeout_ms = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(5000), MaxValueValidator(30000)],
        help_text="Server VAD: prompt a silent caller after this long. Empty: off.",
    )
    vad_create_response = models.BooleanField(default=True, help_text="Answer automatically at the end of a turn.")
    vad_interrupt_response = models.BooleanField(default=True, help_text="Stop speaking when the caller barges in.")
    vad_eagerness = models.CharField(max_length=8, choices=Eagerness.choices, default=Eagerness.AUTO)
    transcription_model = models.CharField(
        max_length=64,
        blank=True,
        default="gpt-transcribe",
        choices=[(m, m) for m in TRANSCRIPTION_MODELS],
        help_text="Transcribes what the caller says. Empty: no transcript of the caller.",
    )
    transcription_language = models.CharField(
        max_length=2,
        blank=True,
        validators=[RegexValidator(r"^[a-z]{2}$", "Use a two-letter ISO-639-1 code such as en.")],
        help_text="ISO-639-1 code, e.g. en. Empty: detected.",
    )
    noise_reduction = models.CharField(
        max_length=16, choices=NoiseReduction.choices, default=NoiseReduction.NEAR_FIELD
    )
    speed = models.FloatField(default=1.0, validators=[MinValueValidator(0.25), MaxValueValidator(1.5)])
    tool_choice = models.CharField(
        max_length=64,
        default="auto",
        help_text="auto, required, none, or the name of one of this agent's tools (transfer tools included).",
    )
    max_output_tokens = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(4096)],
        help_text="1 to 4096. Empty: no limit (inf).",
    )
    tools = models.ManyToManyField(Tool, blank=True, related_name="agents")

    class Meta:
        ordering = ("slug",)

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    @property
    def compiled_instructions(self) -> str:
        """The instructions with the agent's caller phrases appended as their own section."""
        lines = [line.strip().lstrip("-*• ").strip() for line in (self.caller_phrases or "").splitlines()]
        lines = [line for line in lines if line]
        if not lines:
            return self.instructions
        return self.instructions.rstrip() + "\n\nPhrases callers use:\n" + "\n".join(f"- {line}" for line in lines) + "\n"

    @property
    def effective_model(self) -> str:
        if self.model:
            return self.model
        if self.kind == self.Kind.SUPERVISOR:
            return settings.SUPERVISOR_DEFAULT_MODEL
        return settings.REALTIME_DEFAULT_MODEL

    def clean(self) -> None:
        errors = validation.agent_problems(
            kind=self.kind,
            instructions=self.instructions or "",
            model=self.effective_model,
            voice=self.voice,
            output_modality=self.output_modality,
            turn_detection=self.turn_detection,
            tool_choice=self.tool_choice,
            realtime_models=REALTIME_MODELS,
            supervisor_models=SUPERVISOR_MODELS,
        )
        if errors:
            raise ValidationError(errors)

    def own_tool_names(self) -> list[str]:
        return [tool.name for tool in self.tools.all()]


class Scenario(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    root_agent = models.ForeignKey(
        Agent, on_delete=models.PROTECT, related_name="root_of", help_text="The agent that answers the call."
    )
    supervisor_agent = models.ForeignKey(
        Agent, on_delete=models.PROTECT, null=True, blank=True, related_name="supervisor_of",
        help_text="Chat-supervisor pattern: the text agent the voice agents ask (ask_supervisor tool).",
    )
    fallback_agent = models.ForeignKey(
        Agent, on_delete=models.PROTECT, null=True, blank=True, related_name="fallback_of",
        help_text="Where a call recovers when something goes wrong (e.g. a human-escalation agent).",
    )
    agents = models.ManyToManyField(
        Agent, blank=True, related_name="scenarios",
        help_text="Agents in this scenario. The root, supervisor and fallback agents are always included.",
    )
    max_handoff_depth = models.PositiveIntegerField(
        default=6, validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text="Most transfers in one call.",
    )
    max_session_seconds = models.PositiveIntegerField(
        default=3600, validators=[MinValueValidator(60), MaxValueValidator(3600)],
        help_text="Longest Realtime session before it is renewed (the GA limit is 60 minutes).",
    )
    summarize_every_turns = models.PositiveIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Summarise the conversation every N caller turns.",
    )
    max_call_seconds = models.PositiveIntegerField(
        default=1800, validators=[MinValueValidator(30), MaxValueValidator(24 * 3600)],
        help_text="The call is wrapped up after this long.",
    )
    blocked_phrases = models.JSONField(
        default=empty_list, blank=True, help_text='Phrases the agent must never say, as a JSON list: ["..."].'
    )
    off_brand_terms = models.JSONField(
        default=empty_list, blank=True, help_text="Words that are off brand (e.g. competitors), as a JSON list."
    )
    guardrail_patterns = models.JSONField(
        default=empty_list, blank=True,
        help_text="Regular expressions an answer must not match (e.g. card numbers), as a JSON list.",
    )
    moderation_check = models.BooleanField(
        default=False, verbose_name="moderation check",
        help_text="Also send each assistant answer to the provider's moderation endpoint while it streams; "
        "a flagged answer is withdrawn like any other guardrail trip. Adds one moderation request per "
        "checked chunk (about every 100 characters of an answer, and at its end).",
    )
    escalation_webhook_url = models.URLField(
        blank=True, verbose_name="escalation webhook URL",
        help_text="Optional: notified when a call is escalated to a human.",
    )
    human_queue_timeout_seconds = models.PositiveIntegerField(
        default=0, verbose_name="human queue timeout (seconds)",
        help_text="When above 0, an escalated call waits this long in the queue of human agents (the agent "
        "keeps the caller company) before it takes the fallback below. 0: no queue.",
    )
    human_queue_fallback = models.CharField(
        max_length=16, default="webhook", verbose_name="when no human answers",
        choices=[("webhook", "Post the escalation webhook"), ("callback", "Take a callback request"),
                 ("voicemail", "Record a voicemail")],
    )
    caller_language = models.CharField(
        max_length=8, blank=True, default="", verbose_name="caller's language",
        help_text="ISO 639-1 code (e.g. es) of the callers' language: a person who speaks English takes such a "
        "call through live translation. Empty: no translation.",
    )
    failover_provider = models.CharField(
        max_length=16, blank=True, default="",
        choices=[("", "None: the call ends on the fallback path"), ("offline", "The local offline engine")],
        help_text="Where calls go when the Realtime provider cannot be reached.",
    )
    inbound_numbers = models.JSONField(
        default=empty_list, blank=True, verbose_name="inbound numbers",
        help_text="Phone numbers that reach this scenario when a caller dials them, in international form "
        "(+ then country code and number, e.g. +1 202 555 0100). A number leads to one scenario only. "
        "Routing only: not part of the compiled scenario.",
    )
    config_changed_at = models.DateTimeField(
        default=timezone.now, editable=False,
        help_text="When this scenario or anything it compiles from last changed (agents.signals): the key "
        "under which a worker keeps its compiled spec (calls.scenarios.compile_for_call).",
    )

    class Meta:
        ordering = ("slug",)

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    def clean(self) -> None:
        errors = validation.guardrail_problems(
            blocked_phrases=self.blocked_phrases,
            off_brand_terms=self.off_brand_terms,
            patterns=self.guardrail_patterns,
        )
        numbers, problems = validation.inbound_number_problems(
            self.inbound_numbers, taken=self.inbound_numbers_elsewhere()
        )
        if problems:
            errors["inbound_numbers"] = problems
        else:
            self.inbound_numbers = numbers  # stored normalised: +12025550100
        if errors:
            raise ValidationError(errors)

    def inbound_numbers_elsewhere(self) -> dict[str, str]:
        """Every number another scenario answers, with that scenario's label."""
        others = Scenario.objects.all() if self.pk is None else Scenario.objects.exclude(pk=self.pk)
        taken: dict[str, str] = {}
        for slug, name, numbers in others.values_list("slug", "name", "inbound_numbers"):
            for number in numbers if isinstance(numbers, list) else []:
                taken.setdefault(str(number), f"{name} ({slug})")
        return taken

    def member_agents(self) -> list[Agent]:
        """Agents of the scenario: the explicit list plus root, supervisor and fallback."""
        members: dict[int, Agent] = {}
        for agent in (self.root_agent, self.supervisor_agent, self.fallback_agent):
            if agent is not None:
                members[agent.pk] = agent
        if self.pk:
            for agent in self.agents.all():
                members.setdefault(agent.pk, agent)
        return sorted(members.values(), key=lambda a: a.slug)

    def validate_graph(self) -> None:
        """Check the whole saved graph (agents, tools, edges); raise ValidationError if it is wrong."""
        problems = validation.scenario_problems(validation.ScenarioFacts.from_scenario(self))
        if problems:
            raise ValidationError(problems)


class HandoffEdge(models.Model):
    scenario = models.ForeignKey(Scenario, on_delete=models.CASCADE, related_name="edges")
    from_agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="edges_out")
    to_agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="edges_in")
    when = models.TextField(
        blank=True, verbose_name="when to transfer", help_text="When the caller should be transferred this way."
    )
    contract = models.JSONField(
        default=empty_list,
        blank=True,
        verbose_name="handoff contract",
        help_text=(
            "Extra context that travels with the caller, beyond the reason and the conversation summary "
            'that always do. A JSON list: [{"name": "order_id", "description": "...", "type": "string", '
            '"required": true}]. Types: string, integer, number, boolean.'
        ),
    )

    class Meta:
        ordering = ("scenario", "from_agent__slug", "to_agent__slug")
        constraints = (
            models.UniqueConstraint(fields=["scenario", "from_agent", "to_agent"], name="unique_handoff_edge"),
        )
        verbose_name = "handoff"

    def __str__(self) -> str:
        return f"{self.from_agent.slug} → {self.to_agent.slug}"

    @property
    def transfer_tool_name(self) -> str:
        return f"{TRANSFER_PREFIX}{self.to_agent.slug}"

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        contract_errors = validation.contract_problems(self.contract)
        if contract_errors:
            errors["contract"] = contract_errors
        if self.from_agent_id and self.to_agent_id and self.from_agent_id == self.to_agent_id:
            errors["to_agent"] = ["An agent cannot transfer to itself."]
        if errors:
            raise ValidationError(errors)


class ScenarioVersion(models.Model):
    """One compiled spec a scenario had: written when a save changed the compiled spec (admin, import),
    or when a call started on a spec no version had yet. Immutable once written; it survives the
    deletion of its scenario (calls point at it for their audit)."""

    class Source(models.TextChoices):
        ADMIN = "admin", "Saved in the admin"
        IMPORT = "import", "Imported"
        CALL = "call", "First used by a call"
        EXPORT = "export", "Found at an export"
        EXISTING = "existing", "Configuration found when versions were introduced"

    scenario = models.ForeignKey(Scenario, null=True, on_delete=models.SET_NULL, related_name="versions")
    scenario_slug = models.SlugField(max_length=64, help_text="Kept when the scenario is deleted.")
    number = models.PositiveIntegerField(help_text="1, 2, 3… per scenario.")
    spec_hash = models.CharField(max_length=64, db_index=True)
    spec = models.JSONField(help_text="The compiled spec (ScenarioSpec.to_dict()).")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="scenario_versions")
    author_name = models.CharField(max_length=150, blank=True, help_text="Kept when the user is deleted.")
    source = models.CharField(max_length=16, choices=Source.choices)
    imported_from = models.JSONField(
        null=True, blank=True, help_text="The version the imported file was exported from (number, hash, author, time).")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("scenario_slug", "-number")
        constraints = (models.UniqueConstraint(fields=["scenario", "number"], name="unique_scenario_version"),)

    def __str__(self) -> str:
        return f"{self.scenario_slug} v{self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValueError("A scenario version is immutable; record a new one instead.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError("A scenario version is part of the audit trail and is never deleted.")

    @property
    def label(self) -> str:
        return f"v{self.number} · {self.spec_hash[:10]}"
