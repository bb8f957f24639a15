"""``manage.py backup FOLDER``: the database and stored files, consistent (core.backup)."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from reviewapp.core.backup import backup_create
from reviewapp.core.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Back up the database and every stored DICOM file it names, from one snapshot, into "
        "FOLDER (new or empty). Restore with `manage.py restore FOLDER`."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("folder", type=Path)

    def handle(self, *args: Any, folder: Path, **options: Any) -> None:
        try:
            summary = backup_create(destination=folder)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"Backed up the database and {summary.files} files ({summary.bytes} bytes) "
            f"into {summary.path}."
        )
