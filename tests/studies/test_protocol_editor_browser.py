"""A coordinator composes a small protocol in real Chromium and creates a study from it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from reviewapp.studies.models import ReaderStudy
from tests.conftest import PASSWORD
from tests.studies.live import app_server, browser_login, chromium_page, password_login_allow

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]


def test_a_coordinator_builds_a_protocol_in_the_browser_and_creates_a_study(
    coordinator, settings
) -> None:
    password_login_allow(settings, coordinator)

    with app_server() as base, chromium_page() as (page, errors):
        browser_login(page, base, "carol", PASSWORD)
        page.goto(f"{base}/studies/new/")
        page.get_by_role("link", name="compose or adapt a protocol").click()
        expect(page.get_by_role("heading", name="New protocol")).to_be_visible()

        page.get_by_label("Study name").fill("Quality pilot")
        page.get_by_label("Title").fill("Report quality")
        page.get_by_label("Key").fill("report_quality")
        page.get_by_label("Mode").select_option("single")
        page.get_by_role("button", name="Remove question 1").click()
        questions = page.locator("li[data-question]")
        expect(questions).to_have_count(0)

        def add(kind: str) -> None:
            page.get_by_label("Type of the new question").select_option(kind)
            page.get_by_role("button", name="Add question").click()

        add("likert")
        likert = questions.nth(0)
        expect(likert.get_by_label("Asked")).to_have_value("per_report")
        likert.get_by_label("Id").fill("quality")
        likert.get_by_label("Question", exact=True).fill("How good is this report?")
        for index, (code, label) in enumerate([("good", "Good"), ("poor", "Poor")]):
            row = likert.locator("li.option-row").nth(index)
            row.get_by_label("Code").fill(code)
            row.get_by_label("Label", exact=True).fill(label)
        likert.get_by_role("button", name="Add option").click()
        third = likert.locator("li.option-row").nth(2)
        third.get_by_label("Code").fill("fair")
        third.get_by_label("Label", exact=True).fill("Fair")
        likert.get_by_role("button", name="Move option 3 up").click()

        add("free_text")
        comment = questions.nth(1)
        comment.get_by_label("Id").fill("comment")
        comment.get_by_label("Required").uncheck()
        comment.get_by_role("button", name="Move question 2 up").click()
        expect(questions.nth(0).get_by_label("Id")).to_have_value("comment")

        # The comment's prompt is still empty: the server names the problem beside it and
        # keeps everything typed so far.
        page.get_by_role("button", name="Create draft study").click()
        expect(page.locator("[data-problems]")).to_contain_text("questions/0/prompt")
        comment = questions.nth(0)
        expect(comment.locator(".field-errors")).to_contain_text("questions/0/prompt")
        expect(page.get_by_label("Study name")).to_have_value("Quality pilot")
        comment.get_by_label("Question", exact=True).fill("Anything else?")
        page.get_by_role("button", name="Create draft study").click()
        page.wait_for_url(re.compile(r"/studies/[0-9a-f-]{36}/$"))
        expect(page.get_by_text("created as a draft with your protocol")).to_be_visible()
    assert errors == []

    study = ReaderStudy.objects.get(name="Quality pilot")
    assert (study.protocol_key, study.protocol_version, study.status) == (
        "report_quality",
        1,
        "draft",
    )
    assert study.protocol["mode"] == "single"
    comment, quality = study.protocol["questions"]
    assert (comment["id"], comment["type"], comment["required"]) == ("comment", "free_text", False)
    assert comment["prompt"] == "Anything else?"
    assert (quality["id"], quality["type"], quality["scope"]) == ("quality", "likert", "per_report")
    assert [(o["value"], o["label"]) for o in quality["options"]] == [
        ("good", "Good"),
        ("fair", "Fair"),
        ("poor", "Poor"),
    ]
