"""Unpack uploaded archives safely (contract; implementation in progress)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from reviewapp.imaging.types import FileOutcome, IncomingFile


def expand_upload(
    incoming: IncomingFile, *, dest: Path
) -> Iterator[IncomingFile | FileOutcome]:
    """Yield the files of an upload (a zip is unpacked into ``dest`` with limits); a member
    that cannot be taken comes out as a rejected FileOutcome naming it and why."""
    raise NotImplementedError
