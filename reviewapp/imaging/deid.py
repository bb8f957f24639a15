"""De-identification (DICOM PS3.15 Annex E basic profile; contract, implementation in progress)."""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset


@dataclass(frozen=True)
class DeidResult:
    dataset: Dataset  # the de-identified copy
    original_patient_id: str
    original_accession: str
    original_study_uid: str
    patient_pseudonym: str
    accession_pseudonym: str
    date_shift_days: int


def pseudonymize_uid(uid: str, *, secret: bytes) -> str:
    """Map a UID to ``2.25.<int>`` with a keyed hash: stable, unlinkable without the key."""
    raise NotImplementedError


def deidentify(ds: Dataset, *, secret: bytes) -> DeidResult:
    """Return a de-identified copy of ``ds`` and the identifiers it replaced."""
    raise NotImplementedError


def residual_phi(ds: Dataset) -> list[str]:
    """Keywords of identifying attributes still present anywhere in ``ds`` (should be [])."""
    raise NotImplementedError
