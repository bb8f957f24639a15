"""Values passed between the import pipeline's parts (parsing, de-identification, indexing,
storing) and its interfaces (upload page, command line, STOW-RS)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from django.contrib.auth.models import User

OutcomeStatus = Literal["imported", "duplicate", "quarantined", "rejected"]


@dataclass(frozen=True)
class DatasetOrigin:
    """Where an object built from a research dataset's image comes from (``raster``).

    ``released_by``: the coordinator who asked for the import and confirmed that the dataset's
    publisher removed identifiers from its pixels; the secondary-capture quarantine is then
    recorded as reviewed by them at import instead of waiting image by image.
    """

    name: str
    study_id: str
    released_by: User | None = None


@dataclass(frozen=True)
class IncomingFile:
    """One file to import: ``name`` is what the user knows it by (shown in messages)."""

    name: str
    path: Path
    dataset: DatasetOrigin | None = None


@dataclass(frozen=True)
class FileOutcome:
    """What became of one incoming file. ``reason`` is safe to show: never patient data."""

    name: str
    status: OutcomeStatus
    reason: str = ""
    sop_instance_uid: str = ""  # as stored (de-identified)
    sop_class_uid: str = ""
    study_instance_uid: str = ""  # as stored (de-identified)
    series_instance_uid: str = ""  # as stored (de-identified)


@dataclass(frozen=True)
class InstanceIndex:
    """What serving an instance needs, computed once from the stored file."""

    # Per frame, the (byte offset, length) ranges that make it up, in order: one range for
    # native pixel data and single-fragment frames, several when a frame spans fragments.
    frame_ranges: list[list[tuple[int, int]]]
    dicom_json: dict  # PS3.18 F.2 DICOM JSON of the header, bulk data left out
    number_of_frames: int = 1
    extra: dict = field(default_factory=dict)
