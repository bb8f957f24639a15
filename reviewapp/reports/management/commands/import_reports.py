"""``manage.py import_reports FILE.csv``: create original reports (or new versions) from a CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reviewapp.reports.services import reports_import_csv


class Command(BaseCommand):
    help = (
        "Import original reports from a CSV keyed by StudyInstanceUID, AccessionNumber or a "
        "research dataset's study_id "
        "(columns findings, impression, optional stratum)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("csv_file", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["csv_file"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file.")
        result = reports_import_csv(data=path.read_bytes(), source_name=path.name)
        if result.error:
            raise CommandError(f"{path.name}: {result.error}")
        self.stdout.write(
            f"{path.name}: {result.created} created, {result.versioned} new versions, "
            f"{result.unchanged} unchanged, {len(result.problems)} rows not imported."
        )
        if result.versioned_message:
            self.stdout.write(result.versioned_message)
        for problem in result.problems:
            self.stdout.write(f"  row {problem.row}: {problem.reason}")
