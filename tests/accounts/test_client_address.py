"""The login lockout is keyed on the client's real address, on the live server.

Eve guesses alice's password from one machine and sends a different X-Forwarded-For with
every guess; the address she names counts only when her connection comes from a proxy the
installation trusts (RADREVIEW_TRUSTED_PROXIES).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.conftest import PASSWORD, serving

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _login(session: requests.Session, base: str, password: str, forwarded_for: str) -> int:
    if "csrftoken" not in session.cookies:
        session.get(f"{base}/accounts/login/", timeout=10)
    response = session.post(
        f"{base}/accounts/login/",
        data={
            "username": "alice",
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"X-Forwarded-For": forwarded_for, "Referer": f"{base}/accounts/login/"},
        allow_redirects=False,
        timeout=10,
    )
    return response.status_code


def test_a_client_cannot_pick_its_own_lockout_key(tmp_path: Path, reader) -> None:
    with serving(tmp_path) as base, requests.Session() as eve:
        for n in range(5):
            _login(eve, base, "wrong", f"10.0.0.{n}")
        assert _login(eve, base, PASSWORD, "10.0.0.99") == 429


def test_a_trusted_proxy_passes_on_the_real_address(tmp_path: Path, reader) -> None:
    with serving(tmp_path, RADREVIEW_TRUSTED_PROXIES="127.0.0.1") as base:
        with requests.Session() as eve:
            for _ in range(5):
                _login(eve, base, "wrong", "10.0.0.9")
            assert _login(eve, base, PASSWORD, "10.0.0.9") == 429
        with requests.Session() as alice:
            # The same radiologist at another workstation is not locked out by eve's guesses.
            assert _login(alice, base, PASSWORD, "10.0.0.10") == 302
