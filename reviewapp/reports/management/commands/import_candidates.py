"""``manage.py import_candidates --source NAME [--version V] FILE``: an external model's reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reviewapp.reports.candidate_formats import FORMATS
from reviewapp.reports.services import MAX_CANDIDATES_BYTES, candidates_import


class Command(BaseCommand):
    help = (
        "Import an external model's candidate reports from CSV, JSONL or ReXrank JSON, keyed by "
        "StudyInstanceUID, AccessionNumber or the dataset study id."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # ``--version`` is the model's version here, as the coordinator expects, not Django's.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--source", required=True, help="The model's name.")
        parser.add_argument("--version", dest="source_version", default="")
        parser.add_argument("--description", default=None)
        parser.add_argument("--provenance", default=None, help="A JSON object of free fields.")
        parser.add_argument("--format", dest="fmt", choices=FORMATS, default="")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file.")
        if path.stat().st_size > MAX_CANDIDATES_BYTES:
            raise CommandError(
                f"{path.name}: larger than {MAX_CANDIDATES_BYTES // (1024 * 1024)} MB."
            )
        provenance = None
        if options["provenance"] is not None:
            try:
                provenance = json.loads(options["provenance"])
            except ValueError:
                raise CommandError("--provenance must be a JSON object.") from None
        result = candidates_import(
            data=path.read_bytes(),
            file_name=path.name,
            source_name=options["source"],
            source_version=options["source_version"],
            source_description=options["description"],
            source_provenance=provenance,
            fmt=options["fmt"],
        )
        if result.error:
            raise CommandError(f"{path.name}: {result.error}")
        assert result.source is not None
        self.stdout.write(
            f"{path.name} ({result.fmt}) as {result.source.label}: {result.created} created, "
            f"{result.versioned} new versions, {result.unchanged} unchanged, "
            f"{len(result.problems)} records not imported."
        )
        if result.versioned_message:
            self.stdout.write(result.versioned_message)
        for problem in result.problems:
            key = f" ({problem.key})" if problem.key else ""
            self.stdout.write(f"  record {problem.row}{key}: {problem.reason}")
