"""Metric jobs score every candidate report against the study's original, store one result per
report version, metric and parameters, and name what they cannot score."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from django.test import Client, override_settings

from reviewapp.metrics import selectors, services
from reviewapp.metrics.models import MetricJob, MetricResult
from reviewapp.reports.models import Report
from reviewapp.reports.services import report_source_external_save
from reviewapp.studies.models import Case
from tests.analysis.test_arms import three_arms  # noqa: F401 (fixture used by name)

pytestmark = pytest.mark.django_db
WEIGHT_FREE = ["bleu", "rouge_l", "chexpert_f1"]


def _run_all(study, user) -> list[MetricJob]:
    jobs = services.metric_jobs_create(user=user, reader_study=study)
    for job in jobs:
        services.metric_job_execute(job_pk=job.pk)
        job.refresh_from_db()
    return jobs


def test_a_job_scores_every_candidate_against_its_original_and_reruns_rewrite_the_same_rows(
    pairwise, analyst
) -> None:
    (job,) = _run_all(pairwise.study, analyst)
    assert (job.status, job.total, job.done) == ("succeeded", 24 * 3, 24 * 3)
    assert (job.scored, job.skipped) == (24, 0)
    results = MetricResult.objects.filter(job=job)
    assert results.count() == 24 * 3
    assert sorted({r.metric for r in results}) == sorted(WEIGHT_FREE)
    case = Case.objects.filter(reader_study=pairwise.study).first()
    bleu = results.get(report=case.second_report, metric="bleu")
    assert bleu.reference == case.first_report
    assert bleu.metric_version == "1"
    assert bleu.params["tokenize"] == "none"
    # "AI: <findings>" against "<findings>": every n-gram of the reference is in the candidate.
    assert bleu.values["bleu_1"] == pytest.approx(12 / 13)
    before = {(r.report_id, r.metric): r.values for r in results}

    (again,) = _run_all(pairwise.study, analyst)
    assert again.pk != job.pk
    assert MetricResult.objects.count() == 24 * 3
    assert {(r.report_id, r.metric): r.values for r in MetricResult.objects.all()} == before
    assert set(MetricResult.objects.values_list("job", flat=True)) == {again.pk}


def test_a_second_request_while_a_job_waits_joins_it(pairwise, analyst, coordinator) -> None:
    (first,) = services.metric_jobs_create(user=analyst, reader_study=pairwise.study)
    (second,) = services.metric_jobs_create(user=coordinator, reader_study=pairwise.study)
    assert first.pk == second.pk
    assert MetricJob.objects.count() == 1


def test_missing_or_blank_originals_are_named_and_skipped_never_scored_zero(
    pairwise, analyst
) -> None:
    cases = list(Case.objects.filter(reader_study=pairwise.study).order_by("id"))
    # Case 0 shows a candidate whose imaging study has no original: a single-report case.
    lonely = cases[0]
    blank_study = cases[1].imaging_study
    Report.objects.filter(pk=cases[1].first_report_id).update(is_latest=False)
    blank = Report.objects.create(study=blank_study, kind="original", findings="  \n ")
    Case.objects.filter(pk=cases[1].pk).update(first_report=blank)
    Report.objects.filter(pk=lonely.first_report_id).update(is_latest=False)
    Case.objects.filter(pk=lonely.pk).update(first_report=lonely.second_report, second_report=None)

    (job,) = _run_all(pairwise.study, analyst)
    assert (job.status, job.scored, job.skipped) == ("succeeded", 22, 2)
    skipped = MetricResult.objects.filter(status="skipped")
    assert {(r.report_id, r.reason) for r in skipped} == {
        (lonely.second_report_id, "reference_missing"),
        (cases[1].second_report_id, "reference_empty"),
    }
    assert all(r.values == {} for r in skipped)

    overview = selectors.metrics_overview(reader_study=pairwise.study, resamples=200)
    named = {(item["study"].pk, item["reason"]) for item in overview.skipped}
    assert named == {
        (lonely.imaging_study_id, "reference_missing"),
        (blank_study.pk, "reference_empty"),
    }
    (row,) = overview.source_rows
    assert (row["reports"], row["scored"]) == (24, 22)
    scored = MetricResult.objects.filter(status="scored", metric="rouge_l")
    mean = sum(r.values["rouge_l"] for r in scored) / scored.count()
    assert dict(zip(overview.values, row["metrics"], strict=True))["rouge_l"] == pytest.approx(mean)


def test_a_model_directory_that_does_not_load_fails_the_job_naming_the_missing_file(
    pairwise, analyst, tmp_path: Path
) -> None:
    model_dir = tmp_path / "bert"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    with override_settings(METRICS_BERTSCORE_DIR=str(model_dir)):
        (job,) = _run_all(pairwise.study, analyst)
    assert job.status == "failed"
    assert job.error_code == "metric_model_missing_file"
    assert "model.safetensors" in job.error_message
    assert str(model_dir) in job.error_message
    # The weight-free metrics before it were stored; nothing was scored as 0 for BERTScore.
    assert not MetricResult.objects.filter(metric="bertscore").exists()
    assert MetricResult.objects.filter(metric="chexpert_f1").count() == 24


def test_one_job_per_source_and_the_sources_are_ranked_against_the_experts(
    pairwise, analyst
) -> None:
    model_a = report_source_external_save(name="ModelA", version="1")
    model_b = report_source_external_save(name="ModelB", version="1")
    cases = list(Case.objects.filter(reader_study=pairwise.study).order_by("id"))
    for n, case in enumerate(cases):
        Report.objects.filter(pk=case.second_report_id).update(source=model_a if n % 2 else model_b)
    jobs = _run_all(pairwise.study, analyst)
    assert sorted(j.source.label for j in jobs) == ["ModelA 1", "ModelB 1"]
    assert all(j.status == "succeeded" for j in jobs)
    overview = selectors.metrics_overview(reader_study=pairwise.study, resamples=200)
    assert [row["label"] for row in overview.source_rows] == ["ModelA 1", "ModelB 1"]
    assert [row["reports"] for row in overview.source_rows] == [12, 12]
    outcomes = {c.id for c in overview.expert.columns}
    assert outcomes == {"outcome_equivalent_or_better", "outcome_same_or_superior_management"}
    cells = {(r["metric"], r["outcome"]) for r in overview.agreement}
    assert cells == {(m, o) for m in overview.values for o in outcomes}
    for row in overview.agreement:
        assert row["n_reports"] == 24
        assert row["n_cases"] == 24
    ranked = {(r["metric"], r["outcome"]): r for r in overview.source_agreement}
    assert set(ranked) == cells
    assert all(r["n_sources"] == 2 for r in ranked.values())
    # With two sources tau is only +1 or -1: the page says what its interval then means.
    client = Client()
    client.force_login(analyst)
    page = html.unescape(
        client.get(f"/metrics/studies/{pairwise.study.public_id}/").content.decode()
    )
    assert "With two sources τ is +1 (the metric orders them as the experts do)" in page


def test_error_counts_and_levels_are_expert_outcomes(error_study, analyst) -> None:
    _run_all(error_study.study, analyst)
    expert = selectors.expert_outcomes(reader_study=error_study.study)
    assert [c.id for c in expert.columns] == ["significant_errors", "all_errors"]
    # The AI report of study n has one significant and one other error when n % 3 != 0;
    # study 5's image quality was judged insufficient, so its errors question was not asked.
    ai = Report.objects.filter(kind="ai").order_by("study__patient_pseudonym")
    by_n = {int(r.study.patient_pseudonym[1:]) - 1000: r for r in ai}
    assert expert.per_report[by_n[1].id]["significant_errors"] == [1.0, 1.0]
    assert expert.per_report[by_n[1].id]["all_errors"] == [2.0, 2.0]
    assert expert.per_report[by_n[3].id]["significant_errors"] == [0.0, 0.0]
    assert "significant_errors" not in expert.per_report[by_n[5].id]
    assert expert.errors[by_n[1].id]["R01"] == {
        ("false_finding", True): 1,
        ("incorrect_location", False): 1,
    }


def test_the_agreement_table_is_kendall_tau_b_of_metric_against_the_readers_mean(
    varied, analyst
) -> None:
    from scipy.stats import kendalltau, spearmanr

    _run_all(varied.study, analyst)
    overview = selectors.metrics_overview(reader_study=varied.study, resamples=300)
    row = next(
        r
        for r in overview.agreement
        if (r["metric"], r["outcome"]) == ("rouge_l", "outcome_equivalent_or_better")
    )
    x, y = [], []
    for case in Case.objects.filter(reader_study=varied.study).order_by("id"):
        x.append(
            MetricResult.objects.get(report=case.second_report, metric="rouge_l").values["rouge_l"]
        )
        said = [
            value in ("similar", "ai_better", "ai_much_better")
            for (case_id, _), value in varied.answers.items()
            if case_id == str(case.public_id)
        ]
        y.append(sum(said) / len(said))
    tau = row["kendall_tau_b"]
    assert tau["value"] == pytest.approx(kendalltau(x, y).statistic)
    assert row["spearman"]["value"] == pytest.approx(spearmanr(x, y).statistic)
    assert tau["low"] <= tau["value"] <= tau["high"]
    assert (row["n_reports"], row["n_cases"]) == (18, 18)


def test_the_agreement_is_cached_for_every_process_and_recomputed_when_a_rating_changes(
    varied, analyst
) -> None:
    # Web processes and workers each have their own memory: a second connection to the cache
    # stands for another process.
    import redis
    from django.conf import settings
    from django.core.cache import cache, caches

    from reviewapp.studies.models import Rating

    _run_all(varied.study, analyst)
    client = redis.Redis.from_url(settings.REDIS_URL)
    pattern = cache.make_key("metrics:agreement:*")
    before = set(client.scan_iter(pattern))
    first = selectors.metrics_overview(reader_study=varied.study, resamples=200)
    (stored,) = set(client.scan_iter(pattern)) - before
    key = stored.decode().split(":", 2)[2]
    assert caches.create_connection("default").get(key) == (
        first.agreement,
        first.source_agreement,
    )
    again = selectors.metrics_overview(reader_study=varied.study, resamples=200)
    assert again.agreement == first.agreement
    assert set(client.scan_iter(pattern)) - before == {stored}

    rating = Rating.objects.filter(assignment__reader_study=varied.study).order_by("id").first()
    assert rating is not None
    rating.delete()
    after = selectors.metrics_overview(reader_study=varied.study, resamples=200)
    assert after.agreement != first.agreement
    assert len(set(client.scan_iter(pattern)) - before) == 2


def test_a_comparison_of_two_models_is_no_expert_outcome_against_the_original(
    three_arms,  # noqa: F811
) -> None:
    # The readers found model B similar to the original (arm 2) and worse than model A (arm 3):
    # B's outcome against the original, which its metrics are scored against, is arm 2's.
    expert = selectors.expert_outcomes(reader_study=three_arms)
    model_b = Report.objects.filter(source__name="model-b")
    assert model_b.count() == 8
    for report in model_b:
        assert expert.per_report[report.id]["outcome_equivalent_or_better"] == [1.0, 1.0]
