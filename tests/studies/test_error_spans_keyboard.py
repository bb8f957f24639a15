"""A radiologist marks an error span with the keyboard alone (no mouse) in real Chromium."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.hashers import make_password
from playwright.sync_api import expect, sync_playwright

from reviewapp.studies.models import Assignment, Rating
from reviewapp.studies.rendering import report_render
from tests.conftest import PASSWORD
from tests.studies.conftest import build_study, make_case_study
from tests.studies.live import browser_login, daphne_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]


def test_error_span_marked_by_keyboard_stores_the_offsets_of_the_rendered_text(
    coordinator, reader, settings
) -> None:
    study = build_study(
        coordinator=coordinator,
        readers=[reader],
        imaging=[make_case_study(1)],
        protocol_key="error_correction",
    )
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    reader.password = make_password(PASSWORD)
    reader.save(update_fields=["password"])
    assignment = Assignment.objects.get(reader_study=study)
    findings = report_render(assignment.report_a)["findings"]
    assert findings.startswith("The lungs are clear. Cardiac")

    with daphne_server() as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        browser_login(page, base, "alice", PASSWORD)
        page.goto(f"{base}/studies/read/{assignment.public_id}/")
        page.keyboard.press("a")  # image quality sufficient: yes; the error question is next
        expect(page.locator('fieldset[data-item="errors"]')).to_have_class(re.compile("active"))

        status = page.locator("[data-mark-status]")
        page.keyboard.press("m")  # the first sentence
        expect(status).to_contain_text("“The lungs are clear.”")
        page.keyboard.press("ArrowDown")  # the next sentence
        expect(status).to_contain_text("“Cardiac silhouette is within normal limits 1.”")
        page.keyboard.press("ArrowUp")
        page.keyboard.press("ArrowRight")  # into the sentence: its first word
        expect(status).to_contain_text("“The”")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("Shift+ArrowRight")
        page.keyboard.press("Shift+ArrowRight")
        expect(status).to_contain_text("“lungs are clear”")
        page.keyboard.press("Enter")

        row = page.locator("ol.spans li")
        expect(row.locator("q")).to_have_text("lungs are clear")
        expect(status).to_be_hidden()
        expect(row.locator("select")).to_be_focused()
        page.keyboard.press("ArrowDown")  # the first reason
        expect(row.locator("select")).to_have_value("false_finding")
        page.keyboard.press("Tab")
        page.keyboard.press("Space")
        expect(row.get_by_label("clinically significant")).to_be_checked()
        page.keyboard.press("Tab")
        page.keyboard.type("lungs are hyperinflated")
        page.keyboard.press("Enter")  # must not submit half-way through the span
        page.keyboard.press("Escape")
        expect(page.locator("[data-save-state]")).to_have_text("Draft saved")
        page.keyboard.press("Control+Enter")
        page.wait_for_url(re.compile("/studies/reading/$"))
        browser.close()
    assert errors == []

    rating = Rating.objects.get(assignment=assignment)
    span = rating.error_spans.get()
    start = findings.index("lungs")
    assert (span.section, span.start, span.end) == ("findings", start, start + 15)
    assert findings[span.start : span.end] == "lungs are clear"
    assert (span.category, span.is_significant, span.replacement_text) == (
        "false_finding",
        True,
        "lungs are hyperinflated",
    )
    assert rating.edited_report.findings.startswith("The lungs are hyperinflated. Cardiac")
