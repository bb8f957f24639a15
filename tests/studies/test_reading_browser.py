"""A radiologist rates two cases in real Chromium with the keyboard alone."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.hashers import make_password
from playwright.sync_api import expect, sync_playwright

from reviewapp.studies.models import Assignment, Rating, RatingWrite
from tests.conftest import PASSWORD
from tests.studies.conftest import build_study, make_case_study
from tests.studies.live import daphne_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]


def test_reader_rates_two_cases_with_the_keyboard_and_a_reload_keeps_the_draft(
    coordinator, reader, settings
) -> None:
    imaging = [make_case_study(i) for i in range(2)]
    study = build_study(
        coordinator=coordinator, readers=[reader], imaging=imaging, ask_ai_guess=True
    )
    # The server process uses the production hashers; store alice's password its way.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    reader.password = make_password(PASSWORD)
    reader.save(update_fields=["password"])
    first, second = Assignment.objects.filter(reader_study=study, reader=reader).order_by(
        "position"
    )
    first_uid = first.case.imaging_study.study_instance_uid  # no ORM once the browser runs

    with daphne_server() as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{base}/accounts/login/")
        page.keyboard.type("alice")
        page.keyboard.press("Tab")
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="My reading")).to_be_visible()
        page.get_by_role("link", name="Start").focus()
        page.keyboard.press("Enter")

        # Case 1: "c" answers the highlighted comparison (similar), "c" then "don't know".
        page.wait_for_url(re.compile(f"/studies/read/{first.public_id}/"))
        expect(page.locator("[data-viewer]")).to_have_attribute("data-study-uid", first_uid)
        page.keyboard.press("c")
        page.keyboard.press("c")
        page.keyboard.press("Control+Enter")

        # Case 2: answer the first question, let the draft save, reload mid-case.
        page.wait_for_url(re.compile(f"/studies/read/{second.public_id}/"))
        page.keyboard.press("a")
        expect(page.locator("[data-save-state]")).to_have_text("Draft saved")
        page.reload()
        expect(page.locator("[data-save-state]")).to_have_text("Draft restored")
        expect(page.locator('fieldset[data-item="comparison"] input[value="a"]')).to_be_checked()
        expect(page.locator('fieldset[data-item="ai_guess"]')).to_have_class(re.compile("active"))
        page.keyboard.press("b")
        page.keyboard.press("Control+Enter")
        page.wait_for_url(re.compile("/studies/reading/$"))
        expect(page.get_by_text("You have rated every case of this study")).to_be_visible()
        browser.close()
    assert errors == []

    ratings = {r.assignment_id: r for r in Rating.objects.filter(assignment__reader=reader)}
    assert set(ratings) == {first.pk, second.pk}
    assert RatingWrite.objects.count() == 2
    one, two = ratings[first.pk], ratings[second.pk]
    assert one.answers["comparison"]["value"] == "similar"
    assert one.ai_guess == "dont_know"
    ai_on_a = second.candidate_side == "A"
    assert two.answers["comparison"]["value"] == (
        "ai_much_better" if ai_on_a else "original_much_better"
    )
    assert two.ai_guess == ("original" if ai_on_a else "candidate")
    for assignment in (first, second):
        assignment.refresh_from_db()
        assert assignment.status == "submitted"
        assert assignment.opened_at <= assignment.first_answer_at <= assignment.submitted_at
