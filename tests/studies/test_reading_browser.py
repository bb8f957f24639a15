"""A radiologist rates two cases in real Chromium with the keyboard alone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect, sync_playwright

from reviewapp.studies.models import Assignment, Rating, RatingWrite
from tests.conftest import PASSWORD
from tests.studies.conftest import build_study, make_case_study
from tests.studies.live import app_server, browser_login, chromium_page, password_login_allow

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]


def test_reader_rates_two_cases_with_the_keyboard_and_a_reload_keeps_the_draft(
    coordinator, reader, settings
) -> None:
    imaging = [make_case_study(i) for i in range(2)]
    study = build_study(
        coordinator=coordinator, readers=[reader], imaging=imaging, ask_ai_guess=True
    )
    # The server process uses the production hashers; store alice's password its way.
    password_login_allow(settings, reader)
    first, second = Assignment.objects.filter(reader_study=study, reader=reader).order_by(
        "position"
    )
    first_uid = first.case.imaging_study.study_instance_uid  # no ORM once the browser runs

    with app_server() as base, chromium_page() as (page, errors):
        page.goto(f"{base}/accounts/login/")
        page.get_by_label("Username").focus()
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


def test_error_spans_are_marked_with_the_mouse_and_progress_updates_live(
    coordinator, reader, settings
) -> None:
    study = build_study(
        coordinator=coordinator,
        readers=[reader],
        imaging=[make_case_study(1)],
        protocol_key="error_correction",
    )
    password_login_allow(settings, reader, coordinator)
    assignment = Assignment.objects.get(reader_study=study)

    with app_server() as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        carol = browser.new_context().new_page()
        browser_login(carol, base, "carol", PASSWORD)
        carol.goto(f"{base}/studies/{study.public_id}/progress/")
        expect(carol.locator("[data-live-state]")).to_have_text("live")
        expect(carol.locator("[data-progress-overall]")).to_have_text("0 / 1")

        alice = browser.new_context().new_page()
        browser_login(alice, base, "alice", PASSWORD)
        alice.goto(f"{base}/studies/read/{assignment.public_id}/")
        alice.keyboard.press("a")  # image quality sufficient: yes
        box = alice.evaluate(
            """() => {
                const node = document.querySelector('.report-text[data-section="findings"]')
                    .firstChild;
                const range = document.createRange();
                const at = node.textContent.indexOf("clear");
                range.setStart(node, at);
                range.setEnd(node, at + 5);
                const r = range.getBoundingClientRect();
                return {x: r.x + r.width / 2, y: r.y + r.height / 2};
            }"""
        )
        alice.mouse.dblclick(box["x"], box["y"])
        alice.get_by_role("button", name="Mark selected passage").click()
        row = alice.locator("ol.spans li")
        expect(row.locator("q")).to_have_text(re.compile(r"^clear\s?$"))
        row.locator("select").select_option("false_finding")
        row.get_by_label("clinically significant").check()
        row.get_by_placeholder("Replacement text").fill("hyperinflated")
        alice.keyboard.press("Control+Enter")
        alice.wait_for_url(re.compile("/studies/reading/$"))
        expect(carol.locator("[data-progress-overall]")).to_have_text("1 / 1")
        expect(carol.locator('tr[data-reader="alice"] [data-col="submitted"]')).to_have_text(
            "1 / 1"
        )
        browser.close()

    rating = Rating.objects.get(assignment=assignment)
    span = rating.error_spans.get()
    assert (span.category, span.is_significant, span.replacement_text) == (
        "false_finding",
        True,
        "hyperinflated",
    )
    assert "The lungs are hyperinflated" in rating.edited_report.findings
