"""A whole reader study in real Chromium: a coordinator builds a Med-Gemini-style study for two
readers, both rate every case blind with the keyboard, the coordinator watches the progress page
update live, a reader revises a rating and the history shows both versions."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from reviewapp.studies.models import Assignment, Rating, ReaderStudy
from tests.conftest import PASSWORD
from tests.studies.conftest import MODEL_NAME, make_case_study
from tests.studies.live import app_server, browser_login, password_login_allow

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]

CASE_COUNT = 3


def rate_every_case(page: Page, keys: list[str]) -> list[str]:
    """Rate the reader's whole list from the worklist with the keyboard; returns each case
    page's text as the reader saw it."""
    page.get_by_role("link", name="Start").focus()
    page.keyboard.press("Enter")
    seen = []
    for position, key in enumerate(keys, start=1):
        expect(page.locator(".case-count")).to_have_text(f"Case {position} of {len(keys)}")
        page.wait_for_load_state()  # the page's keys work once its script has run
        expect(page.locator("[data-submit]")).to_have_text("Submit (Ctrl+Enter)")
        seen.append(page.content())
        page.keyboard.press(key)
        page.keyboard.press("Control+Enter")
    page.wait_for_url(re.compile("/studies/reading/$"))
    expect(page.get_by_text("You have rated every case of this study")).to_be_visible()
    return seen


def test_a_coordinator_builds_a_study_two_readers_rate_it_and_the_history_shows_a_revision(
    coordinator, reader, second_reader, settings
) -> None:
    for index in range(CASE_COUNT):
        make_case_study(index, stratum="abnormal" if index else "normal")
    make_case_study(99, modality="CT")  # not a chest radiograph: the filter leaves it out
    password_login_allow(settings, coordinator, reader, second_reader)
    alice_pk, bob_pk = reader.pk, second_reader.pk

    with app_server() as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        errors: list[str] = []
        carol, alice, bob = (browser.new_context().new_page() for _ in range(3))
        for page in (carol, alice, bob):
            page.on("pageerror", lambda error: errors.append(str(error)))

        # The coordinator builds the study from the built-in template.
        browser_login(carol, base, "carol", PASSWORD)
        carol.goto(f"{base}/studies/new/")
        carol.get_by_label("Name", exact=True).fill("Med-Gemini CXR pilot")
        carol.get_by_label("Med-Gemini CXR comparative scale").check()
        carol.get_by_role("button", name="Create draft").click()
        carol.wait_for_url(re.compile(r"/studies/[0-9a-f-]{36}/$"))
        study_url = carol.url

        carol.get_by_label("Modality contains").fill("CR")
        carol.get_by_role("button", name="Add matching cases").click()
        expect(carol.get_by_role("heading", name=f"2. Cases ({CASE_COUNT})")).to_be_visible()

        carol.get_by_label("alice", exact=True).check()
        carol.locator(f'input[name="cohort_{alice_pk}"]').fill("US")
        carol.get_by_label("bob", exact=True).check()
        carol.locator(f'input[name="cohort_{bob_pk}"]').fill("India")
        carol.get_by_role("button", name="Save panel").click()
        expect(carol.get_by_label("bob", exact=True)).to_be_checked()

        carol.get_by_label("Seed (optional; recorded)", exact=True).fill("20241")
        carol.get_by_role("button", name="Generate reading lists").click()
        expect(carol.locator("[data-step=lists]")).to_contain_text("seed 20241")
        # The study opens only once the coordinator has reviewed the blinding check.
        carol.get_by_role("button", name="Run the blinding check").click()
        expect(carol.get_by_text(re.compile(r"Blinding check done"))).to_be_visible()
        carol.get_by_role("button", name="I have reviewed these tells").click()
        expect(carol.locator("#blinding-acknowledged")).to_contain_text("carol")
        carol.get_by_role("button", name="Open for reading").click()
        expect(carol.get_by_role("heading", name=re.compile(r"\(Open\)"))).to_be_visible()

        carol.get_by_role("link", name="Live progress").click()
        expect(carol.locator("[data-live-state]")).to_have_text("live")
        overall = carol.locator("[data-progress-overall]")
        expect(overall).to_have_text(f"0 / {2 * CASE_COUNT}")

        # Both readers rate their lists with the keyboard alone; the page the coordinator
        # already has open follows each rating without a reload.
        browser_login(alice, base, "alice", PASSWORD)
        seen = rate_every_case(alice, ["a", "c", "e"])
        expect(overall).to_have_text(f"{CASE_COUNT} / {2 * CASE_COUNT}")
        expect(carol.locator('tr[data-reader="alice"] [data-col="submitted"]')).to_have_text(
            f"{CASE_COUNT} / {CASE_COUNT}"
        )
        browser_login(bob, base, "bob", PASSWORD)
        seen += rate_every_case(bob, ["c", "c", "b"])
        expect(overall).to_have_text(f"{2 * CASE_COUNT} / {2 * CASE_COUNT}")

        # Alice goes back to her first case and changes her mind.
        alice.get_by_role("link", name="review or revise my ratings").click()
        expect(alice.locator("[data-save-state]")).to_have_text("Submitted (version 1)")
        expect(alice.locator("[data-submit]")).to_have_text("Save revision (Ctrl+Enter)")
        alice.wait_for_load_state()
        alice.keyboard.press("d")
        alice.keyboard.press("Control+Enter")
        expect(carol.locator("[data-progress-revisions]")).to_have_text("1")

        # The coordinator reads the rating's history: both versions, who and what.
        carol.goto(study_url)
        # Columns: case, reader, position, version, submitted, history.
        row = carol.locator(
            'tr:has(td:nth-child(2):text-is("alice")):has(td:nth-child(3):text-is("1"))'
        )
        expect(row.locator("td").nth(3)).to_have_text("2")  # the version column
        expect(row).to_have_count(1)
        row.get_by_role("link", name="history").click()
        versions = carol.locator("table.history tbody tr")
        expect(versions).to_have_count(2)
        expect(versions.nth(0)).to_contain_text("alice")
        browser.close()
    assert errors == []

    for page_text in seen:  # blind: no model name, no source labels on the reading pages
        assert MODEL_NAME not in page_text
        assert "Dictated by" not in page_text

    study = ReaderStudy.objects.get(name="Med-Gemini CXR pilot")
    assert (study.protocol_key, study.status, study.assignment_seed) == (
        "medgemini_cxr",
        "open",
        20241,
    )
    assert {c.imaging_study.modalities for c in study.cases.all()} == {"CR"}
    cohorts = dict(study.panel.values_list("reader__username", "cohort"))
    assert cohorts == {"alice": "US", "bob": "India"}

    assignments = Assignment.objects.filter(reader_study=study)
    for person in (reader, second_reader):
        mine = assignments.filter(reader=person)
        assert mine.count() == CASE_COUNT
        assert mine.filter(status="submitted").count() == CASE_COUNT
        # Balanced within each reader: of three cases the AI report is on A once or twice.
        assert mine.filter(candidate_side="A").count() in (1, 2)

    first = assignments.get(reader=reader, position=1)
    revised = Rating.objects.get(assignment=first)
    assert revised.version == 2
    assert revised.answers["comparison"]["value"] == (
        "original_better" if first.candidate_side == "A" else "ai_better"
    )
    assert Rating.objects.filter(assignment__reader_study=study).count() == 2 * CASE_COUNT
