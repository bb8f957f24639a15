"""A coordinator builds a three-arm study in Chromium at 1366x768 (model A vs the original,
model B vs the original, A vs B) from the study page's design form, and a reader reads it
with the clinical information above both reports."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import expect, sync_playwright

from reviewapp.reports.models import Report, ReportSource
from reviewapp.reports.services import report_source_original, study_context_set
from reviewapp.studies.models import Assignment, Case, ReaderStudy
from tests.conftest import PASSWORD
from tests.studies.conftest import make_imaging_study
from tests.studies.live import app_server, browser_login, password_login_allow

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]


def test_a_coordinator_builds_three_arms_and_a_reader_sees_one_clinical_panel(
    coordinator, reader, settings
) -> None:
    original = report_source_original()
    model_a = ReportSource.objects.create(kind="external", name="Model A", version="1")
    model_b = ReportSource.objects.create(kind="external", name="Model B", version="1")
    for index in range(3):
        study = make_imaging_study(index)
        study_context_set(
            study=study, indication=f"Cough for {index + 2} days.", technique="PA view."
        )
        for source, findings in (
            (original, "Heart size normal.\nNo focal consolidation."),
            (model_a, "The lungs are clear."),
            (model_b, "No consolidation or effusion."),
        ):
            Report.objects.create(
                study=study,
                kind="original" if source == original else "ai",
                source=source,
                findings=f"{findings} {index}",
                impression="No acute disease.",
            )
    password_login_allow(settings, coordinator, reader)

    with app_server() as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        errors: list[str] = []
        carol = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
        alice = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
        for page in (carol, alice):
            page.on("pageerror", lambda error: errors.append(str(error)))

        browser_login(carol, base, "carol", PASSWORD)
        carol.goto(f"{base}/studies/new/")
        carol.get_by_label("Name", exact=True).fill("Two models, three arms")
        carol.get_by_label("Med-Gemini CXR comparative scale").check()
        carol.get_by_role("button", name="Create draft").click()
        carol.wait_for_url(re.compile(r"/studies/[0-9a-f-]{36}/$"))

        # The design, in plain words: tick the three pairs.
        carol.get_by_label("Only the pairs I tick below").check()
        carol.get_by_label("Model A 1 vs Original (radiologist)").check()
        carol.get_by_label("Model B 1 vs Original (radiologist)").check()
        carol.get_by_label("Model B 1 vs Model A 1").check()
        carol.get_by_role("button", name="Save design").click()
        expect(carol.get_by_text("Design saved: 3 arm(s).")).to_be_visible()
        arms = carol.locator("[data-arms] tbody tr")
        expect(arms).to_have_count(3)

        carol.get_by_label("Modality contains").fill("CR")
        carol.get_by_role("button", name="Add matching cases").click()
        expect(carol.get_by_role("heading", name="2. Cases (9)")).to_be_visible()

        carol.get_by_label("alice", exact=True).check()
        carol.get_by_role("button", name="Save panel").click()
        carol.get_by_label("Keep at least this many other cases").fill("2")
        carol.get_by_label("Seed (optional; recorded)", exact=True).fill("7")
        carol.get_by_role("button", name="Generate reading lists").click()
        expect(carol.get_by_text("9 assignments generated.")).to_be_visible()
        carol.get_by_role("button", name="Run the blinding check").click()
        carol.get_by_role("button", name="I have reviewed these tells").click()
        carol.get_by_role("button", name="Open for reading").click()
        expect(carol.get_by_text("Study is now open.")).to_be_visible()

        browser_login(alice, base, "alice", PASSWORD)
        alice.goto(f"{base}/studies/reading/")
        alice.get_by_role("link", name="Start").click()
        expect(alice.locator(".case-count")).to_have_text("Case 1 of 9")
        panel = alice.get_by_role("region", name="Clinical information")
        expect(panel).to_be_visible()
        expect(panel).to_contain_text("Indication / history")
        expect(panel).to_contain_text("PA view.")
        box = panel.bounding_box()
        report_a = alice.get_by_role("region", name="Report A").bounding_box()
        assert box is not None
        assert report_a is not None
        assert box["y"] < report_a["y"]

        # The next case replaces this one in place: its own clinical information comes with it.
        # Playwright's event loop runs in this thread: the ORM is asked from another one.
        with ThreadPoolExecutor(1) as pool:
            second_indication = pool.submit(
                lambda: (
                    Assignment.objects.filter(
                        reader_study__name="Two models, three arms", reader=reader
                    )
                    .order_by("position")[1]
                    .case.imaging_study.indication
                )
            ).result()
        first_text = panel.inner_text()
        alice.keyboard.press("n")
        expect(alice.locator(".case-count")).to_have_text("Case 2 of 9")
        panel = alice.get_by_role("region", name="Clinical information")
        expect(panel).to_contain_text(second_indication)
        assert panel.inner_text() != first_text
        browser.close()
        assert not errors, errors

    study = ReaderStudy.objects.get(name="Two models, three arms")
    assert study.design == ReaderStudy.Design.CHOSEN_PAIRS
    assert study.same_study_gap == 2
    assert Case.objects.filter(reader_study=study).values("arm").distinct().count() == 3
    order = list(
        Assignment.objects.filter(reader_study=study)
        .order_by("position")
        .values_list("case__imaging_study_id", flat=True)
    )
    for i, imaging in enumerate(order):
        assert imaging not in order[max(0, i - 2) : i]
