import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


def _import_settings(**env: str) -> subprocess.CompletedProcess[str]:
    return python_run("import reviewapp.settings", **env)


def python_run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter, with none of this process's Django or radreview
    settings in its environment beyond ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "RADREVIEW_"))}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=clean,
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_misspelt_boolean_stops_the_process() -> None:
    result = _import_settings(DJANGO_DEBUG="flase")
    assert result.returncode != 0
    assert "DJANGO_DEBUG='flase' is not a boolean" in result.stderr


def test_production_refuses_to_start_without_a_secret_key() -> None:
    result = _import_settings(DJANGO_DEBUG="0")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr


def test_only_postgresql_is_accepted() -> None:
    result = _import_settings(DJANGO_DEBUG="1", DATABASE_URL="sqlite:///x.db")
    assert result.returncode != 0
    assert "must point at PostgreSQL" in result.stderr


@pytest.mark.slow
def test_deployment_checks_pass_with_production_settings() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "reviewapp.runner", "check-deploy"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
