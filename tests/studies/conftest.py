"""Reader-study fixtures: imaging studies with an original and an AI report each.

The AI reports are made with a recognisable model name in their provenance note and
deliberately different habits (upper case, a dictation footer on the original) so that the
blinding tests have something real to look for.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import AbstractUser
from django.utils import timezone

from reviewapp.core.roles import Role
from reviewapp.imaging.models import Study
from reviewapp.reports.models import Report
from reviewapp.studies import protocols, services
from reviewapp.studies.models import ReaderStudy

MODEL_NAME = "medgemma-zz-secret-4b"


def make_imaging_study(index: int, *, stratum: str = "normal", modality: str = "CR") -> Study:
    return Study.objects.create(
        study_instance_uid=f"2.25.{uuid.uuid4().int}",
        patient_pseudonym=f"PAT{index:04d}",
        accession_pseudonym=f"ACC{index:04d}",
        modalities=modality,
        stratum=stratum,
        description="Chest",
    )


def make_case_study(index: int, *, stratum: str = "normal", modality: str = "CR") -> Study:
    study = make_imaging_study(index, stratum=stratum, modality=modality)
    Report.objects.create(
        study=study,
        kind=Report.Kind.ORIGINAL,
        findings=f"HEART SIZE NORMAL. NO FOCAL CONSOLIDATION {index}.\nDictated by Dr Who",
        impression="NO ACUTE CARDIOPULMONARY PROCESS.",
        source_note="reports.csv",
    )
    Report.objects.create(
        study=study,
        kind=Report.Kind.AI,
        findings=f"The lungs are clear. Cardiac silhouette is within normal limits {index}.",
        impression="No acute disease.",
        source_note=MODEL_NAME,
    )
    # Realistic provenance: the original was written weeks before the AI report, so a leaked
    # creation date would tell them apart (and not collide with today's rating times).
    now = timezone.now()
    Report.objects.filter(study=study, kind=Report.Kind.ORIGINAL).update(
        created_at=now - timedelta(days=30, minutes=index)
    )
    Report.objects.filter(study=study, kind=Report.Kind.AI).update(
        created_at=now - timedelta(days=2, minutes=index)
    )
    return study


@pytest.fixture
def frank(make_user: Callable[..., AbstractUser]) -> AbstractUser:
    """A coordinator who does not coordinate the study under test."""
    return make_user("frank", Role.COORDINATOR)


@pytest.fixture
def case_studies(db: None) -> list[Study]:
    return [make_case_study(i, stratum="normal" if i % 2 else "abnormal") for i in range(6)]


def build_study(
    *,
    coordinator: AbstractUser,
    readers: list[AbstractUser],
    imaging: list[Study],
    protocol_key: str = "medgemini_cxr",
    ask_ai_guess: bool = False,
    reads_per_case: int | None = None,
    open_it: bool = True,
    seed: int = 1234,
    name: str = "CXR pilot",
    practice: int = 0,
) -> ReaderStudy:
    """A study of ``imaging`` (the first ``practice`` of them as practice cases, with
    reference answers), its lists drawn and, unless ``open_it`` is False, opened."""
    study = services.reader_study_create(
        user=coordinator, name=name, protocol_key=protocol_key, ask_ai_guess=ask_ai_guess
    )
    result = services.cases_add(
        reader_study=study,
        imaging_studies=imaging,
        candidate_reports=Report.objects.filter(kind=Report.Kind.AI),
    )
    assert not result.problems, result.problems
    if practice:
        practice_enter(study, coordinator=coordinator, imaging=imaging[:practice])
    services.panel_set(reader_study=study, readers=[(r, "US") for r in readers])
    services.assignments_generate(reader_study=study, reads_per_case=reads_per_case, seed=seed)
    if open_it:
        services.reader_study_open(reader_study=study, acknowledged_by=coordinator)
    study.refresh_from_db()
    return study


def reference_form(study: ReaderStudy, *, choice: str = "a") -> dict[str, str]:
    """A coordinator's reference form: option ``choice`` of every question, a text where one
    is asked (hidden follow-up questions are left out by the service, as on the page)."""
    form = protocols.form_build(
        protocols.protocol_for_reference(study.protocol),
        protocols.reference_sides(study.protocol),
    )
    return {
        item["id"]: "The effusion is described in one report only."
        if item["type"] == "free_text"
        else choice
        for item in form
        if item["type"] != "error_spans"
    }


def practice_enter(
    study: ReaderStudy, *, coordinator: AbstractUser, imaging: list[Study], choice: str = "a"
) -> None:
    """Make ``imaging``'s cases practice cases, with reference answers (option ``choice``)."""
    for image in imaging:
        case = study.cases.filter(imaging_study=image).first()
        assert case is not None
        services.case_practice_set(reader_study=study, case=case, is_practice=True)
    for case in study.cases.filter(is_practice=True):
        services.case_reference_set(
            reader_study=study,
            case=case,
            answers=reference_form(study, choice=choice),
            user=coordinator,
        )


@pytest.fixture
def open_study(coordinator, reader, second_reader, case_studies) -> ReaderStudy:
    return build_study(
        coordinator=coordinator, readers=[reader, second_reader], imaging=case_studies
    )


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    # Each world makes seven personas; the production hasher's deliberate slowness would
    # dominate these tests on a small machine without testing anything about studies.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
