"""What a coordinator sees, in real Chromium against the ASGI server: queue studies with the
baseline, watch the progress bar fill live, open the AI report and its provenance."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from reviewapp.generation.models import ModelConfig
from tests.conftest import PASSWORD, serving
from tests.generation.conftest import wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.worker,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[str]:
    """The app served as `make serve` serves it (HTTP and websockets) on the test database."""
    with serving(tmp_path) as url:
        yield url


def test_a_coordinator_queues_the_baseline_and_watches_the_bar_fill(
    web_server, start_worker, coordinator, two_radiographs
) -> None:
    config, _ = ModelConfig.objects.get_or_create(
        name="retrieval-baseline", defaults={"backend": "retrieval"}
    )
    config.parameters = {"seed": 0, "throttle_seconds": 2}
    config.save()
    start_worker("browser")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{web_server}/accounts/login/?next=/generation/")
        page.get_by_label("Username").fill("carol")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(r"/generation/$"))

        for study in two_radiographs:
            page.get_by_label(f"Queue study {study.label}").check()
        page.get_by_role("button", name="Queue generation").click()
        page.wait_for_url(re.compile(r"/generation/jobs/"))

        expect(page.locator("#job-live")).to_have_text("live", timeout=15_000)
        progress = page.locator("#job-progress")
        expect(progress).to_have_attribute("max", "2")
        # The bar moves as each study finishes, without reloading the page. (The page's CSP
        # forbids eval, so the value is read from here rather than with wait_for_function.)
        seen: list[float] = []

        def bar_at(value: float) -> bool:
            seen.append(progress.evaluate("bar => bar.value"))
            return seen[-1] == value

        wait_for(lambda: bar_at(1), timeout=60, what="the bar to show one finished study")
        wait_for(lambda: bar_at(2), timeout=60, what="the bar to show both finished")
        assert seen[0] == 0
        expect(page.locator("#job-progress-text")).to_contain_text("2 / 2 finished")
        expect(page.locator(".run-status")).to_have_text(["succeeded", "succeeded"])

        normal = two_radiographs[0]
        page.locator(f'tr:has-text("{normal.label}") .run-report').click()
        expect(page.locator("#run-report")).to_contain_text("Right upper lobe nodule.")
        expect(page.locator("body")).to_contain_text("baseline: image nearest-neighbour")
        expect(page.locator("#run-provenance")).to_contain_text("sop_instance_uids")
        browser.close()
    assert errors == []
