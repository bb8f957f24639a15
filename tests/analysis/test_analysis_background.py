"""A large study's analysis: the headline in the request, agreement CIs and plots from one
worker task per study version and parameters, followed by the API (202, then 200) and by the
page in real Chromium (progress, then the complete results filled in)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import connections
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect, sync_playwright
from rest_framework.test import APIClient

from reviewapp.analysis.results import ratings_frame, results_from_frames, spans_frame
from reviewapp.studies.models import Rating
from tests.analysis.conftest import RatedStudy
from tests.conftest import PASSWORD, serving
from tests.generation.conftest import start_worker, wait_for  # noqa: F401 (fixture by name)

pytestmark = [pytest.mark.django_db(transaction=True)]

# Celery's Redis transport keeps a queue's waiting messages in a list named after it.
QUEUE = "default"


@pytest.fixture(autouse=True)
def _every_study_is_large(settings: Any) -> Iterator[None]:
    # The pairwise study has 72 ratings; with no ratings allowed in the request, its
    # agreement CIs and plots take the worker's path as a 100k-rating study's do.
    settings.ANALYSIS_INLINE_RATINGS = 0
    broker = redis.Redis.from_url(settings.REDIS_URL)
    broker.flushdb()
    yield
    broker.flushdb()


def _queued() -> int:
    return int(redis.Redis.from_url(settings.REDIS_URL).llen(QUEUE))


def _api(study: RatedStudy, client: APIClient, **params: Any) -> Any:
    url = reverse("api-analysis-study", kwargs={"public_id": study.study.public_id})
    return client.get(url, {"resamples": 200, **params})


def test_the_api_answers_202_with_the_headline_and_one_task_serves_every_request(
    pairwise: RatedStudy,
    analyst: AbstractUser,
    coordinator: AbstractUser,
    api_client_for: Callable[[AbstractUser | None], APIClient],
    start_worker: Callable[[str], Any],  # noqa: F811
) -> None:
    first = _api(pairwise, api_client_for(analyst))
    assert first.status_code == 202
    assert first["Retry-After"] == "1"
    body = first.json()
    assert body["status"]["state"] == "queued"
    assert body["status"]["total"] == 1 + 3  # one agreement question, three figures
    # The headline is final already; agreement and figures are not there yet.
    assert body["n_ratings"] == 72
    assert {r["stratum"] for r in body["headline"]} >= {"overall"}
    assert body["comparisons"] == []
    assert body["position_bias"]
    assert "agreement" not in body
    assert "plots" not in body

    # A second viewer (the page, another person, a script polling) joins the same task.
    second = _api(pairwise, api_client_for(coordinator))
    page = Client()
    page.force_login(analyst)
    html = page.get(
        reverse("analysis:study", args=[pairwise.study.public_id]), {"resamples": 200}
    ).content.decode()
    assert second.status_code == 202
    assert second.json()["status"]["key"] == body["status"]["key"]
    assert 'id="analysis-pending"' in html
    assert "waiting for a worker" in html
    assert 'id="headline"' in html
    assert _queued() == 1

    start_worker("analysis")
    wait_for(
        lambda: _api(pairwise, api_client_for(analyst)).status_code == 200,
        timeout=120,
        what="the worker to complete the analysis",
    )
    complete = _api(pairwise, api_client_for(analyst), plots="true").json()
    assert complete["status"] == {
        "state": "complete",
        "key": body["status"]["key"],
        "done": 0,
        "total": 0,
    }
    # The same numbers as the whole analysis computed in one go from the same tables.
    whole = results_from_frames(
        protocol=pairwise.study.protocol,
        ratings=ratings_frame(reader_study=pairwise.study),
        spans=spans_frame(reader_study=pairwise.study),
        n_resamples=200,
    )
    assert complete["agreement"] == whole["agreement"]
    assert complete["headline"] == whole["headline"]
    assert set(complete["plots"]) == {"scale", "forest", "per_reader"}
    assert complete["plots"] == whole["plots"]


def test_a_new_rating_makes_a_new_version_that_is_computed_again(
    pairwise: RatedStudy,
    analyst: AbstractUser,
    api_client_for: Callable[[AbstractUser | None], APIClient],
    start_worker: Callable[[str], Any],  # noqa: F811
) -> None:
    client = api_client_for(analyst)
    start_worker("analysis")
    first = _api(pairwise, client).json()
    wait_for(lambda: _api(pairwise, client).status_code == 200, timeout=120, what="completion")

    Rating.objects.filter(assignment__reader_study=pairwise.study).first().delete()  # type: ignore[union-attr]
    changed = _api(pairwise, client)
    assert changed.status_code == 202
    assert changed.json()["status"]["key"] != first["status"]["key"]
    assert changed.json()["n_ratings"] == 71
    wait_for(lambda: _api(pairwise, client).status_code == 200, timeout=120, what="recompute")
    recomputed = _api(pairwise, client).json()
    assert recomputed["n_ratings"] == 71
    assert recomputed["status"]["key"] == changed.json()["status"]["key"]
    assert recomputed["agreement"]


def test_a_task_for_a_version_since_changed_or_already_computed_does_nothing(
    pairwise: RatedStudy,
    analyst: AbstractUser,
    api_client_for: Callable[[AbstractUser | None], APIClient],
) -> None:
    from reviewapp.analysis.results import AnalysisParams, analysis_key, analysis_rest_compute

    client = api_client_for(analyst)
    assert _api(pairwise, client).status_code == 202  # queued; no worker here
    params = AnalysisParams(n_resamples=200)
    key = analysis_key(reader_study=pairwise.study, params=params)
    # Delivered twice (acks late): the second delivery finds the results and stops.
    run = {"reader_study_pk": pairwise.study.pk, "params": params.as_dict(), "key": key}
    assert analysis_rest_compute(**run) == "computed"
    assert analysis_rest_compute(**run) == "cached"
    assert _api(pairwise, client).status_code == 200
    # A rating arrives while a task for the old version waits in the queue.
    stale = analysis_key(reader_study=pairwise.study, params=AnalysisParams(n_resamples=300))
    Rating.objects.filter(assignment__reader_study=pairwise.study).first().delete()  # type: ignore[union-attr]
    assert (
        analysis_rest_compute(
            **{**run, "params": {**run["params"], "n_resamples": 300}, "key": stale}
        )
        == "superseded"
    )
    assert _api(pairwise, client, resamples=300).status_code == 202


def test_parameters_are_their_own_computation(
    pairwise: RatedStudy,
    analyst: AbstractUser,
    api_client_for: Callable[[AbstractUser | None], APIClient],
) -> None:
    client = api_client_for(analyst)
    keys = {_api(pairwise, client, **p).json()["status"]["key"] for p in ({}, {"seed": 7}, {})}
    assert len(keys) == 2
    assert _queued() == 2


@pytest.mark.parametrize(("limit", "status_code", "queued"), [(8, 200, 0), (7, 202, 1)])
def test_a_study_within_the_inline_limit_is_complete_in_the_request(
    settings: Any,
    limit: int,
    status_code: int,
    queued: int,
    pairwise: RatedStudy,
    analyst: AbstractUser,
    api_client_for: Callable[[AbstractUser | None], APIClient],
) -> None:
    # 72 ratings at 200 resamples weigh as 7.2 ratings at 2,000.
    settings.ANALYSIS_INLINE_RATINGS = limit
    answer = _api(pairwise, api_client_for(analyst))
    assert answer.status_code == status_code
    assert ("agreement" in answer.json()) is (status_code == 200)
    assert _queued() == queued


@pytest.mark.browser
@pytest.mark.worker
@pytest.mark.slow
def test_the_page_shows_progress_then_fills_in_agreement_and_plots(
    pairwise: RatedStudy,
    analyst: AbstractUser,
    tmp_path: Path,
    start_worker: Callable[[str], Any],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    connections.close_all()
    study_id = pairwise.study.public_id
    with (
        serving(tmp_path, RADREVIEW_ANALYSIS_INLINE_RATINGS="0") as server,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.goto(f"{server}/accounts/login/?next=/analysis/{study_id}/")
        page.get_by_label("Username").fill(analyst.get_username())
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(rf"/analysis/{study_id}/$"))

        # No worker yet: the headline is there, agreement and plots are waiting.
        expect(page.locator("#headline")).to_be_visible()
        expect(page.locator("#analysis-progress-text")).to_have_text("waiting for a worker")
        expect(page.locator("#agreement-pending")).to_be_visible()
        assert page.locator("#agreement").count() == 0

        start_worker("analysis-page")
        # The page follows the task and fills in the results without a reload.
        page.evaluate("window.__sameDocument = true")
        expect(page.locator("body")).to_have_attribute(
            "data-analysis-complete", "true", timeout=120_000
        )
        assert page.evaluate("window.__sameDocument") is True
        expect(page.locator("#analysis-pending")).to_have_count(0)
        expect(page.locator("#agreement tbody tr").first).to_contain_text("[")
        for name in ("scale", "forest", "per_reader"):
            image = page.locator(f"#plot-{name} img")
            expect(image).to_be_visible()
            assert image.evaluate("img => img.complete && img.naturalWidth > 0"), name
        # The filled-in tables sort like the rest of the page.
        page.locator("#agreement thead th", has_text="Cases").click()
        assert page.locator("#agreement thead th").first.get_attribute("tabindex") == "0"
        browser.close()
    connections.close_all()
    assert problems == []


def test_figures_cached_by_other_analysis_code_are_not_served(
    pairwise: RatedStudy,
    analyst: AbstractUser,
    api_client_for: Callable[[AbstractUser | None], APIClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from reviewapp.analysis import results
    from reviewapp.analysis.results import AnalysisParams, analysis_key, analysis_rest_compute

    client = api_client_for(analyst)
    params = AnalysisParams(n_resamples=200)
    key = analysis_key(reader_study=pairwise.study, params=params)
    run = {"reader_study_pk": pairwise.study.pk, "params": params.as_dict(), "key": key}
    assert analysis_rest_compute(**run) == "computed"
    assert _api(pairwise, client).status_code == 200  # served from the cache

    # The same ratings, after a release that changed the analysis code: not served, queued.
    monkeypatch.setattr(results, "ANALYSIS_CODE_VERSION", "a-later-release")
    assert analysis_key(reader_study=pairwise.study, params=params) != key
    assert _api(pairwise, client).status_code == 202
