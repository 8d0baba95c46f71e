"""python manage.py loaddemo [--reset]: the demo records and the retail and carrier scenarios."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agents.exchange import ImportRefused
from demo.loader import load_demo


class Command(BaseCommand):
    help = "Create the demo scenarios (retail, carrier) and their demo records. Safe to run again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset", action="store_true", help="Overwrite the demo scenarios even if they were edited."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            outcome = load_demo(reset=options["reset"])
        except ImportRefused as exc:
            raise CommandError(str(exc)) from exc
        for slug, what in outcome:
            note = "already there, left as it is" if what == "kept" else what
            self.stdout.write(f"demo scenario {slug}: {note}")
