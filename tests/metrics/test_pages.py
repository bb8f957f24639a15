"""The metrics page, its run button and the ReXVal-style CSV: for analysts and the study's
coordinators; readers and other coordinators never reach them."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse

from reviewapp.metrics import services
from reviewapp.metrics.models import MetricJob, MetricResult

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _scored(study, user) -> None:
    for job in services.metric_jobs_create(user=user, reader_study=study):
        services.metric_job_execute(job_pk=job.pk)


def test_the_analysis_page_links_to_the_metrics_page(pairwise, analyst) -> None:
    page = _client(analyst).get(reverse("analysis:study", args=[pairwise.study.public_id]))
    assert reverse("metrics:study", args=[pairwise.study.public_id]) in page.content.decode()


def test_an_analyst_sees_source_means_beside_expert_rates_and_the_agreement_with_cis(
    pairwise, analyst
) -> None:
    _scored(pairwise.study, analyst)
    response = _client(analyst).get(reverse("metrics:study", args=[pairwise.study.public_id]))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    assert 'id="metric-sources"' in page
    assert "equivalent or better" in page
    assert 'id="agreement-table"' in page
    assert "Kendall τ-b [95% CI]" in page
    assert page.count('<img src="data:image/svg+xml;base64,') == 6  # one scatter per value
    assert "succeeded" in page


def test_running_from_the_page_queues_one_job_per_source(pairwise, coordinator) -> None:
    response = _client(coordinator).post(reverse("metrics:run", args=[pairwise.study.public_id]))
    assert response.status_code == 302
    assert MetricJob.objects.filter(reader_study=pairwise.study, status="queued").count() == 1


def test_the_rexval_csv_has_one_row_per_candidate_report_with_each_readers_errors(
    error_study, analyst
) -> None:
    _scored(error_study.study, analyst)
    response = _client(analyst).get(reverse("metrics:export", args=[error_study.study.public_id]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 12  # the 12 AI reports; the originals are the references
    assert {r["status"] for r in rows} == {"scored"}
    header = list(rows[0])
    for column in ("bleu_4", "rouge_l", "chexpert_micro_f1_pos", "expert_significant_errors"):
        assert column in header
    assert "R01_false_finding_significant" in header
    assert "R02_incorrect_location_not_significant" in header
    scored = MetricResult.objects.filter(metric="bleu").select_related("report")
    assert {r["report_version_id"] for r in rows} == {str(r.report.public_id) for r in scored}
    with_errors = [r for r in rows if r["R01_false_finding_significant"] == "1"]
    assert len(with_errors) == 7  # n % 3 != 0 for n in 0..11, less study 5 (quality "no")
    assert all(r["R01_incorrect_location_not_significant"] == "1" for r in with_errors)
    assert all(r["expert_significant_errors"] == "1.0" for r in with_errors)
    assert {r["failed_metrics"] for r in rows} == {""}

    # A metric that failed on one report (a judge's unparseable answer) is named on its row,
    # which is no longer called scored.
    victim = scored[0]
    MetricResult.objects.create(
        report=victim.report,
        reference=victim.reference,
        metric="green",
        metric_version="1",
        params_sha256="0" * 64,
        status=MetricResult.Status.FAILED,
        reason="unparseable_answer",
    )
    response = _client(analyst).get(reverse("metrics:export", args=[error_study.study.public_id]))
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    (row,) = [r for r in rows if r["report_version_id"] == str(victim.report.public_id)]
    assert row["status"] == "partly_failed"
    assert row["failed_metrics"] == "green: unparseable_answer"
    assert row["bleu_4"] != ""  # what did score is kept
    assert {r["status"] for r in rows if r is not row} == {"scored"}


PERSONAS = ["alice", "carol", "grace", "dave", "eve"]


@pytest.mark.parametrize(
    ("name", "method", "path", "allowed"),
    [
        ("page", "get", "/metrics/studies/{study}/", {"carol": 200, "dave": 200, "grace": 404}),
        ("run", "post", "/metrics/studies/{study}/run/", {"carol": 302, "dave": 302, "grace": 404}),
        (
            "export",
            "get",
            "/metrics/studies/{study}/rexval.csv",
            {"carol": 200, "dave": 200, "grace": 404},
        ),
        (
            "api",
            "get",
            "/api/v1/metrics/studies/{study}/",
            {"carol": 200, "dave": 200, "grace": 404},
        ),
        (
            "api_jobs",
            "get",
            "/api/v1/metrics/studies/{study}/jobs",
            {"carol": 200, "dave": 200, "grace": 404},
        ),
        (
            "api_run",
            "post",
            "/api/v1/metrics/studies/{study}/jobs",
            {"carol": 201, "dave": 201, "grace": 404},
        ),
        (
            "api_job",
            "get",
            "/api/v1/metrics/jobs/{job}/",
            {"carol": 200, "dave": 200, "grace": 404},
        ),
    ],
)
def test_metric_pages_by_role(
    pairwise, analyst, coordinator, other_coordinator, reader, outsider, api_client_for,
    name, method, path, allowed,
) -> None:  # fmt: skip
    job = MetricJob.objects.create(
        reader_study=pairwise.study, metrics=[{"name": "bleu", "params": {}}], status="succeeded"
    )
    url = path.format(study=pairwise.study.public_id, job=job.public_id)
    users = {u.username: u for u in (reader, coordinator, other_coordinator, analyst, outsider)}
    anonymous = Client() if not url.startswith("/api/") else api_client_for(None)
    response = getattr(anonymous, method)(url)
    assert response.status_code in (302, 401, 403)
    for persona in PERSONAS:
        user = users[persona]
        client = api_client_for(user) if url.startswith("/api/") else _client(user)
        response = getattr(client, method)(url)
        assert response.status_code == allowed.get(persona, 403), (persona, response.content[:200])
