"""python manage.py compilescenario [SLUG]: the compiled spec as JSON (all scenarios as a list)."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from agents.compile import compile_scenario
from agents.models import Scenario


class Command(BaseCommand):
    help = "Print the compiled spec of a scenario, or of every scenario as a JSON list. Fails on a broken one."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", nargs="?")

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options["slug"]
        if slug:
            scenarios = list(Scenario.objects.filter(slug=slug))
            if not scenarios:
                raise CommandError(f"There is no scenario {slug!r}.")
        else:
            scenarios = list(Scenario.objects.order_by("slug"))
        specs = []
        for scenario in scenarios:
            try:
                specs.append(compile_scenario(scenario).to_dict())
            except ValidationError as exc:
                raise CommandError(
                    f"The scenario {scenario.slug} does not compile:\n- " + "\n- ".join(exc.messages)
                ) from exc
        out = specs[0] if slug else specs
        self.stdout.write(json.dumps(out, indent=2, sort_keys=True, ensure_ascii=False))
