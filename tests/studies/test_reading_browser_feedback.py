"""What the reading page tells a radiologist, in real Chromium: a refused rating in words
beside its question (never raw JSON or internal codes), marked passages highlighted in the
report text, and a pause by the coordinator reaching the open page at once."""

from __future__ import annotations

import re
import threading

import pytest
from django.db import connection
from playwright.sync_api import expect

from reviewapp.studies import services
from reviewapp.studies.models import Assignment, Rating
from tests.conftest import PASSWORD
from tests.studies.conftest import build_study, make_case_study
from tests.studies.live import app_server, browser_login, chromium_page, password_login_allow

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]


def as_coordinator(service, **kwargs) -> None:
    """Run a coordinator's service as her web request would: in a thread of its own, beside
    the browser driver's event loop (which owns this one)."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            service(**kwargs)
        except BaseException as error:  # re-raised in the test's thread
            failures.append(error)
        finally:
            connection.close()

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    if failures:
        raise failures[0]


CATEGORY_CODES = (
    "false_finding",
    "omission_finding",
    "incorrect_location",
    "incorrect_severity",
    "false_comparison",
    "omission_comparison",
)


def test_a_refused_rating_is_explained_beside_its_question_and_takes_the_focus(
    coordinator, reader, settings
) -> None:
    study = build_study(
        coordinator=coordinator, readers=[reader], imaging=[make_case_study(1)], ask_ai_guess=True
    )
    password_login_allow(settings, reader)
    assignment = Assignment.objects.get(reader_study=study)

    with app_server() as base, chromium_page() as (page, errors):
        browser_login(page, base, "alice", PASSWORD)
        page.goto(f"{base}/studies/read/{assignment.public_id}/")
        page.keyboard.press("c")  # the comparison; the AI guess is left unanswered
        page.keyboard.press("Control+Enter")

        guess = page.locator('fieldset[data-item="ai_guess"]')
        message = guess.locator(".item-error")
        expect(message).to_have_text(
            "Please answer: Which report do you think was written by the AI?"
        )
        expect(guess).to_have_class(re.compile("invalid"))
        expect(guess).to_be_focused()
        expect(page.locator('fieldset[data-item="comparison"] .item-error')).to_have_count(0)
        form_text = page.inner_text("[data-rating-form]")
        assert "{" not in form_text
        assert "answers." not in form_text

        # The answer keys still work from there, and answering clears the message.
        page.keyboard.press("b")
        expect(message).to_have_count(0)
        expect(guess).not_to_have_class(re.compile("invalid"))
        page.keyboard.press("Control+Enter")
        page.wait_for_url(re.compile("/studies/reading/"))
    assert errors == []
    assert Rating.objects.filter(assignment=assignment).exists()


def test_marked_passages_are_highlighted_and_a_missing_reason_is_asked_for_in_words(
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

    with app_server() as base, chromium_page() as (page, errors):
        browser_login(page, base, "alice", PASSWORD)
        page.goto(f"{base}/studies/read/{assignment.public_id}/")
        page.keyboard.press("a")  # image quality sufficient
        page.keyboard.press("m")
        page.keyboard.press("Enter")  # the first sentence, no reason yet
        page.keyboard.press("Escape")  # leave the reason box
        highlighted = page.evaluate(
            """() => [...(CSS.highlights.get('error-span') || [])].map((r) => r.toString())"""
        )
        assert highlighted == ["The lungs are clear."]
        row = page.locator("ol.spans li")
        expect(row.locator(".span-reason")).to_have_text("no reason chosen yet")

        page.keyboard.press("Control+Enter")
        expect(row.locator(".item-error")).to_have_text("Choose a reason for this passage.")
        expect(row).to_have_class(re.compile("invalid"))
        expect(row.locator("select")).to_be_focused()
        form_text = page.inner_text("[data-rating-form]")
        for code in CATEGORY_CODES:
            assert code not in form_text

        row.locator("select").select_option(label="Incorrect severity")
        expect(row.locator(".span-reason")).to_have_text("Incorrect severity")
        expect(row.locator(".item-error")).to_have_count(0)
        page.keyboard.press("Control+Enter")
        page.wait_for_url(re.compile("/studies/reading/"))
    assert errors == []
    span = Rating.objects.get(assignment=assignment).error_spans.get()
    assert span.category == "incorrect_severity"


def test_a_pause_disables_submit_on_the_open_page_at_once_and_reopening_enables_it(
    coordinator, reader, settings
) -> None:
    study = build_study(coordinator=coordinator, readers=[reader], imaging=[make_case_study(1)])
    password_login_allow(settings, reader)
    assignment = Assignment.objects.get(reader_study=study)

    with app_server() as base, chromium_page() as (page, errors):
        browser_login(page, base, "alice", PASSWORD)
        sockets: list[str] = []
        page.on("websocket", lambda socket: sockets.append(socket.url))
        page.goto(f"{base}/studies/read/{assignment.public_id}/")
        submit = page.locator("[data-submit]")
        notice = page.locator("[data-study-notice]")
        expect(submit).to_be_enabled()
        expect(notice).to_be_hidden()
        page.keyboard.press("c")

        as_coordinator(services.reader_study_pause, reader_study=study)
        expect(submit).to_be_disabled(timeout=5000)
        expect(notice).to_be_visible()
        expect(notice).to_contain_text("paused")
        page.keyboard.press("Control+Enter")  # refused on the page, not sent
        expect(page).to_have_url(re.compile(f"/studies/read/{assignment.public_id}/"))

        as_coordinator(services.reader_study_open, reader_study=study)
        expect(submit).to_be_enabled(timeout=5000)
        expect(notice).to_be_hidden()
        # Pushed over the one socket the page opened, not picked up by a reconnection.
        assert len(sockets) == 1, sockets
        page.keyboard.press("Control+Enter")
        page.wait_for_url(re.compile("/studies/reading/"))
    assert errors == []
    assert Rating.objects.filter(assignment=assignment).exists()
