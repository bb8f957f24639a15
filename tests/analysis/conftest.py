"""Rated reader studies for the analysis tests.

Ratings are stored in the shape the reader-studies app writes them (answers keyed by form
item, each with question, side, code, source-resolved value and the label the reader saw), so
analysis is tested on the same rows it reads in production.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import AbstractUser

from reviewapp.core.roles import Role
from reviewapp.imaging.models import Study
from reviewapp.reports.models import Report
from reviewapp.reports.services import report_source_original
from reviewapp.studies.models import (
    Assignment,
    Case,
    ErrorSpan,
    Rating,
    ReaderStudy,
    StudyReader,
)
from reviewapp.studies.protocols import protocol_template

# The built-in templates, exactly as a coordinator starts from them.
MEDGEMINI: dict[str, Any] = protocol_template("medgemini_cxr")
ERROR_CORRECTION: dict[str, Any] = protocol_template("error_correction")

FINDINGS = "Heart size is normal. There is a small left effusion. No pneumothorax."
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _render(template: str, candidate_side: str) -> str:
    original_side = "B" if candidate_side == "A" else "A"
    values = {
        "Candidate": f"Report {candidate_side}",
        "candidate": f"Report {candidate_side}",
        "Original": f"Report {original_side}",
        "original": f"Report {original_side}",
        "cand_short": candidate_side,
        "orig_short": original_side,
    }
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


@dataclass
class RatedStudy:
    study: ReaderStudy
    readers: list[AbstractUser]
    # (case public id, reader username) -> stored answer value, for checks
    answers: dict[tuple[str, str], str] = field(default_factory=dict)


def _imaging_study(n: int, stratum: str) -> Study:
    return Study.objects.create(
        study_instance_uid=f"1.2.826.0.1.{uuid.uuid4().int % 10**12}.{n}",
        patient_pseudonym=f"P{n:04d}",
        modalities="CR",
        stratum=stratum,
    )


def _study(name: str, protocol: dict[str, Any], coordinator: AbstractUser | None) -> ReaderStudy:
    study = ReaderStudy.objects.create(
        name=name,
        protocol=protocol,
        protocol_key=protocol["key"],
        protocol_version=protocol["version"],
        status=ReaderStudy.Status.OPEN,
    )
    if coordinator is not None:
        study.coordinators.add(coordinator)
    return study


def build_pairwise_study(
    *,
    name: str,
    readers: list[tuple[AbstractUser, str]],
    n_cases: int,
    seed: int,
    coordinator: AbstractUser | None = None,
    probabilities: dict[str, list[float]] | None = None,
) -> RatedStudy:
    """A Med-Gemini study: half normal, half abnormal cases, every reader rates every case."""
    rng = np.random.default_rng(seed)
    study = _study(name, MEDGEMINI, coordinator)
    for user, cohort in readers:
        StudyReader.objects.create(reader_study=study, reader=user, cohort=cohort)
    options = MEDGEMINI["questions"][0]["options"]
    probabilities = probabilities or {
        "normal": [0.05, 0.15, 0.45, 0.2, 0.1, 0.05],
        "abnormal": [0.05, 0.1, 0.3, 0.3, 0.2, 0.05],
    }
    rated = RatedStudy(study=study, readers=[u for u, _ in readers])
    for n in range(n_cases):
        stratum = "normal" if n % 2 == 0 else "abnormal"
        imaging = _imaging_study(n, stratum)
        original = Report.objects.create(
            study=imaging, kind="original", findings=FINDINGS, source=report_source_original()
        )
        ai = Report.objects.create(study=imaging, kind="ai", findings=f"AI: {FINDINGS}")
        case = Case.objects.create(
            reader_study=study,
            imaging_study=imaging,
            first_report=original,
            second_report=ai,
            stratum=stratum,
        )
        for r, (user, _) in enumerate(readers):
            candidate_side = "A" if (n + r) % 2 == 0 else "B"
            report_a, report_b = (ai, original) if candidate_side == "A" else (original, ai)
            opened = T0 + timedelta(minutes=10 * n + r)
            assignment = Assignment.objects.create(
                reader_study=study,
                case=case,
                reader=user,
                position=n + 1,
                report_a=report_a,
                report_b=report_b,
                candidate_side=candidate_side,
                status=Assignment.Status.SUBMITTED,
                opened_at=opened,
                first_answer_at=opened + timedelta(seconds=20),
                submitted_at=opened + timedelta(seconds=65),
                active_seconds=60.0,
            )
            choice = options[rng.choice(len(options), p=probabilities[stratum])]
            Rating.objects.create(
                assignment=assignment,
                answers={
                    "comparison": {
                        "question": "comparison",
                        "side": "",
                        "code": "abcdef"[options.index(choice)],
                        "value": choice["value"],
                        "label": _render(choice["label"], candidate_side),
                    }
                },
                source_a=report_a.kind,
                source_b=report_b.kind,
                version=1 + (n % 3 == 0),
                submitted_at=opened + timedelta(seconds=65),
                revised_at=opened + timedelta(hours=1) if n % 3 == 0 else None,
                active_seconds=60.0,
            )
            rated.answers[(str(case.public_id), user.get_username())] = choice["value"]
    return rated


def build_error_study(
    *, name: str, readers: list[AbstractUser], n_studies: int, coordinator: AbstractUser | None
) -> RatedStudy:
    """Error correction: each imaging study twice (AI report, original report), spans marked.

    The AI report of study n carries a clinically significant error when n % 3 != 0, the
    original when n % 4 == 0; study 5's image quality is judged insufficient by everyone.
    """
    study = _study(name, ERROR_CORRECTION, coordinator)
    for user in readers:
        StudyReader.objects.create(reader_study=study, reader=user)
    rated = RatedStudy(study=study, readers=list(readers))
    position = dict.fromkeys([u.pk for u in readers], 0)
    for n in range(n_studies):
        imaging = _imaging_study(1000 + n, "")
        reports = {
            "original": Report.objects.create(study=imaging, kind="original", findings=FINDINGS),
            "ai": Report.objects.create(study=imaging, kind="ai", findings=FINDINGS),
        }
        for kind, report in reports.items():
            case = Case.objects.create(
                reader_study=study, imaging_study=imaging, first_report=report
            )
            for user in readers:
                position[user.pk] += 1
                assignment = Assignment.objects.create(
                    reader_study=study,
                    case=case,
                    reader=user,
                    position=position[user.pk],
                    report_a=report,
                    status=Assignment.Status.SUBMITTED,
                    opened_at=T0,
                    submitted_at=T0 + timedelta(minutes=2),
                )
                quality = "no" if n == 5 else "yes"
                rating = Rating.objects.create(
                    assignment=assignment,
                    answers={
                        "image_quality": {
                            "question": "image_quality",
                            "side": "",
                            "code": "a" if quality == "yes" else "b",
                            "value": quality,
                            "label": quality.capitalize(),
                        }
                    },
                    source_a=kind,
                    submitted_at=T0 + timedelta(minutes=2),
                )
                has_error = (n % 3 != 0) if kind == "ai" else (n % 4 == 0)
                if quality == "yes" and has_error:
                    # "There is a small left effusion." is the second sentence.
                    start = FINDINGS.index("small left effusion")
                    ErrorSpan.objects.create(
                        rating=rating,
                        report=report,
                        side="",
                        section="findings",
                        start=start,
                        end=start + len("small left effusion"),
                        # Stored with the span by the rating service, from the text shown.
                        quoted_text="small left effusion",
                        sentence_index=1,
                        category="false_finding",
                        is_significant=True,
                        replacement_text="no effusion",
                    )
                    ErrorSpan.objects.create(
                        rating=rating,
                        report=report,
                        side="",
                        section="findings",
                        start=0,
                        end=len("Heart size"),
                        quoted_text="Heart size",
                        sentence_index=0,
                        category="incorrect_location",
                        is_significant=False,
                    )
    return rated


@pytest.fixture
def third_reader(make_user: Callable[..., AbstractUser]) -> AbstractUser:
    return make_user("frank", Role.READER)


@pytest.fixture
def pairwise(
    reader: AbstractUser,
    second_reader: AbstractUser,
    third_reader: AbstractUser,
    coordinator: AbstractUser,
) -> RatedStudy:
    return build_pairwise_study(
        name="MIMIC-CXR demo",
        readers=[(reader, "US"), (second_reader, "US"), (third_reader, "India")],
        n_cases=24,
        seed=5,
        coordinator=coordinator,
    )


@pytest.fixture
def other_coordinator(make_user: Callable[..., AbstractUser]) -> AbstractUser:
    return make_user("grace", Role.COORDINATOR)


@pytest.fixture
def error_study(
    reader: AbstractUser, second_reader: AbstractUser, other_coordinator: AbstractUser
) -> RatedStudy:
    return build_error_study(
        name="Error correction demo",
        readers=[reader, second_reader],
        n_studies=12,
        coordinator=other_coordinator,
    )
