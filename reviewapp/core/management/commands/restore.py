"""``manage.py restore FOLDER``: a backup into an empty database and storage (core.backup)."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from reviewapp.core.backup import backup_restore
from reviewapp.core.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Restore a backup made by `manage.py backup` into an empty database (create it first; "
        "do not migrate it) and empty storage. Every hash is checked before anything is written."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("folder", type=Path)

    def handle(self, *args: Any, folder: Path, **options: Any) -> None:
        try:
            summary = backup_restore(source=folder)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"Restored the database and {summary.files} files ({summary.bytes} bytes) from "
            f"{summary.path}."
        )
