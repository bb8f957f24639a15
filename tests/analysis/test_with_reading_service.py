"""Ratings written by the reading service (blinded forms, letter codes, A/B sides) come out of
the exports unblinded and correctly derived: the contract between reader studies and analysis."""

from __future__ import annotations

import io
import uuid

import pandas as pd
import pytest
from django.contrib.auth.models import AbstractUser
from django.test import Client
from django.urls import reverse

from reviewapp.imaging.models import Study
from reviewapp.reports.models import Report
from reviewapp.studies import services
from reviewapp.studies.models import Assignment, Rating, ReaderStudy

pytestmark = pytest.mark.django_db

ORIGINAL = "Heart size is normal. There is a small left effusion. No pneumothorax."
AI = "Heart size is normal. The lungs are clear. No pneumothorax."


def _imaging_studies(count: int) -> list[Study]:
    studies = []
    for i in range(count):
        study = Study.objects.create(
            study_instance_uid=f"2.25.{uuid.uuid4().int}",
            patient_pseudonym=f"S{i:03d}",
            modalities="CR",
            stratum="normal" if i % 2 else "abnormal",
        )
        Report.objects.create(study=study, kind=Report.Kind.ORIGINAL, findings=ORIGINAL)
        Report.objects.create(study=study, kind=Report.Kind.AI, findings=AI)
        studies.append(study)
    return studies


def _prepared(
    coordinator: AbstractUser,
    readers: list[AbstractUser],
    protocol_key: str,
    **cases: object,
) -> ReaderStudy:
    study = services.reader_study_create(
        user=coordinator, name=f"{protocol_key} via service", protocol_key=protocol_key
    )
    services.cases_add(
        reader_study=study,
        imaging_studies=_imaging_studies(6),
        candidate_reports=Report.objects.filter(kind=Report.Kind.AI),
        **cases,  # type: ignore[arg-type]
    )
    services.panel_set(reader_study=study, readers=[(r, "") for r in readers])
    services.assignments_generate(reader_study=study, seed=42)
    services.reader_study_open(reader_study=study, acknowledged_by=coordinator)
    return study


def _export(user: AbstractUser, study: ReaderStudy, dataset: str) -> pd.DataFrame:
    client = Client()
    client.force_login(user)
    response = client.get(reverse("analysis:export", args=[study.public_id, dataset, "csv"]))
    assert response.status_code == 200
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    return pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False)


def test_the_first_option_shown_is_unblinded_by_the_side_the_candidate_was_on(
    coordinator: AbstractUser,
    reader: AbstractUser,
    second_reader: AbstractUser,
    analyst: AbstractUser,
) -> None:
    study = _prepared(coordinator, [reader, second_reader], "medgemini_cxr")
    # Every reader picks the first option on the form: the one most in favour of report A.
    for assignment in Assignment.objects.filter(reader_study=study).select_related("reader"):
        services.rating_submit(
            assignment=assignment,
            reader=assignment.reader,
            answers={"comparison": "a"},
            idempotency_key=uuid.uuid4(),
        )
    frame = _export(analyst, study, "ratings")
    assert len(frame) == 12
    sides = dict(
        Assignment.objects.filter(reader_study=study).values_list("public_id", "candidate_side")
    )
    assert set(sides.values()) == {"A", "B"}  # the service balanced the sides
    by_rating = {str(r.public_id): r for r in Rating.objects.select_related("assignment")}
    for row in frame.itertuples():
        rating = by_rating[row.rating]
        side = rating.assignment.candidate_side
        assert row.candidate_side == side
        assert row.candidate_source == "ai"
        assert row.answer_code == "a"
        # "A is much better" means the AI report was much better exactly when it was shown as A.
        expected = "ai_much_better" if side == "A" else "original_much_better"
        assert row.answer_value == expected
        assert row.outcome_equivalent_or_better == ("1" if side == "A" else "0")
        assert row.answer_label.startswith("Report A")
    client = Client()
    client.force_login(analyst)
    data = client.get(reverse("api-analysis-study", args=[study.public_id])).json()
    overall = next(
        r
        for r in data["headline"]
        if r["outcome"] == "equivalent_or_better" and r["stratum"] == "overall"
    )
    assert overall["estimate"] == pytest.approx(
        sum(1 for s in sides.values() if s == "A") / len(sides)
    )
    (bias,) = data["position_bias"]
    assert (bias["a_wins"], bias["b_wins"]) == (12, 0)
    assert bias["p_value"] < 0.001


def test_error_spans_marked_through_the_service_export_with_their_quoted_text(
    coordinator: AbstractUser,
    reader: AbstractUser,
    analyst: AbstractUser,
) -> None:
    study = _prepared(coordinator, [reader], "error_correction", rate_source="both")
    start = ORIGINAL.index("small left effusion")
    for assignment in Assignment.objects.filter(reader_study=study).select_related("report_a"):
        is_original = assignment.report_a.kind == Report.Kind.ORIGINAL
        services.rating_submit(
            assignment=assignment,
            reader=reader,
            answers={"image_quality": "a"},
            spans=[
                {
                    "side": "",
                    "section": "findings",
                    "start": start,
                    "end": start + len("small left effusion"),
                    "category": "false_finding",
                    "significant": True,
                    "replacement": "no effusion",
                }
            ]
            if is_original
            else [],
            idempotency_key=uuid.uuid4(),
        )
    spans = _export(analyst, study, "spans")
    assert len(spans) == 6
    assert set(spans["quoted_text"]) == {"small left effusion"}
    assert set(spans["report_source"]) == {"original"}
    assert set(spans["sentence_index"]) == {"1"}
    ratings = _export(analyst, study, "ratings")
    errors = ratings[ratings["question"] == "errors"]
    assert len(errors) == 12
    flagged = errors.groupby("source")["outcome_significant_error"].apply(set).to_dict()
    assert flagged == {"original": {"1"}, "ai": {"0"}}
    client = Client()
    client.force_login(analyst)
    data = client.get(reverse("api-analysis-study", args=[study.public_id])).json()
    (comparison,) = data["comparisons"]
    assert (comparison["original_only"], comparison["ai_only"]) == (6, 0)
    assert comparison["p_value"] == pytest.approx(2 / 64)
