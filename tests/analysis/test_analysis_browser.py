"""An analyst logs in with real headless Chromium, reads the headline table and the plots,
downloads both CSVs (and an Excel-ready one, and the sidecar), and finds the page's numbers in
the data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from django.contrib.auth.models import AbstractUser
from django.db import connections
from playwright.sync_api import Page, sync_playwright

from reviewapp.analysis.templatetags.analysis_format import pct
from tests.analysis.conftest import RatedStudy
from tests.conftest import PASSWORD, serving

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def server(transactional_db: None, tmp_path: Path) -> Iterator[str]:
    """The application served as `make serve` serves it, on the test database."""
    with serving(tmp_path) as url:
        yield url


@pytest.fixture
def browser_page(server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Page, list[str]]]:
    # Playwright's sync API runs an event loop in this thread; the ORM calls here stay sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    connections.close_all()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context(accept_downloads=True)
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        # Failed loads are reported by URL below (the favicon's 404 is expected); any other
        # console error (a CSP refusal, a script error) is a problem.
        page.on(
            "console",
            lambda msg: (
                problems.append(msg.text)
                if msg.type == "error" and not msg.text.startswith("Failed to load resource")
                else None
            ),
        )
        page.on(
            "response",
            lambda r: (
                problems.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico")
                else None
            ),
        )
        try:
            yield page, problems
        finally:
            context.close()
            browser.close()
            connections.close_all()


def test_analyst_reads_results_downloads_both_csvs_and_finds_the_same_numbers(
    pairwise: RatedStudy,
    error_study: RatedStudy,
    analyst: AbstractUser,
    server: str,
    browser_page: tuple[Page, list[str]],
    tmp_path: Path,
) -> None:
    page, problems = browser_page
    page.goto(f"{server}/accounts/login/?next=/analysis/")
    page.fill("input[name=username]", analyst.get_username())
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{server}/analysis/")
    page.click("text=MIMIC-CXR demo")
    page.wait_for_selector("#headline")

    overall = page.locator(
        'tr[data-outcome="equivalent_or_better"][data-source="ai"][data-stratum="overall"]'
    )
    shown_rate = overall.locator("td.rate").inner_text()
    shown_ci = overall.locator("td.ci").inner_text()
    assert shown_ci.startswith("[")
    assert page.locator("#bootstrap-note").inner_text().count("2000 resamples") == 1

    # Every plot is an image the browser could decode and lay out.
    for name in ("scale", "forest", "per_reader"):
        image = page.locator(f"#plot-{name} img")
        assert image.evaluate("img => img.complete && img.naturalWidth > 0"), name

    # The page's script sorts a table by a column header.
    first_reader = page.locator("#per-reader tbody tr").first.locator("td").nth(2)
    page.locator("#per-reader thead th", has_text="Rate").click()
    rates = page.locator("#per-reader tbody tr td:nth-child(5)").all_inner_texts()
    values = [float(r.rstrip("%")) for r in rates]
    assert values == sorted(values)
    assert first_reader.inner_text().startswith("R0")

    downloads = {}
    for dataset in ("ratings", "spans"):
        with page.expect_download() as info:
            page.locator(f'#downloads a[href*="/export/{dataset}.csv"]').click()
        target = tmp_path / f"{dataset}.csv"
        info.value.save_as(target)
        downloads[dataset] = target
    ratings = pd.read_csv(downloads["ratings"])
    recomputed = ratings["answer_value"].isin(["similar", "ai_better", "ai_much_better"]).mean()
    assert shown_rate == pct(recomputed)
    assert len(ratings) == 72
    spans = pd.read_csv(downloads["spans"])
    assert list(spans.columns)[:2] == ["study", "study_name"]
    assert spans.empty  # the comparative study marks no passages

    # For Excel: the checkbox starts the CSV with a UTF-8 byte order mark, same rows.
    page.check("#csv-bom")
    with page.expect_download() as info:
        page.locator("#csv-options button", has_text="Ratings CSV").click()
    marked = tmp_path / "ratings-excel.csv"
    info.value.save_as(marked)
    assert marked.read_bytes() == b"\xef\xbb\xbf" + downloads["ratings"].read_bytes()
    # The sidecar states the rules of the analysis on the page.
    with page.expect_download() as info:
        page.locator("#sidecar-download").click()
    sidecar = json.loads(Path(info.value.path()).read_text())
    assert sidecar["analysis"]["bootstrap"]["n_resamples"] == 2000
    assert sidecar["tables"]["ratings"]["rows"] == 72

    # The error-correction study is not carol's, but dave the analyst sees it too.
    page.goto(f"{server}/analysis/")
    page.click("text=Error correction demo")
    page.wait_for_selector("#comparisons")
    assert "Finding present that is not" in page.locator("#errors").inner_text()
    assert problems == []
