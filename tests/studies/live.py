"""A real ASGI server (daphne) for browser and websocket tests, on the test database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings
from django.contrib.auth.hashers import make_password
from playwright.sync_api import Page, sync_playwright

from tests.conftest import PASSWORD

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def daphne_server() -> Iterator[str]:
    """Serve the app on the current test database; yields the base URL."""
    db = settings.DATABASES["default"]
    port = free_port()
    env = dict(os.environ)
    env.update(
        DATABASE_URL=(
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        ),
        DJANGO_DEBUG="1",
        RADREVIEW_STATIC_FROM_SOURCE="1",
        RADREVIEW_DB_CONN_MAX_AGE="0",
        PYTHONUNBUFFERED="1",
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "reviewapp.asgi:application",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "daphne did not start: " + (process.stderr.read() or b"").decode()[-2000:]
                )
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


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
