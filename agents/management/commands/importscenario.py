"""python manage.py importscenario FILE: create or update a scenario from an export ("-" = stdin)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agents.exchange import ImportRefused, import_scenario_json


class Command(BaseCommand):
    help = "Import a scenario JSON export. Same validation as the admin; a bad file changes nothing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help='Path to the JSON file, or "-" for stdin.')

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["file"]
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from exc
        try:
            scenario = import_scenario_json(text)
        except ImportRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"imported scenario {scenario.slug}")
