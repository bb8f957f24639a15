"""Invitations in Chromium at 1366x768: carol invites Jane by the form and Raj from a CSV,
copies Jane's link (no mail server: the page shows it), and Jane, in her own browser, sets a
password and lands on her worklist, seated with her cohort."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect, sync_playwright

from reviewapp.accounts.models import Invitation
from reviewapp.reports.models import Report
from reviewapp.studies import services as study_services
from reviewapp.studies.models import StudyReader
from tests.conftest import PASSWORD
from tests.studies.conftest import make_case_study
from tests.studies.live import app_server, browser_login, password_login_allow

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]

JANES_PASSWORD = "Quiet-Lantern-4821"


def test_carol_invites_two_readers_and_jane_sets_a_password_and_reaches_her_worklist(
    coordinator, settings
) -> None:
    study = study_services.reader_study_create(
        user=coordinator, name="CXR pilot", protocol_key="medgemini_cxr"
    )
    study_services.cases_add(
        reader_study=study,
        imaging_studies=[make_case_study(i) for i in range(2)],
        candidate_reports=Report.objects.filter(kind=Report.Kind.AI),
    )
    password_login_allow(settings, coordinator)

    with app_server() as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        context = browser.new_context(viewport={"width": 1366, "height": 768})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        browser_login(page, base, "carol", PASSWORD)
        page.goto(f"{base}/studies/{study.public_id}/")
        page.get_by_role("link", name="Invite readers").click()
        expect(page).to_have_url(f"{base}/studies/{study.public_id}/invitations/")

        # Jane by the form.
        page.get_by_label("Name", exact=True).fill("Jane Roe")
        page.get_by_label("E-mail", exact=True).fill("jane.roe@example.org")
        page.get_by_label("Cohort (optional, e.g. US)").fill("US")
        page.get_by_role("button", name="Invite", exact=True).click()
        janes_field = page.get_by_label("Link for jane.roe@example.org")
        expect(janes_field).to_be_visible()
        page.locator('[data-invited="jane.roe@example.org"]').get_by_role(
            "button", name="Copy"
        ).click()
        expect(page.locator('[data-copy-state="link-1"]')).to_have_text("Copied.")
        link = page.evaluate("navigator.clipboard.readText()")
        assert link == janes_field.input_value()
        assert link.startswith(f"{base}/accounts/invitation/")

        # Raj from a CSV.
        page.get_by_label("CSV file").set_input_files(
            files=[
                {
                    "name": "readers.csv",
                    "mimeType": "text/csv",
                    "buffer": b"name,email,cohort\r\nRaj Iyer,raj.iyer@example.org,India\r\n",
                }
            ]
        )
        page.get_by_role("button", name="Invite from file").click()
        expect(page.locator("#import-summary")).to_have_text("1 invited, 0 rows not invited.")
        expect(page.get_by_label("Link for raj.iyer@example.org")).to_be_visible()
        listed = page.locator("#invitations")
        expect(
            listed.locator('[data-invitation="jane.roe@example.org"] [data-col="status"]')
        ).to_have_text("Pending")
        expect(
            listed.locator('[data-invitation="raj.iyer@example.org"] [data-col="status"]')
        ).to_have_text("Pending")
        # The page fits the laptop screen: no sideways scrolling.
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366

        # Jane, in her own browser, with the link carol sent her.
        janes_context = browser.new_context(viewport={"width": 1366, "height": 768})
        jane = janes_context.new_page()
        jane.on("pageerror", lambda error: errors.append(str(error)))
        jane.goto(link)
        expect(
            jane.get_by_role("heading", name="Invitation to read for “CXR pilot”")
        ).to_be_visible()
        expect(jane.get_by_label("Username")).to_have_value("jane.roe")
        jane.get_by_label("Password", exact=True).fill(JANES_PASSWORD)
        jane.get_by_label("Password again").fill(JANES_PASSWORD)
        jane.get_by_role("button", name="Set password and join").click()

        expect(jane).to_have_url(f"{base}/studies/reading/")
        expect(jane.locator(".messages")).to_contain_text(
            'You are on the panel of "CXR pilot" (cohort US)'
        )
        expect(jane.locator(".topbar .who")).to_have_text("jane.roe")
        # The link worked once.
        jane.goto(link)
        expect(jane.get_by_role("heading", name="This invitation was already used")).to_be_visible()

        page.goto(f"{base}/studies/{study.public_id}/invitations/")
        expect(
            listed.locator('[data-invitation="jane.roe@example.org"] [data-col="status"]')
        ).to_have_text("Accepted: on the panel (jane.roe)")
        browser.close()

    assert not errors, errors
    seat = StudyReader.objects.get(reader_study=study, reader__username="jane.roe")
    assert seat.cohort == "US"
    assert Invitation.objects.get(email="raj.iyer@example.org").cohort == "India"
