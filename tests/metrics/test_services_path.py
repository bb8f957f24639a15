"""Metrics on studies built and rated the way the product builds and rates them (the studies
app's services, as in the demo's tour): pairwise and single-report protocols."""

from __future__ import annotations

import uuid

import pytest

from reviewapp.metrics import selectors, services
from reviewapp.metrics.models import MetricResult
from reviewapp.studies import services as study_services
from reviewapp.studies.models import Assignment
from tests.studies.conftest import build_study, make_case_study

pytestmark = pytest.mark.django_db


def _rate(study, readers, answers_for) -> None:  # type: ignore[no-untyped-def]
    for reader in readers:
        for n, assignment in enumerate(
            Assignment.objects.filter(reader_study=study, reader=reader).order_by("position")
        ):
            study_services.rating_submit(
                assignment=assignment,
                reader=reader,
                answers=answers_for(n),
                idempotency_key=uuid.uuid4(),
            )


def _score(study, user) -> None:  # type: ignore[no-untyped-def]
    for job in services.metric_jobs_create(user=user, reader_study=study):
        services.metric_job_execute(job_pk=job.pk)


def test_a_rated_med_gemini_study_gets_rates_and_agreement(
    coordinator, reader, second_reader, analyst
) -> None:
    imaging = [make_case_study(i) for i in range(6)]
    study = build_study(coordinator=coordinator, readers=[reader, second_reader], imaging=imaging)
    _rate(study, [reader, second_reader], lambda n: {"comparison": "abcdef"[n % 6]})
    _score(study, analyst)
    assert MetricResult.objects.filter(status="scored").count() == 6 * 3
    overview = selectors.metrics_overview(reader_study=study, resamples=200)
    (row,) = overview.source_rows
    assert row["reports"] == 6
    labels = [c.label for c in overview.expert.columns]
    assert labels == ["equivalent or better", "same or superior management"]
    assert all(v is not None for v in row["expert"])
    assert {r["n_reports"] for r in overview.agreement} == {6}


def test_a_rated_radpeer_study_compares_metrics_with_the_score_level(
    coordinator, reader, second_reader, analyst
) -> None:
    imaging = [make_case_study(i) for i in range(4)]
    study = build_study(
        coordinator=coordinator,
        readers=[reader, second_reader],
        imaging=imaging,
        protocol_key="radpeer",
    )
    _rate(
        study,
        [reader, second_reader],
        lambda n: {"score": "a"} if n % 3 == 0 else {"score": "abc"[n % 3], "modifier": "a"},
    )
    _score(study, analyst)
    expert = selectors.expert_outcomes(reader_study=study)
    assert [c.id for c in expert.columns] == ["outcome_concur", "level_score"]
    ai_levels = [v["level_score"] for v in expert.per_report.values()]
    assert len(ai_levels) == 4  # the AI reports; the originals' own ratings are not candidates
    assert all(len(levels) == 2 and set(levels) <= {1.0, 2.0, 3.0} for levels in ai_levels)
