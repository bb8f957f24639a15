"""Parse untrusted DICOM files with limits (contract; implementation in progress)."""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset


class UnsafeDicomError(Exception):
    """The file cannot be imported; ``reason`` says why in words safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_untrusted(path: Path) -> Dataset:
    """Read one file as DICOM or raise UnsafeDicomError (size, nesting depth, meta header,
    required attributes, pixel data length, refused object types such as SR/PDF/SC)."""
    raise NotImplementedError


def quarantine_reason(ds: Dataset) -> str | None:
    """Why an image must wait for a coordinator (Burned In Annotation not NO), or None."""
    raise NotImplementedError
