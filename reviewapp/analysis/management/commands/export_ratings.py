"""``manage.py export_ratings STUDY``: a study's tidy tables as CSV/Parquet, or their sidecar."""

from __future__ import annotations

import getpass
import sys
import uuid
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError
from django.http import Http404

from reviewapp.analysis import rows, selectors, stats
from reviewapp.analysis.exports import export_chunks, export_valid, parquet_write
from reviewapp.analysis.models import ExportAudit
from reviewapp.analysis.results import DEFAULT_RESAMPLES, DEFAULT_RULE, DEFAULT_SEED
from reviewapp.analysis.selectors import dataset_query
from reviewapp.analysis.services import export_audit_finish, export_audit_start
from reviewapp.studies.models import ReaderStudy


class Command(BaseCommand):
    help = (
        "Export a reader study's tidy ratings (or, with --spans, its error spans; --dataset "
        "reports the renderings shown, --dataset sidecar the JSON describing the tables) with "
        "the unblinding key. STUDY is the study's public id or its exact name. The export is "
        "audited under --user (who must be an analyst, a coordinator of the study or an admin)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("study", help="public id (UUID) or exact name of the reader study")
        parser.add_argument("--user", required=True, help="username the export is made as")
        parser.add_argument("--format", choices=ExportAudit.Format.values, default="csv")
        parser.add_argument("--spans", action="store_true", help="export error spans instead")
        parser.add_argument(
            "--dataset",
            choices=ExportAudit.Dataset.values,
            help="table to export (default ratings); sidecar writes JSON",
        )
        parser.add_argument(
            "--bom", action="store_true", help="start a CSV with a UTF-8 BOM (for Excel)"
        )
        parser.add_argument(
            "--resamples", type=int, default=DEFAULT_RESAMPLES, help="sidecar: bootstrap resamples"
        )
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="sidecar: seed")
        parser.add_argument(
            "--rule",
            choices=list(stats.CASE_RULES),
            default=DEFAULT_RULE,
            help="sidecar: case rule",
        )
        parser.add_argument(
            "--output", "-o", help="file to write (default: standard output; CSV only)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user {options['user']!r}.")
        study = self._study(options["study"], user)
        dataset = options["dataset"] or (
            ExportAudit.Dataset.SPANS if options["spans"] else ExportAudit.Dataset.RATINGS
        )
        fmt = (
            ExportAudit.Format.JSON if dataset == ExportAudit.Dataset.SIDECAR else options["format"]
        )
        if not export_valid(dataset, fmt):
            raise CommandError(f"No {dataset} export as {fmt}.")
        if fmt == "parquet" and not options["output"]:
            raise CommandError("Parquet needs --output FILE (it is not a text format).")
        audit = export_audit_start(
            user=user,
            reader_study=study,
            dataset=dataset,
            format=fmt,
            interface=ExportAudit.Interface.COMMAND,
        )
        counted: list[int] = []
        if fmt == "parquet":
            tidy = dataset_query(reader_study=study, dataset=dataset)
            batches = rows.record_batches(tidy)
            counted.append(parquet_write(batches, columns=tidy.columns, sink=options["output"]))
        else:
            chunks = export_chunks(
                reader_study=study,
                dataset=dataset,
                fmt=fmt,
                on_done=counted.append,
                bom=options["bom"],
                analysis={
                    "n_resamples": options["resamples"],
                    "seed": options["seed"],
                    "rule": options["rule"],
                },
            )
            if options["output"]:
                with Path(options["output"]).open("wb") as target:
                    target.writelines(chunks)
            else:
                sys.stdout.buffer.writelines(chunks)
        count = counted[0]
        export_audit_finish(audit=audit, row_count=count)
        self.stderr.write(
            f"Exported {count} {dataset} rows of {study.name!r} as {fmt}"
            f" (audited as {user.get_username()}, OS user {getpass.getuser()})."
        )

    def _study(self, key: str, user: Any) -> ReaderStudy:
        try:
            public_id: Any = uuid.UUID(key)
        except ValueError:
            matches = list(ReaderStudy.objects.filter(name=key).values_list("public_id", flat=True))
            if len(matches) != 1:
                raise CommandError(
                    f"No single reader study named {key!r} ({len(matches)} found); "
                    "give its public id."
                ) from None
            public_id = matches[0]
        try:
            return selectors.reader_study_get_for_analyst(user=user, public_id=public_id)
        except PermissionDenied:
            raise CommandError(
                f"{user.get_username()} may not export: analysts, coordinators of the study and "
                "admins only."
            ) from None
        except Http404:
            raise CommandError(
                f"No reader study {key!r} that {user.get_username()} may export."
            ) from None
