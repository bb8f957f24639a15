"""The API reference pages render in real Chromium under the site's CSP, from our own assets."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.studies.live import app_server, browser_login, chromium_page, password_login_allow

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]

WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


def test_swagger_and_redoc_render_the_schema_without_csp_violations_or_outside_requests(
    analyst, settings
) -> None:
    password_login_allow(settings, analyst)

    with app_server() as base, chromium_page() as (page, errors):
        page.add_init_script(WATCH_CSP)
        outside: list[str] = []
        page.on(
            "requestfinished",  # a request the policy blocked never leaves
            lambda r: (
                outside.append(r.url) if not r.url.startswith((base, "data:", "blob:")) else None
            ),
        )
        browser_login(page, base, "dave", PASSWORD)

        page.goto(f"{base}/api/docs/")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("radreview API")
        expect(page.locator(".opblock").first).to_be_visible()
        assert page.evaluate("() => window.__cspViolations") == []

        page.goto(f"{base}/api/redoc/")
        expect(page.get_by_role("heading", name="radreview API", level=1)).to_be_visible(
            timeout=20_000
        )
        expect(page.get_by_text("Something went wrong")).to_have_count(0)
        # ReDoc always tries its vendor's logo from a CDN (and hides it when it fails to load):
        # the policy stopping that request is the policy working, so it is the one allowed.
        assert page.evaluate("() => window.__cspViolations") in (
            [],
            ["img-src https://cdn.redoc.ly/redoc/logo-mini.svg"],
        )

        assert errors == []
        assert outside == []


def test_the_api_docs_widen_the_policy_only_on_their_own_routes(client, analyst) -> None:
    client.force_login(analyst)

    swagger = client.get("/api/docs/")["Content-Security-Policy"]
    redoc = client.get("/api/redoc/")["Content-Security-Policy"]
    elsewhere = client.get("/analysis/")["Content-Security-Policy"]

    assert "'nonce-" in swagger
    assert "'unsafe-inline'" not in swagger
    assert "style-src 'self' 'unsafe-inline'" in redoc
    assert "script-src 'self' 'wasm" in redoc
    assert "'nonce-" not in elsewhere
    assert "'unsafe-inline'" not in elsewhere
