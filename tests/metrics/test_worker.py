"""Through the real queue: Redis, a real Celery worker process, and a page in real Chromium
that follows the job live and then shows the agreement table and the CSV."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from reviewapp.metrics import services
from reviewapp.metrics.models import MetricJob, MetricResult
from tests.conftest import PASSWORD, serving
from tests.generation.conftest import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_real_worker_scores_the_study_and_a_rerun_rewrites_the_same_rows(
    start_worker, error_study, analyst
) -> None:
    start_worker("metrics")
    (job,) = services.metric_jobs_create(user=analyst, reader_study=error_study.study)

    def finished() -> bool:
        job.refresh_from_db()
        return job.is_finished

    wait_for(finished, timeout=120, what="the worker to finish the metric job")
    assert (job.status, job.done, job.total, job.scored) == ("succeeded", 36, 36, 12)
    assert MetricResult.objects.count() == 36

    (again,) = services.metric_jobs_create(user=analyst, reader_study=error_study.study)
    wait_for(
        lambda: MetricJob.objects.get(pk=again.pk).is_finished,
        timeout=120,
        what="the worker to finish the second job",
    )
    assert MetricResult.objects.count() == 36
    assert set(MetricResult.objects.values_list("job", flat=True)) == {again.pk}


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[str]:
    with serving(tmp_path) as url:
        yield url


@pytest.mark.browser
def test_an_analyst_runs_the_metrics_and_sees_the_agreement_table_and_downloads_the_csv(
    web_server, start_worker, varied, analyst
) -> None:
    start_worker("metrics-browser")
    study_id = varied.study.public_id
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{web_server}/accounts/login/?next=/analysis/{study_id}/")
        page.get_by_label("Username").fill("dave")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(rf"/analysis/{study_id}/$"))
        page.locator("#metrics-link").click()
        page.wait_for_url(re.compile(rf"/metrics/studies/{study_id}/$"))
        expect(page.locator("#metrics-none")).to_be_visible()
        page.get_by_role("button", name="Run metrics").click()
        # The job runs on the worker; the page follows it and reloads when it has finished.
        expect(page.locator("#agreement-table")).to_be_visible(timeout=120_000)
        expect(page.locator("#metric-jobs .job-status")).to_have_text(["succeeded"])
        expect(page.locator("#metric-sources")).to_contain_text("equivalent or better")
        rows = page.locator("#agreement-table tbody tr")
        expect(rows).to_have_count(6 * 2)  # six metric values x two outcomes
        expect(rows.first).to_contain_text("[")  # a CI
        expect(page.locator("#metric-scatters img")).to_have_count(6)
        with page.expect_download() as download:
            page.locator("#metrics-export").click()
        text = Path(download.value.path()).read_text(encoding="utf-8")
        table = list(csv.DictReader(io.StringIO(text)))
        assert len(table) == 18
        assert {row["status"] for row in table} == {"scored"}
        assert all(row["expert_outcome_equivalent_or_better"] for row in table)
        browser.close()
    assert errors == []
