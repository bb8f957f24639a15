"""Rated studies for the metrics tests: the analysis tests' builders, with report sources."""

from __future__ import annotations

import pytest

from reviewapp.reports.models import Report
from reviewapp.studies.models import Assignment, Case
from tests.analysis.conftest import (  # noqa: F401 (fixtures used by name)
    RatedStudy,
    build_error_study,
    build_pairwise_study,
    error_study,
    other_coordinator,
    pairwise,
    third_reader,
)
from tests.generation.conftest import start_worker  # noqa: F401 (fixture used by name)

__all__ = ["RatedStudy", "build_error_study", "build_pairwise_study"]


# Candidate texts that overlap the original ("Heart size is normal. There is a small left
# effusion. No pneumothorax.") more or less, so every metric varies across the cases.
VARIED_CANDIDATES = (
    "Heart size is normal. There is a small left effusion. No pneumothorax.",
    "Heart size is normal. No pneumothorax.",
    "Heart size is normal. There is a small left effusion.",
    "Cardiomegaly. Small left pleural effusion. No pneumothorax.",
    "Heart size is normal. Large right effusion and a small pneumothorax.",
    "The lungs are clear. No acute cardiopulmonary process.",
)


@pytest.fixture
def varied(reader, second_reader, third_reader, coordinator) -> RatedStudy:  # noqa: F811
    """The analysis tests' Med-Gemini study with candidate reports that differ per case."""
    rated = build_pairwise_study(
        name="Metrics demo",
        readers=[(reader, "US"), (second_reader, "US"), (third_reader, "India")],
        n_cases=18,
        seed=7,
        coordinator=coordinator,
    )
    for n, case in enumerate(Case.objects.filter(reader_study=rated.study).order_by("id")):
        old = case.second_report
        new = Report.objects.create(
            study=case.imaging_study, kind="ai", findings=VARIED_CANDIDATES[n % 6]
        )
        Case.objects.filter(pk=case.pk).update(second_report=new)
        Assignment.objects.filter(case=case, report_a=old).update(report_a=new)
        Assignment.objects.filter(case=case, report_b=old).update(report_b=new)
    return rated
