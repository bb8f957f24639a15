"""Personas and shared fixtures.

alice and bob read, carol coordinates, dave analyses, eve has an account and no role, and
root administers. Every permission test uses these names so a failure reads like a story.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.contrib.auth.models import AbstractUser
from django.db import connection
from playwright.sync_api import Browser, sync_playwright
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from reviewapp.accounts.services import user_create
from reviewapp.core.roles import Role

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES = REPO_ROOT / "sampledata"
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def make_user(db: None) -> Callable[..., AbstractUser]:
    def make(username: str, *roles: Role) -> AbstractUser:
        return user_create(
            username=username, password=PASSWORD, roles=list(roles), check_password=False
        )

    return make


@pytest.fixture
def reader(make_user: Callable[..., AbstractUser]) -> AbstractUser:
    return make_user("alice", Role.READER)


@pytest.fixture
def second_reader(make_user: Callable[..., AbstractUser]) -> AbstractUser:
    return make_user("bob", Role.READER)


@pytest.fixture
def coordinator(make_user: Callable[..., AbstractUser]) -> AbstractUser:
    return make_user("carol", Role.COORDINATOR)


@pytest.fixture
def analyst(make_user: Callable[..., AbstractUser]) -> AbstractUser:
    return make_user("dave", Role.ANALYST)


@pytest.fixture
def outsider(make_user: Callable[..., AbstractUser]) -> AbstractUser:
    return make_user("eve")


@pytest.fixture
def admin_user(make_user: Callable[..., AbstractUser]) -> AbstractUser:
    return make_user("root", Role.ADMIN)


@pytest.fixture
def api_client_for() -> Callable[[AbstractUser | None], APIClient]:
    """An API client authenticated with the user's token (or anonymous for None)."""

    def make(user: AbstractUser | None) -> APIClient:
        client = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make


@pytest.fixture
def archive_dirs(settings, tmp_path: Path) -> Path:
    """Keep this test's stored DICOM, staging and scratch files in its own folder."""
    data = tmp_path / "data"
    data.mkdir()
    settings.DATA_DIR = data
    settings.MEDIA_ROOT = data / "media"
    return data


@contextmanager
def serving(tmp_path: Path, **env: str) -> Iterator[str]:
    """The application served as `make serve` serves it (``runner web``: uvicorn, the same
    command line) on this test session's database; yields the base URL. Rows a test wants
    the server to see must be committed (a transactional test)."""
    from bench.common import free_port, running

    base_url, _, _ = os.environ["DATABASE_URL"].rpartition("/")
    port = free_port()
    server_env = {
        **os.environ,
        "DATABASE_URL": f"{base_url}/{connection.settings_dict['NAME']}",
        "RADREVIEW_DATA_DIR": str(tmp_path / "server"),
        "DJANGO_DEBUG": "0",
        "RADREVIEW_HTTPS": "0",
        # One process: the tests share a small machine, and one is what they need.
        "RADREVIEW_WEB_WORKERS": "1",
        "RADREVIEW_DB_POOL_MAX": "4",
        **env,
    }
    server_env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set by Playwright's fixture, not ours
    command = [
        sys.executable, "-m", "reviewapp.runner", "web", "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    # Generous: on a saturated machine importing the app alone can take most of a minute.
    with running(
        command, ready_url=f"{url}/healthz", env=server_env, log_path=log_path, timeout=180
    ):
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Playwright's sync API keeps an event loop running in this thread for as long as the
    # browser lives; Django would otherwise refuse every ORM call made beside it. Module
    # scope: a browser left running would break every later test that starts Playwright.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium")
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
