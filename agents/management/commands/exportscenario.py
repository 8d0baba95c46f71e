"""python manage.py exportscenario SLUG: the scenario as JSON on stdout (see agents.exchange)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agents.exchange import export_scenario_json
from agents.models import Scenario


class Command(BaseCommand):
    help = "Write a scenario (with its agents, tools and handoffs) as JSON to stdout."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")

    def handle(self, *args: Any, **options: Any) -> None:
        scenario = Scenario.objects.filter(slug=options["slug"]).first()
        if scenario is None:
            raise CommandError(f"There is no scenario {options['slug']!r}.")
        self.stdout.write(export_scenario_json(scenario), ending="")
