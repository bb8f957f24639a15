"""The progress page in Chromium at 1366x768: the table and the reminders list show, Copy puts
the list on the clipboard, and a submit elsewhere updates both live."""

from __future__ import annotations

import re
import threading
import uuid

import pytest
from django.db import connections
from playwright.sync_api import expect, sync_playwright

from reviewapp.studies import services
from reviewapp.studies.models import Assignment
from tests.conftest import PASSWORD
from tests.studies.conftest import build_study, make_case_study
from tests.studies.live import app_server, browser_login, password_login_allow

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]


def test_the_coordinator_sees_each_reader_copies_the_reminders_and_sees_a_submit_arrive(
    coordinator, reader, second_reader, settings
) -> None:
    reader.email = "alice@example.org"
    reader.save(update_fields=["email"])
    study = build_study(
        coordinator=coordinator,
        readers=[reader, second_reader],
        imaging=[make_case_study(i) for i in range(2)],
    )
    first = Assignment.objects.filter(reader_study=study, reader=reader).order_by("position")[0]
    total = Assignment.objects.filter(reader_study=study, reader=reader).count()
    assert total > 1  # alice still has reads left after one submit
    password_login_allow(settings, coordinator)

    def submit() -> None:
        try:
            services.rating_submit(
                assignment=first,
                reader=reader,
                answers={"comparison": "c"},
                idempotency_key=uuid.uuid4(),
                active_seconds=150,
            )
        finally:
            connections.close_all()

    with app_server() as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        context = browser.new_context(viewport={"width": 1366, "height": 768})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        browser_login(page, base, "carol", PASSWORD)
        page.goto(f"{base}/studies/{study.public_id}/progress/")

        table = page.get_by_role("table", name="Progress per reader")
        expect(table).to_be_visible()
        alice = table.locator('tr[data-reader="alice"]')
        expect(alice.locator('[data-col="status"]')).to_have_text("not started")
        expect(alice.locator('[data-col="last_activity"]')).to_have_text("none yet")
        reminders = page.get_by_role("textbox", name="Reminders")
        expect(reminders).to_be_visible()
        expect(reminders).to_have_value(
            f"alice <alice@example.org>: {total} of {total} reads left; last activity none yet\n"
            f"bob <{second_reader.email or 'no e-mail'}>: {total} of {total} reads left; "
            "last activity none yet"
        )
        # The whole table fits the laptop screen: no sideways scrolling.
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366

        expect(page.locator("[data-live-state]")).to_have_text("live")
        worker = threading.Thread(target=submit)
        worker.start()
        worker.join()
        expect(alice.locator('[data-col="status"]')).to_have_text("reading")
        expect(alice.locator('[data-col="median"]')).to_have_text("2 min")
        expect(alice.locator('[data-col="submitted"]')).to_have_text(f"1 / {total}")
        expect(reminders).to_have_value(
            re.compile(
                rf"^alice <alice@example.org>: {total - 1} of {total} reads left; "
                r"last activity \d{4}-\d\d-\d\d \d\d:\d\d UTC\n"
            )
        )

        page.get_by_role("button", name="Copy").click()
        expect(page.locator("[data-copy-state]")).to_have_text("Copied.")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == reminders.input_value()
        browser.close()
    assert not errors, errors
