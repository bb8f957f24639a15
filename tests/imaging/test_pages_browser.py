"""A coordinator uploads DICOM in real headless Chromium and follows the import to its end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connections
from playwright.sync_api import Page, sync_playwright

from reviewapp.imaging.models import ImportBatch, Instance
from tests.conftest import PASSWORD, serving
from tests.imaging.conftest import CT_FILES, CXR_JPEG

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def server_env() -> dict[str, str]:
    """Settings of the served app a test may change (parametrize it)."""
    return {}


@pytest.fixture
def web(transactional_db: None, tmp_path: Path, server_env: dict[str, str]) -> Iterator[str]:
    """The application served as `make serve` serves it, on the test database. Queued imports
    run in the server at commit, as a worker would run them."""
    with serving(tmp_path, RADREVIEW_TASKS_EAGER="1", **server_env) as url:
        yield url


@pytest.fixture
def page(web: str, monkeypatch) -> Iterator[Page]:
    """A browser page; closed before the server stops (it depends on ``web`` for that)."""
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still synchronous and safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    # Django's connections are per context, and the running event loop makes a new one: close
    # this context's connection now and the inner one before leaving, or one stays open and
    # blocks dropping the test database.
    connections.close_all()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context()
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # The browser asks for /favicon.ico on its own; there is none, and that is fine.
        page.on(
            "response",
            lambda r: (
                errors.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico")
                else None
            ),
        )
        yield page
        browser.close()
        connections.close_all()
        assert errors == [], errors


def _log_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_a_coordinator_uploads_files_sees_the_progress_reach_100_and_the_batch_summary(
    web: str, coordinator, page: Page, tmp_path: Path
) -> None:
    broken = tmp_path / "not-an-image.dcm"
    broken.write_bytes(b"nothing to see here" * 50)
    _log_in(page, web, "carol")
    page.goto(f"{web}/imaging/upload/")
    page.set_input_files("#file-input", [*map(str, CT_FILES[:5]), str(CXR_JPEG), str(broken)])
    assert "7 files selected" in page.inner_text("#selection-summary")

    # The upload page hands over to the batch page as soon as the bytes are up, so record
    # every progress update as it happens.
    seen: list[str] = []

    def record(entry: str) -> None:
        seen.append(entry)

    page.expose_function("recordProgress", record)
    page.evaluate(
        """() => {
          const status = document.getElementById("upload-status");
          const bar = document.getElementById("upload-progress");
          new MutationObserver(() => window.recordProgress(`${bar.value}|${status.textContent}`))
            .observe(status, { childList: true, characterData: true, subtree: true });
        }"""
    )
    page.click("#upload-button")
    page.wait_for_url("**/imaging/imports/*/", timeout=60_000)
    page.wait_for_selector('#batch[data-status="done"]', timeout=60_000)

    assert any(entry.startswith("100|") for entry in seen), seen
    assert page.inner_text("#batch-status") == "Done"
    assert page.inner_text("#files-done") == "7"
    assert page.inner_text("#imported-count") == "5"
    assert page.inner_text("#quarantined-count") == "1"
    assert page.inner_text("#failed-count") == "1"
    problems = page.inner_text("#problems")
    assert "not-an-image.dcm" in problems
    assert "siim_nihcxr14_chest_PA_jpeg.dcm" in problems
    assert page.eval_on_selector("#batch-progress", "el => el.value === el.max")

    batch = ImportBatch.objects.get()
    assert batch.created_by == coordinator
    assert Instance.objects.count() == 6


@pytest.mark.parametrize("server_env", [{"RADREVIEW_MAX_UPLOAD_BYTES": "200000"}])
def test_the_upload_page_warns_before_sending_more_than_the_limit(
    web: str, coordinator, page: Page
) -> None:
    _log_in(page, web, "carol")
    page.goto(f"{web}/imaging/upload/")
    page.set_input_files("#file-input", [str(CXR_JPEG), str(CT_FILES[0])])
    assert "more than the 195.3 KB allowed" in page.inner_text("#upload-status")
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.click("#upload-button")
    # The submit handler runs within the click; a round trip to the page after it returns
    # means it has finished, and any upload it started would have been requested by then.
    page.evaluate("() => document.readyState")
    assert posts == []
    assert "more than the 195.3 KB allowed" in page.inner_text("#upload-status")
    assert ImportBatch.objects.count() == 0
