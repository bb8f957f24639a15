"""``manage.py import_dicom PATH...``: import files, folders (recursively) and zips in-process."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from reviewapp.imaging.ingest.services import import_batch_create, import_batch_run
from reviewapp.imaging.ingest.types import FileOutcome, IncomingFile
from reviewapp.imaging.models import ImportBatch


def collect_files(paths: list[str]) -> list[IncomingFile]:
    """Every regular file under the given paths, named relative to the argument it came from."""
    files: list[IncomingFile] = []
    for raw in paths:
        root = Path(raw)
        if root.is_file():
            files.append(IncomingFile(name=root.name, path=root))
        elif root.is_dir():
            for path in sorted(root.rglob("*")):
                # Hidden files (.DS_Store and friends) are never DICOM.
                if path.is_file() and not any(
                    p.startswith(".") for p in path.relative_to(root).parts
                ):
                    name = f"{root.name}/{path.relative_to(root).as_posix()}"
                    files.append(IncomingFile(name=name, path=path))
        else:
            raise CommandError(f"{raw}: no such file or folder.")
    return files


class Command(BaseCommand):
    help = "Import DICOM files, folders (recursively) and .zip archives into the archive."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", help="files, folders or .zip archives")
        parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        files = collect_files(options["paths"])
        if not files:
            raise CommandError("No files found under the given paths.")
        batch = import_batch_create(
            source=ImportBatch.Source.COMMAND, created_by=None, files_total=len(files)
        )
        with tqdm(
            total=len(files),
            unit="file",
            desc="Importing",
            disable=options["no_progress"],
            file=self.stderr._out,
        ) as bar:

            def advance(outcome: FileOutcome) -> None:
                bar.total = max(bar.total, bar.n + 1)
                bar.update(1)

            outcomes = import_batch_run(batch=batch, files=files, on_progress=advance)
        counts = Counter(o.status for o in outcomes)
        studies = len({o.study_instance_uid for o in outcomes if o.study_instance_uid})
        self.stdout.write(
            f"Import {batch.public_id}: {len(outcomes)} files, "
            f"{counts['imported']} imported, {counts['duplicate']} already in the archive, "
            f"{counts['quarantined']} quarantined, {counts['rejected']} not imported; "
            f"{studies} stud{'y' if studies == 1 else 'ies'}."
        )
        for outcome in outcomes:
            if outcome.status in ("rejected", "quarantined"):
                self.stdout.write(f"  {outcome.status}: {outcome.name}: {outcome.reason}")
