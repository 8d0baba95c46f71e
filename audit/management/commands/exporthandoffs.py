"""python manage.py exporthandoffs [--format csv|jsonl] [filters] [-o FILE]: the audit export, for
scheduled dumps. Same filters and rows as /audit/export.csv and /audit/export.jsonl, streamed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.export import FORMATS, handoff_rows
from audit.filters import OUTCOMES, HandoffFilter


class Command(BaseCommand):
    help = "Export handoffs (filtered like /audit/) as CSV or JSON Lines to a file or stdout."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=sorted(FORMATS), default="csv")
        parser.add_argument("--from", dest="start", help="First day, YYYY-MM-DD (UTC, inclusive).")
        parser.add_argument("--to", dest="end", help="Last day, YYYY-MM-DD (UTC, inclusive).")
        parser.add_argument("--scenario", help="Scenario slug.")
        parser.add_argument("--config-version", dest="scenario_version", type=int,
                            help="Configuration version id (see /audit/ or the scenario's history in the admin).")
        parser.add_argument("--source", help="From agent (slug).")
        parser.add_argument("--target", help="To agent (slug).")
        parser.add_argument("--outcome", choices=[key for key, _ in OUTCOMES])
        parser.add_argument("--reason", help="Words that must all appear in the reason.")
        parser.add_argument("-o", "--output", help="File to write (default: stdout). Written aside, then moved.")

    def handle(self, *args: Any, **options: Any) -> None:
        form = HandoffFilter({
            "start": options["start"] or "", "end": options["end"] or "", "scenario": options["scenario"] or "",
            "version": options["scenario_version"] or "", "source": options["source"] or "",
            "target": options["target"] or "", "outcome": options["outcome"] or "", "q": options["reason"] or "",
        })
        if not form.is_valid():
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
        lines, _ = FORMATS[options["format"]]
        rows = 0

        def counted() -> Any:
            nonlocal rows
            for row in handoff_rows(form.queryset()):
                rows += 1
                yield row

        if not options["output"]:
            for line in lines(counted()):
                sys.stdout.write(line)
            sys.stdout.flush()
            return
        target = Path(options["output"])
        draft = target.with_name(f".{target.name}.part")
        try:
            with draft.open("w", encoding="utf-8", newline="") as handle:
                for line in lines(counted()):
                    handle.write(line)
            draft.replace(target)
        except OSError as exc:
            draft.unlink(missing_ok=True)
            raise CommandError(f"Cannot write {target}: {exc.strerror}.") from exc
        self.stderr.write(f"exported {rows} handoffs to {target}")
