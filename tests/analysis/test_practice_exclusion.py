"""Practice cases are never analysed: every figure equals the figure without them, the exports
keep their rows flagged ``is_practice``, and the analysis page says how many it left out."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from reviewapp.analysis.results import analysis_results
from reviewapp.analysis.selectors import RATING_COLUMNS, practice_ratings_count
from reviewapp.metrics.selectors import expert_outcomes, metric_pairs
from reviewapp.reports.models import Report
from reviewapp.studies import selectors as study_selectors
from reviewapp.studies.models import Assignment, Case, Rating
from tests.analysis.conftest import FINDINGS, MEDGEMINI, T0, RatedStudy, _imaging_study, _render

pytestmark = pytest.mark.django_db


def add_practice_cases(rated: RatedStudy, count: int) -> list[Case]:
    """``count`` practice cases read by every reader of the study, each rated with the most
    extreme answer (so that any practice row reaching a figure would move it)."""
    study = rated.study
    option = MEDGEMINI["questions"][0]["options"][0]  # the candidate much better
    cases = []
    for n in range(count):
        imaging = _imaging_study(900 + n, "normal")
        original = Report.objects.create(study=imaging, kind="original", findings=FINDINGS)
        ai = Report.objects.create(study=imaging, kind="ai", findings=f"AI: {FINDINGS}")
        case = Case.objects.create(
            reader_study=study,
            imaging_study=imaging,
            first_report=original,
            second_report=ai,
            stratum="normal",
            is_practice=True,
        )
        cases.append(case)
        for user in rated.readers:
            # Practice cases come first in a list: the real reads keep their own positions
            # (reading positions are compared within a reader, so shifting them is harmless).
            opened = T0 - timedelta(hours=1, minutes=n)
            assignment = Assignment.objects.create(
                reader_study=study,
                case=case,
                reader=user,
                position=10_000 + n,
                report_a=ai,
                report_b=original,
                candidate_side="A",
                status=Assignment.Status.SUBMITTED,
                opened_at=opened,
                submitted_at=opened + timedelta(seconds=90),
                active_seconds=90.0,
            )
            Rating.objects.create(
                assignment=assignment,
                answers={
                    "comparison": {
                        "question": "comparison",
                        "side": "",
                        "code": "a",
                        "value": option["value"],
                        "label": _render(option["label"], "A"),
                    }
                },
                source_a="ai",
                source_b="original",
                submitted_at=opened + timedelta(seconds=90),
                active_seconds=90.0,
            )
    return cases


def _figures(rated: RatedStudy) -> str:
    results = analysis_results(reader_study=rated.study, n_resamples=200, with_plots=False)
    return json.dumps(results, sort_keys=True, default=str)


def _ratings_csv(client: Client, rated: RatedStudy) -> list[dict[str, str]]:
    url = reverse(
        "analysis:export",
        kwargs={"public_id": rated.study.public_id, "dataset": "ratings", "fmt": "csv"},
    )
    response = client.get(url)
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.DictReader(io.StringIO(body)))


def test_every_figure_equals_the_figure_of_the_study_without_its_practice_cases(
    pairwise: RatedStudy,
) -> None:
    before = _figures(pairwise)
    add_practice_cases(pairwise, 2)
    assert Rating.objects.filter(assignment__case__is_practice=True).count() == 6
    # The same seed and resamples over the same real rows: headline, case level, agreement,
    # per reader, cohorts, position bias and reading position all unchanged.
    assert _figures(pairwise) == before


def test_exports_keep_practice_rows_flagged_and_the_rest_unchanged(
    pairwise: RatedStudy, analyst
) -> None:
    client = Client()
    client.force_login(analyst)
    before = _ratings_csv(client, pairwise)
    assert "is_practice" in RATING_COLUMNS
    assert {row["is_practice"] for row in before} == {"false"}
    practice = {str(c.public_id) for c in add_practice_cases(pairwise, 2)}
    after = _ratings_csv(client, pairwise)
    flagged = [row for row in after if row["is_practice"] == "true"]
    assert {row["case"] for row in flagged} == practice
    assert len(flagged) == 6  # one answer row per reader and practice case
    assert [row for row in after if row["is_practice"] == "false"] == before


def test_the_analysis_page_says_how_many_practice_ratings_it_left_out(
    pairwise: RatedStudy, analyst
) -> None:
    client = Client()
    client.force_login(analyst)
    url = reverse("analysis:study", kwargs={"public_id": pairwise.study.public_id})
    assert 'id="practice-excluded"' not in client.get(url, {"resamples": 200}).content.decode()
    add_practice_cases(pairwise, 2)
    assert practice_ratings_count(reader_study=pairwise.study) == 6
    page = client.get(url, {"resamples": 200}).content.decode()
    assert "6 ratings of practice cases are left out of every figure on this page" in page


def _experts(rated: RatedStudy) -> tuple[dict, dict, list[str]]:
    data = expert_outcomes(reader_study=rated.study)
    per_report = {k: {c: list(v) for c, v in cols.items()} for k, cols in data.per_report.items()}
    errors = {k: {r: dict(v) for r, v in by.items()} for k, by in data.errors.items()}
    return per_report, errors, data.readers


def test_metrics_score_and_compare_only_the_real_cases(pairwise: RatedStudy) -> None:
    before_pairs = {p.key for p in metric_pairs(reader_study=pairwise.study)}
    before = _experts(pairwise)
    assert before[0]  # the real cases give expert outcomes
    practice = add_practice_cases(pairwise, 1)
    assert {p.key for p in metric_pairs(reader_study=pairwise.study)} == before_pairs
    assert practice[0].second_report_id not in {k[0] for k in before_pairs}
    assert _experts(pairwise) == before


def test_reader_progress_counts_practice_apart_in_a_rated_study(pairwise: RatedStudy) -> None:
    add_practice_cases(pairwise, 2)
    progress = study_selectors.reader_study_progress(reader_study=pairwise.study)
    assert progress["total"] == 24 * 3
    assert progress["practice_total"] == progress["practice_submitted"] == 2 * 3
