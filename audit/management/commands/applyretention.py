"""python manage.py applyretention [--days N]: remove the caller's words from calls past retention now."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.retention import apply_retention


class Command(BaseCommand):
    help = ("Remove the transcripts and summaries of calls that ended more than RETENTION_DAYS ago; "
            "handoffs, tools (arguments redacted per tool), guardrails, escalations and costs stay.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=None, help="Override RETENTION_DAYS for this run.")
        parser.add_argument("--batch", type=int, default=None, help="Calls per pass (default RETENTION_BATCH).")

    def handle(self, *args: Any, **options: Any) -> None:
        days = settings.RETENTION_DAYS if options["days"] is None else options["days"]
        if days <= 0:
            raise CommandError("Retention is off (RETENTION_DAYS is 0); pass --days N to run it anyway.")
        total = 0
        while True:  # every due call, one batch at a time
            counts = apply_retention(days=days, limit=options["batch"])
            total += counts["calls"]
            if counts["calls"] == 0:
                break
        self.stdout.write(f"retention ({days} days): removed the words of {total} calls")
