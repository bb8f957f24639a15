"""``manage.py import_dataset --layout L --name NAME FOLDER``: PNG/JPEG research datasets."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from reviewapp.core.errors import ApplicationError
from reviewapp.imaging.ingest import dataset_layouts, raster
from reviewapp.imaging.ingest.datasets import DatasetOptions, dataset_import_run
from reviewapp.imaging.ingest.services import import_batch_create
from reviewapp.imaging.ingest.types import FileOutcome
from reviewapp.imaging.models import ImportBatch


class Command(BaseCommand):
    help = (
        "Import a research dataset of PNG/JPEG images (a folder with a manifest CSV, the ReXrank "
        "test-set JSON, or MIMIC-CXR-JPG's files/ and metadata CSV) as DICOM studies, with the "
        "original reports and clinical context the layout carries."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("folder", type=Path, help="the dataset's folder")
        parser.add_argument("--layout", required=True, choices=dataset_layouts.LAYOUTS)
        parser.add_argument(
            "--name", required=True, help="the dataset's name, e.g. 'MIMIC-CXR test'"
        )
        parser.add_argument(
            "--table",
            default="",
            help="the manifest CSV, ReXrank JSON or metadata CSV inside the folder, when not "
            f"manifest.csv / the only .json / {dataset_layouts.MIMIC_METADATA}",
        )
        parser.add_argument("--modality", choices=raster.MODALITIES, default="DX")
        parser.add_argument(
            "--studies",
            type=Path,
            help="a text file of dataset study ids, one per line: import only these",
        )
        parser.add_argument(
            "--release",
            action="store_true",
            help="confirm that the dataset's publisher removed identifiers from its pixels: "
            "the images skip the quarantine, recorded as reviewed by --user",
        )
        parser.add_argument("--user", help="the coordinator's username (needed by --release)")
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        folder: Path = options["folder"]
        if not folder.is_dir():
            raise CommandError(f"{folder}: no such folder.")
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"{options['user']}: no such user.")
        study_ids = None
        if options["studies"]:
            lines = options["studies"].read_text(encoding="utf-8").splitlines()
            study_ids = {line.strip() for line in lines if line.strip()}
        dataset = DatasetOptions(
            name=options["name"],
            layout=options["layout"],
            modality=options["modality"],
            table=options["table"],
            release=options["release"],
        )
        try:
            dataset = dataset.validated()
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        batch = import_batch_create(source=ImportBatch.Source.DATASET, created_by=user)
        with tqdm(
            unit="image",
            desc="Importing",
            disable=options["no_progress"],
            file=self.stderr._out,
        ) as bar:

            def advance(outcome: FileOutcome) -> None:
                if not bar.total:
                    bar.total = ImportBatch.objects.get(pk=batch.pk).files_total
                bar.update(1)

            try:
                result = dataset_import_run(
                    batch=batch,
                    root=folder,
                    options=dataset,
                    requested_by=user,
                    study_ids=study_ids,
                    on_progress=advance,
                )
            except ApplicationError as exc:
                raise CommandError(exc.message) from None
        counts = Counter(o.status for o in result.outcomes)
        self.stdout.write(
            f"Import {batch.public_id} ({dataset.name}): {result.studies_stored} of "
            f"{result.studies} studies stored; images: {counts['imported']} imported, "
            f"{counts['duplicate']} already in the archive, {counts['quarantined']} quarantined, "
            f"{counts['rejected']} not imported; reports: {result.reports_created} created, "
            f"{result.reports_versioned} new versions, {result.reports_unchanged} unchanged."
        )
        for outcome in result.outcomes:
            if outcome.status == "rejected":
                self.stdout.write(f"  not imported: {outcome.name}: {outcome.reason}")
        if counts["quarantined"]:
            self.stdout.write(
                "  The images wait in quarantine for review (or import again with --release "
                "--user if the publisher de-identified the pixels)."
            )
