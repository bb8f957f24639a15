"""Analysis across arms: model A vs the original, model B vs the original and A vs B, rated
through the reading service; rates per arm, paired differences, the win matrix, the
Bradley-Terry ranking, and an arms export from which pandas gets the same rates."""

from __future__ import annotations

import io
import uuid

import numpy as np
import pandas as pd
import pytest
from django.test import Client
from django.urls import reverse

from reviewapp.analysis import arms, stats
from reviewapp.core.roles import Role
from reviewapp.imaging.models import Study
from reviewapp.reports.models import Report, ReportSource
from reviewapp.reports.services import report_source_original
from reviewapp.studies import protocols, services
from reviewapp.studies.models import Assignment, ReaderStudy

pytestmark = pytest.mark.django_db

# What every reader answers in each arm, as stored values (candidate = the arm's second source):
# A beats the original, B ties with it, and A beats B (the first source of the A-vs-B arm).
VERDICT = {1: "ai_better", 2: "similar", 3: "original_better"}


@pytest.fixture
def three_arms(coordinator, make_user) -> ReaderStudy:
    original = report_source_original()
    model_a = ReportSource.objects.create(kind="external", name="model-a", version="1")
    model_b = ReportSource.objects.create(kind="external", name="model-b", version="1")
    imaging = []
    for index in range(8):
        study = Study.objects.create(
            study_instance_uid=f"2.25.{uuid.uuid4().int}",
            patient_pseudonym=f"P{index}",
            modalities="CR",
        )
        for source in (original, model_a, model_b):
            Report.objects.create(
                study=study,
                kind="original" if source == original else "ai",
                source=source,
                findings=f"Heart size is normal. Lungs clear {index}.",
                impression="No acute disease.",
            )
        imaging.append(study)
    readers = [make_user(name, Role.READER) for name in ("ann", "ben")]
    study = services.reader_study_create(
        user=coordinator, name="Three arms", protocol_key="medgemini_cxr"
    )
    services.arms_set(
        reader_study=study,
        design=ReaderStudy.Design.CHOSEN_PAIRS,
        pairs=[(original, model_a), (original, model_b), (model_a, model_b)],
    )
    services.cases_add(reader_study=study, imaging_studies=imaging)
    services.panel_set(reader_study=study, readers=[(r, "") for r in readers])
    services.assignments_generate(reader_study=study, seed=3)
    services.reader_study_open(reader_study=study, acknowledged_by=coordinator)
    question = study.protocol["questions"][0]
    for assignment in Assignment.objects.filter(reader_study=study).select_related(
        "case__arm", "reader"
    ):
        wanted = VERDICT[assignment.case.arm.position]
        sides = protocols.Sides(candidate_side=assignment.candidate_side)
        form = protocols.form_build(study.protocol, sides)
        codes = {
            o["label"]: o["code"]
            for o in next(i for i in form if i["id"] == "comparison")["options"]
        }
        option = next(o for o in question["options"] if o["value"] == wanted)
        label = protocols.text_render(option["label"], sides.placeholders())
        services.rating_submit(
            assignment=assignment,
            reader=assignment.reader,
            answers={"comparison": codes[label]},
            idempotency_key=uuid.uuid4(),
        )
    return study


def test_rates_differences_wins_and_ranking_per_arm(three_arms):
    results = arms.arms_results(reader_study=three_arms, n_resamples=200)
    assert results is not None
    rates = {
        (r["outcome"], r["arm"]): r
        for r in results["rates"]
        if r["outcome"] == "equivalent_or_better"
    }
    assert {arm: rates[("equivalent_or_better", arm)]["rate"] for arm in (1, 2, 3)} == {
        1: 1.0,
        2: 1.0,
        3: 0.0,
    }
    assert rates[("equivalent_or_better", 1)]["source_name"] == "model-a 1"
    assert rates[("equivalent_or_better", 3)]["source_name"] == "model-b 1"
    assert all(r["n_ratings"] == 16 for r in rates.values())
    difference = next(
        d
        for d in results["differences"]
        if d["outcome"] == "equivalent_or_better" and (d["arm_x"], d["arm_y"]) == (1, 3)
    )
    assert difference["n_studies"] == 8
    # Every study differs by -1 and the readers agree: no spread, yet never a point interval
    # (the AI - original interval's rule: Wilson's bound for "no study differs" among 8).
    assert difference["difference"] == -1
    assert difference["method"] == "paired_no_spread"
    assert difference["ci_low"] == -1
    assert difference["ci_high"] == pytest.approx(-1 + stats.wilson(0, 8).high)
    # Rates carry the headline's interval: all 16 ratings agree, so Wilson's on the 8 cases.
    rate = rates[("equivalent_or_better", 3)]
    assert rate["method"] == "wilson_cases"
    assert (rate["ci_low"], rate["ci_high"]) == (0.0, pytest.approx(stats.wilson(0, 8).high))

    head = results["head_to_head"]
    cells = {(p["source_name"], p["against_name"]): p for p in head["pairs"]}
    assert cells[("model-a 1", "Original (radiologist)")]["wins"] == 16
    assert cells[("model-b 1", "Original (radiologist)")]["ties"] == 16
    assert cells[("model-b 1", "model-a 1")]["losses"] == 16
    ranking = [row["source_name"] for row in head["bradley_terry"]]
    assert ranking[0] == "model-a 1"
    top = head["bradley_terry"][0]
    assert top["ci_low"] <= top["score"] <= top["ci_high"]


def test_bradley_terry_recovers_known_strengths():
    strengths = np.array([4.0, 2.0, 1.0])
    games = 4000
    wins = np.array(
        [[games * s / (s + t) if i != j else 0 for j, t in enumerate(strengths)]
         for i, s in enumerate(strengths)]
    )  # fmt: skip
    scores = arms.bradley_terry(wins)
    expected = np.log(strengths) - np.log(strengths).mean()
    assert np.allclose(scores, expected, atol=0.01)


def test_the_arms_export_names_each_sides_source_and_reproduces_the_rates(
    three_arms, analyst, reader
):
    client = Client()
    client.force_login(reader)
    url = reverse("analysis:arms_export", args=[three_arms.public_id])
    assert client.get(url).status_code in (403, 404)
    client.force_login(analyst)
    response = client.get(url)
    assert response.status_code == 200
    frame = pd.read_csv(io.BytesIO(response.content), keep_default_na=False)
    assert {"source_a_id", "source_a_name", "source_b_id", "source_b_name", "arm"} <= set(frame)
    assert set(frame["source_a_name"]) == {"Original (radiologist)", "model-a 1", "model-b 1"}
    rates = frame.groupby("arm")["outcome_equivalent_or_better"].mean().to_dict()
    assert rates == {1: 1.0, 2: 1.0, 3: 0.0}
    page = client.get(reverse("analysis:study", args=[three_arms.public_id])).content.decode()
    assert 'id="bradley-terry"' in page
    assert 'id="arm-differences"' in page
    # The headline tables pool the arms; the page says so where they start.
    assert 'id="arms-pooled-note"' in page
    assert "This study has 3 arms" in page


def test_the_arms_section_draws_rates_differences_and_the_win_matrix_once_per_version(
    three_arms, analyst
):
    client = Client()
    client.force_login(analyst)
    page = client.get(reverse("analysis:study", args=[three_arms.public_id])).content.decode()
    for name in ("arm-rates", "arm-differences", "win-matrix"):
        assert f'id="plot-{name}"' in page
    results = arms.arms_results(reader_study=three_arms)
    assert results is not None
    # The win matrix says what the table says: model-a beat model-b in all 16 comparisons.
    matrix = results["head_to_head"]["matrix"]
    a, b = matrix["names"].index("model-a 1"), matrix["names"].index("model-b 1")
    assert (matrix["wins"][a][b], matrix["wins"][b][a]) == (16, 0)
    assert "16/16" in results["plots"]["win-matrix"]["svg"]
    # Differences are drawn on an axis about zero, signed.
    assert "-100% [-100%, -68%]" in results["plots"]["arm-differences"]["svg"].replace(
        "\u2212", "-"
    )

    # Cached per study version: the same figures until a rating changes.
    assert arms.arms_results(reader_study=three_arms) == results
    assignment = Assignment.objects.filter(reader_study=three_arms).first()
    assert assignment is not None
    rating = assignment.rating
    services.rating_revise(
        assignment=assignment,
        reader=assignment.reader,
        expected_version=rating.version,
        answers={"comparison": "f"},
        idempotency_key=uuid.uuid4(),
    )
    again = arms.arms_results(reader_study=three_arms)
    assert again is not None
    assert again["n_ratings"] == results["n_ratings"]
    assert again["rates"] != results["rates"]
