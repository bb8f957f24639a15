"""Model-based metrics in a metric job: F1CheXbert, RadGraph F1 and the GREEN-style judge, each
from a local directory configured like the models (tiny random-weight models built here),
stored with name, version and parameters, idempotent; a judge's unparseable answer is a named
failure for that report and metric, never a 0; a model directory missing a file fails the job
naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import IntegrityError, transaction
from django.test import Client, override_settings
from django.urls import reverse

from reviewapp.metrics import selectors, services
from reviewapp.metrics.models import MetricJob, MetricResult
from reviewapp.studies.models import Case
from tests.inference.test_metrics_judge import ANSWER
from tests.inference.tiny_models import build_causal_lm, build_chexbert, build_token_classifier

pytestmark = pytest.mark.django_db
CARDIOMEGALY_POSITIVE = {1: 1}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("metric-models")
    return {
        "chexbert": build_chexbert(root / "chexbert", CARDIOMEGALY_POSITIVE),
        "radgraph": build_token_classifier(root / "radgraph", always="B-OBS-DP"),
        "judge": build_causal_lm(root / "judge", answer=ANSWER),
        "babbler": build_causal_lm(root / "babbler"),
    }


def _run_all(study, user) -> list[MetricJob]:
    jobs = services.metric_jobs_create(user=user, reader_study=study)
    for job in jobs:
        services.metric_job_execute(job_pk=job.pk)
        job.refresh_from_db()
    return jobs


def _judge(directory: Path):
    return override_settings(
        METRICS_JUDGE_BACKEND="transformers",
        METRICS_JUDGE_LOCATION=str(directory),
        METRICS_JUDGE_MAX_NEW_TOKENS=16,
    )


def test_chexbert_radgraph_and_the_judge_are_stored_per_report_and_rerun_in_place(
    varied, analyst, models
) -> None:
    with (
        override_settings(
            METRICS_CHEXBERT_DIR=str(models["chexbert"]),
            METRICS_RADGRAPH_DIR=str(models["radgraph"]),
        ),
        _judge(models["judge"]),
    ):
        (job,) = _run_all(varied.study, analyst)
        assert [m["name"] for m in job.metrics][-3:] == ["f1chexbert", "radgraph_f1", "green_judge"]
        assert (job.status, job.scored, job.skipped, job.failed) == ("succeeded", 18, 0, 0)
        first = {(r.report_id, r.metric): r.values for r in MetricResult.objects.all()}
        (again,) = _run_all(varied.study, analyst)
    assert again.status == "succeeded"
    assert {(r.report_id, r.metric): r.values for r in MetricResult.objects.all()} == first

    chexbert = MetricResult.objects.filter(metric="f1chexbert")
    assert chexbert.count() == 18
    row = chexbert.first()
    assert row.metric_version == "1"
    assert row.params["model_dir"] == str(models["chexbert"])
    assert len(row.params["checkpoint_sha256"]) == 64
    assert row.detail["candidate_labels"]["Cardiomegaly"] == 1
    assert row.values["chexbert_micro_f1_5"] == 1.0  # the same labels on both sides

    radgraph = MetricResult.objects.filter(metric="radgraph_f1")
    assert radgraph.first().params["relations"] == "none"
    # Every word an entity: the F1 of the two reports' word sets, so candidates that share
    # more of the original's words score higher.
    by_text = {r.report.findings: r.values["radgraph_simple"] for r in radgraph}
    assert (
        0
        < by_text["Heart size is normal. No pneumothorax."]
        < by_text["Heart size is normal. There is a small left effusion. No pneumothorax."]
    )

    judge = MetricResult.objects.filter(metric="green_judge")
    assert {r.values["green"] for r in judge} == {0.5}
    assert judge.first().params["prompt"] == "green-style-1"

    overview = selectors.metrics_overview(reader_study=varied.study, resamples=100)
    assert {"chexbert_micro_f1_5", "radgraph_partial", "green"} <= set(overview.values)


def test_a_judges_unparseable_answer_is_named_per_report_and_counts_nowhere(
    varied, analyst, models
) -> None:
    with _judge(models["babbler"]):
        (job,) = _run_all(varied.study, analyst)
    assert (job.status, job.scored, job.failed) == ("succeeded", 18, 18)
    failed = MetricResult.objects.filter(metric="green_judge")
    assert {(r.status, r.reason) for r in failed} == {("failed", "judge_unparseable")}
    assert all(r.values == {} for r in failed)
    # The other metrics of the same reports are scored.
    assert MetricResult.objects.filter(metric="rouge_l", status="scored").count() == 18

    overview = selectors.metrics_overview(reader_study=varied.study, resamples=100)
    assert "green" not in overview.values
    assert len(overview.failures) == 18
    assert {(f["metric"], f["reason"]) for f in overview.failures} == {
        ("green_judge", "judge_unparseable")
    }
    assert overview.skipped == []
    client = Client()
    client.force_login(analyst)
    with _judge(models["babbler"]):
        response = client.get(reverse("metrics:study", args=[varied.study.public_id]))
    page = response.content.decode()
    configured = page.split('id="metrics-configured">', 1)[1].split("</span>", 1)[0]
    assert {"bleu", "rouge_l", "chexpert_f1", "green_judge"} <= set(
        configured.removeprefix("one job per source; runs ").split(" (")[0].split(", ")
    )
    assert 'id="metrics-failed"' in page
    assert "the judge's answer did not give the counts asked for" in page


def test_a_chexbert_directory_without_its_checkpoint_fails_the_job_naming_it(
    varied, analyst, tmp_path: Path
) -> None:
    directory = build_chexbert(tmp_path / "chexbert")
    (directory / "chexbert.pth").unlink()
    with override_settings(METRICS_CHEXBERT_DIR=str(directory)):
        (job,) = _run_all(varied.study, analyst)
    assert (job.status, job.error_code) == ("failed", "metric_model_missing_file")
    assert "chexbert.pth" in job.error_message
    assert str(directory) in job.error_message
    assert not MetricResult.objects.filter(metric="f1chexbert").exists()


def test_a_failed_result_must_say_why_and_carry_no_values(varied) -> None:
    case = Case.objects.filter(reader_study=varied.study).first()
    common = {
        "report": case.second_report,
        "reference": case.first_report,
        "metric": "green_judge",
        "metric_version": "1",
        "params_sha256": "0" * 64,
        "status": "failed",
    }
    for bad in ({"reason": ""}, {"reason": "judge_unparseable", "values": {"green": 0.0}}):
        with pytest.raises(IntegrityError), transaction.atomic():
            MetricResult.objects.create(**common, **bad)
    MetricResult.objects.create(**common, reason="judge_unparseable")
