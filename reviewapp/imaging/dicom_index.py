"""Index a stored DICOM file for fast serving (contract; implementation in progress)."""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset

from reviewapp.imaging.types import InstanceIndex


def index_stored_file(path: Path, ds: Dataset) -> InstanceIndex:
    """Byte ranges of every frame in the file at ``path`` and its DICOM JSON header."""
    raise NotImplementedError
