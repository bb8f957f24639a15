"""The coordinator's guided flow in real Chromium, at the screen sizes coordinators use.

carol builds a three-reader study from protocol to open. Two of her forms are refused on the
way (a sample count in words, more readers per case than readers): each time the problem shows
in the step she was in, with the focus on it, and nothing she had typed or ticked is lost, not
even ticks she never saved. dan is the third reader, beside alice and bob.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from reviewapp.core.roles import Role
from reviewapp.studies.models import Assignment, ReaderStudy
from tests.conftest import PASSWORD, REPO_ROOT
from tests.studies.conftest import make_case_study
from tests.studies.live import app_server, browser_login, password_login_allow

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = REPO_ROOT / "test-artifacts"
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
CASE_COUNT = 4


def step(page: Page, key: str) -> dict[str, str]:
    """One line of the overview: its state (done / next / todo) and what it says."""
    item = page.locator(f'.steps [data-step="{key}"]')
    classes = item.get_attribute("class") or ""
    state = next(s for s in ("done", "next", "todo") if s in classes.split())
    return {"state": state, "text": item.inner_text()}


def no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert width <= 0, f"the page scrolls sideways by {width} px"


@pytest.mark.parametrize(("width", "height"), [(1366, 768), (1920, 1080)])
def test_a_coordinator_builds_a_three_reader_study_through_the_guided_flow_losing_nothing(
    coordinator, reader, second_reader, make_user, settings, width, height
) -> None:
    third_reader = make_user("dan", Role.READER)
    for index in range(CASE_COUNT):
        make_case_study(index, stratum="abnormal" if index % 2 else "normal")
    password_login_allow(settings, coordinator)
    readers = {"alice": reader.pk, "bob": second_reader.pk, "dan": third_reader.pk}

    with app_server() as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        errors: list[str] = []
        carol = browser.new_context(viewport={"width": width, "height": height}).new_page()
        carol.on("pageerror", lambda error: errors.append(str(error)))
        browser_login(carol, base, "carol", PASSWORD)

        # Protocol: the new-study page is the first step.
        carol.goto(f"{base}/studies/new/")
        carol.get_by_label("Name", exact=True).fill("Three readers, guided")
        carol.get_by_label("Med-Gemini CXR comparative scale").check()
        carol.get_by_role("button", name="Create draft").click()
        carol.wait_for_url(re.compile(r"/studies/[0-9a-f-]{36}/$"))
        assert step(carol, "protocol")["state"] == "done"
        assert step(carol, "cases")["state"] == "next"
        assert "No cases yet" in step(carol, "cases")["text"]
        assert (
            "still missing: cases, readers, reading lists, blinding check"
            in (step(carol, "open")["text"])
        )
        no_sideways_scroll(carol)

        # Cases: a sample count in words is refused in the cases step, the filter kept.
        carol.get_by_label("Modality contains").fill("CR")
        carol.get_by_label("Stratified random sample").fill("normal: ten")
        carol.get_by_role("button", name="Add matching cases").click()
        problem = carol.locator("#step-cases .step-errors")
        expect(problem).to_contain_text("must be a whole number")
        expect(problem).to_be_focused()
        expect(problem).to_be_in_viewport()
        expect(carol.get_by_label("Modality contains")).to_have_value("CR")
        expect(carol.get_by_label("Stratified random sample")).to_have_value("normal: ten")
        carol.get_by_label("Stratified random sample").fill("")
        carol.get_by_role("button", name="Add matching cases").click()
        expect(carol.locator("#step-cases .step-note")).to_have_text(f"{CASE_COUNT} case(s) added.")
        expect(carol.locator("#step-cases .step-note")).to_be_in_viewport()
        assert step(carol, "cases")["state"] == "done"
        assert step(carol, "readers")["state"] == "next"

        # Readers and reading lists: three ticks and cohorts never saved with "Save panel",
        # then more readers per case than readers: refused in the reading-lists step, and
        # every tick, cohort and number is still there.
        for name, pk in readers.items():
            carol.get_by_label(name, exact=True).check()
            carol.locator(f'input[name="cohort_{pk}"]').fill("US" if name != "dan" else "UK")
        carol.get_by_label("Readers per case").fill("5")
        carol.get_by_label("Seed (optional; recorded)", exact=True).fill("7")
        carol.get_by_role("button", name="Generate reading lists").click()
        problem = carol.locator("#step-lists .step-errors")
        expect(problem).to_contain_text("Choose between 1 and 3 readers per case.")
        expect(problem).to_be_focused()
        for name, pk in readers.items():
            expect(carol.get_by_label(name, exact=True)).to_be_checked()
            expect(carol.locator(f'input[name="cohort_{pk}"]')).to_have_value(
                "US" if name != "dan" else "UK"
            )
        expect(carol.get_by_label("Readers per case")).to_have_value("5")
        expect(carol.get_by_label("Seed (optional; recorded)", exact=True)).to_have_value("7")
        assert step(carol, "readers")["state"] == "next"  # the refused form saved nothing
        ARTIFACTS.mkdir(exist_ok=True)
        carol.screenshot(path=str(ARTIFACTS / f"guided-flow-refused-{width}x{height}.png"))

        # Enter in a reading-lists field generates the lists (not the panel's button).
        carol.get_by_label("Readers per case").fill("2")
        carol.get_by_label("Readers per case").press("Enter")
        expect(carol.locator("#step-lists .step-note")).to_have_text("8 assignments generated.")
        assert step(carol, "readers")["state"] == "done"
        assert "3 readers" in step(carol, "readers")["text"]
        assert step(carol, "lists")["state"] == "done"
        assert "8 reads in 3 lists (2 reader(s) per case), seed 7" in step(carol, "lists")["text"]
        assert step(carol, "blinding")["state"] == "next"
        expect(carol.locator("#step-readers .panel li")).to_have_text(
            ["alice (US)", "bob (US)", "dan (UK)"]
        )

        carol.evaluate("() => window.scrollTo(0, 0)")
        carol.screenshot(path=str(ARTIFACTS / f"guided-flow-{width}x{height}.png"))

        # Opening before the blinding check is refused in the open step.
        carol.get_by_role("button", name="Open for reading").click()
        problem = carol.locator("#step-open .step-errors")
        expect(problem).to_contain_text("blinding check")
        expect(problem).to_be_focused()

        carol.get_by_role("button", name="Run the blinding check").click()
        expect(carol.locator("#step-blinding .step-note")).to_contain_text("Blinding check done")
        carol.get_by_role("button", name="I have reviewed these tells").click()
        assert step(carol, "blinding")["state"] == "done"
        assert step(carol, "open")["text"].endswith("Ready to open.")
        carol.get_by_role("button", name="Open for reading").click()
        expect(carol.locator("#step-open .step-note")).to_have_text("Study is now open.")
        for key in ("protocol", "cases", "readers", "lists", "blinding", "open"):
            assert step(carol, key)["state"] == "done", key
        no_sideways_scroll(carol)
        browser.close()
    assert errors == []

    shot = ARTIFACTS / "guided-flow-1366x768.png"
    if width == 1366 and os.environ.get("RADREVIEW_UPDATE_SCREENSHOTS"):
        shutil.copyfile(shot, SCREENSHOTS / shot.name)
    study = ReaderStudy.objects.get(name="Three readers, guided")
    assert study.status == ReaderStudy.Status.OPEN
    assert dict(study.panel.values_list("reader__username", "cohort")) == {
        "alice": "US",
        "bob": "US",
        "dan": "UK",
    }
    assert (study.assignment_seed, study.reads_per_case) == (7, 2)
    assert Assignment.objects.filter(reader_study=study).count() == 2 * CASE_COUNT
