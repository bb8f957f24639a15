"""A radiologist marks an error span with the keyboard alone (no mouse) in real Chromium."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from reviewapp.reports.models import Report
from reviewapp.studies import services
from reviewapp.studies.models import Assignment, Rating
from reviewapp.studies.rendering import report_render
from tests.conftest import PASSWORD
from tests.studies.conftest import build_study, make_case_study
from tests.studies.live import app_server, browser_login, chromium_page, password_login_allow

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
    password_login_allow(settings, reader)
    assignment = Assignment.objects.get(reader_study=study)
    findings = report_render(assignment.report_a)["findings"]
    assert findings.startswith("The lungs are clear. Cardiac")

    with app_server() as base, chromium_page() as (page, errors):
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


PAIRWISE_WITH_SPANS = {
    "key": "pairwise_errors",
    "version": 1,
    "title": "Pairwise with error marking",
    "mode": "pairwise",
    "questions": [
        {
            "id": "errors",
            "type": "error_spans",
            "scope": "per_report",
            "prompt": "Mark each passage you disagree with",
            "categories": [{"value": "false_finding", "label": "Finding present that is not"}],
        }
    ],
}


def test_the_keyboard_marks_in_the_report_of_the_highlighted_question(
    coordinator, reader, settings
) -> None:
    study = services.reader_study_create(
        user=coordinator, name="Pairwise errors", protocol=PAIRWISE_WITH_SPANS
    )
    services.cases_add(
        reader_study=study,
        imaging_studies=[make_case_study(2)],
        candidate_reports=Report.objects.filter(kind=Report.Kind.AI),
    )
    services.panel_set(reader_study=study, readers=[(reader, "")])
    services.assignments_generate(reader_study=study, seed=7)
    services.reader_study_open(reader_study=study, acknowledged_by=coordinator)
    password_login_allow(settings, reader)
    assignment = Assignment.objects.get(reader_study=study)
    impression_b = report_render(assignment.report_b)["impression"]

    with app_server() as base, chromium_page() as (page, errors):
        browser_login(page, base, "alice", PASSWORD)
        page.goto(f"{base}/studies/read/{assignment.public_id}/")
        page.keyboard.press("j")  # from Report A's error question to Report B's
        expect(page.locator('fieldset[data-item="errors.B"]')).to_have_class(re.compile("active"))
        page.keyboard.press("m")
        for _ in range(3):  # past the findings' sentences into the impression
            page.keyboard.press("ArrowDown")
        status = page.locator('[data-mark-status="B"]')
        expect(status).to_contain_text(f"“{impression_b}”")
        page.keyboard.press("Enter")
        expect(page.locator('[data-spans="B"] li q')).to_have_text(impression_b)
        page.keyboard.press("ArrowDown")
        page.keyboard.press("Escape")
        page.keyboard.press("Control+Enter")
        page.wait_for_url(re.compile("/studies/reading/$"))
    assert errors == []

    span = Rating.objects.get(assignment=assignment).error_spans.get()
    assert (span.side, span.section, span.start, span.end) == (
        "B",
        "impression",
        0,
        len(impression_b),
    )
    assert span.report_id == assignment.report_b.pk
