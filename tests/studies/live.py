"""The application served as `make serve` serves it, for browser and websocket tests."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.contrib.auth.hashers import make_password
from playwright.sync_api import Page, sync_playwright

from tests.conftest import PASSWORD, serving


@contextmanager
def app_server() -> Iterator[str]:
    """Serve the app on the current test database (tests.conftest.serving); yields the base
    URL. Rows the server must see have to be committed (a transactional test)."""
    with tempfile.TemporaryDirectory(prefix="app-server-") as folder, serving(Path(folder)) as url:
        yield url


def browser_login(page: Any, base: str, username: str, password: str) -> None:
    """Log in through the login form with the keyboard, as a person would."""
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").focus()  # autofocus may land after the first keystroke
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_load_state()
    assert "/accounts/login/" not in page.url, page.content()[:3000]


def password_login_allow(settings: Any, *users: Any) -> None:
    """Give ``users`` the test PASSWORD, hashed with a hasher the served app accepts, so that a
    browser can log them in through the form."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    for user in users:
        user.password = make_password(PASSWORD)
        user.save(update_fields=["password"])


@contextmanager
def chromium_page() -> Iterator[tuple[Page, list[str]]]:
    """A page in headless Chromium, and the list its uncaught script errors are collected in."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            yield page, errors
        finally:
            browser.close()
