"""Browser fixtures for the viewer: a fresh Vite build, headless Chromium on a live server, and
a page logged in as one of the personas, recording console errors and CSP violations."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import REPO_ROOT
from tests.imaging.conftest import (  # noqa: F401 (fixtures shared with the archive's tests)
    archive_dirs,
    imported_ct_study,
    imported_cxr_studies,
)

ARTIFACTS = REPO_ROOT / "test-artifacts"
MANIFEST = REPO_ROOT / "static" / "dist" / "manifest.json"
BUILD_INPUTS = [
    REPO_ROOT / "static" / "src",
    REPO_ROOT / "static" / "css",
    REPO_ROOT / "vite.config.js",
    REPO_ROOT / "package-lock.json",
]

# Counts Cornerstone's IMAGE_RENDERED events: they are dispatched on each viewport element and
# do not bubble, so only a capture-phase listener on the document sees them all. Init scripts
# are injected by the browser driver, not by the page, so the page's CSP does not apply.
COUNT_RENDERS = """
window.__renders = 0;
window.__cspViolations = [];
document.addEventListener('CORNERSTONE_IMAGE_RENDERED', () => { window.__renders += 1; }, true);
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


def _newest_mtime(paths: list[Path]) -> float:
    newest = 0.0
    for path in paths:
        files = path.rglob("*") if path.is_dir() else [path]
        newest = max([newest, *(f.stat().st_mtime for f in files if f.is_file())])
    return newest


@pytest.fixture(scope="session")
def viewer_bundle() -> Path:
    """static/dist built from the current sources (rebuilt when any source is newer)."""
    if not MANIFEST.exists() or MANIFEST.stat().st_mtime < _newest_mtime(BUILD_INPUTS):
        subprocess.run(["npm", "run", "build", "--silent"], cwd=REPO_ROOT, check=True)
    return MANIFEST


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        yield chromium
        chromium.close()


@pytest.fixture
def allow_orm_beside_playwright(monkeypatch: pytest.MonkeyPatch) -> None:
    # Playwright's sync API keeps an event loop running in this thread; Django would otherwise
    # refuse ORM calls from the test body.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@dataclass
class ViewerPage:
    page: Page
    base_url: str
    console_errors: list[str] = field(default_factory=list)

    def open(self, path: str) -> None:
        self.page.goto(f"{self.base_url}{path}")

    def wait_for_render(self, *, stack_loaded: bool = False, timeout: float = 30_000) -> dict:
        self.page.wait_for_function(
            """(needStack) => {
              const el = document.querySelector('[data-viewer]');
              const s = el && el.viewerHandle && el.viewerHandle.state();
              if (s && s.errors.length) return true;
              return window.__renders > 0 && el.dataset.viewerReady === 'true'
                && s.firstRenderAt !== null && (!needStack || s.stackLoadedAt !== null);
            }""",
            arg=stack_loaded,
            timeout=timeout,
        )
        state = self.state()
        assert state["errors"] == [], state["errors"]
        return state

    def state(self) -> dict:
        return self.page.evaluate(
            "() => document.querySelector('[data-viewer]').viewerHandle.state()"
        )

    def canvas_stats(self, tile: int = 0) -> dict:
        """Statistics of what is drawn on a tile's visible canvas (grey levels of channel R)."""
        return self.page.evaluate(
            """(tile) => {
              const canvas = document.querySelectorAll('.viewer-tile')[tile]
                .querySelector('canvas.cornerstone-canvas');
              const { width, height } = canvas;
              const data = canvas.getContext('2d').getImageData(0, 0, width, height).data;
              let sum = 0, sumSq = 0, nonBlack = 0, hash = 0;
              const levels = new Set();
              for (let i = 0; i < data.length; i += 4) {
                const v = data[i];
                sum += v; sumSq += v * v; levels.add(v);
                if (v > 8) nonBlack += 1;
                hash = (hash * 31 + v) | 0;
              }
              const n = data.length / 4;
              const mean = sum / n;
              return { width, height, mean, std: Math.sqrt(sumSq / n - mean * mean),
                       levels: levels.size, nonBlackFraction: nonBlack / n, hash };
            }""",
            tile,
        )

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def csp_violations(self) -> list[str]:
        reported = self.page.evaluate("() => window.__cspViolations")
        logged = [m for m in self.console_errors if "Content Security Policy" in m]
        return [*reported, *logged]


@pytest.fixture
def viewer_page_for(
    viewer_bundle: Path,
    browser: Browser,
    live_server,
    allow_orm_beside_playwright: None,
) -> Iterator[Callable[[AbstractBaseUser], ViewerPage]]:
    """A browser tab logged in as ``user`` on the live server."""
    contexts = []

    def make(user: AbstractBaseUser) -> ViewerPage:
        client = Client()
        client.force_login(user)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_cookies(
            [
                {
                    "name": "sessionid",
                    "value": client.cookies["sessionid"].value,
                    "url": live_server.url,
                }
            ]
        )
        context.add_init_script(COUNT_RENDERS)
        contexts.append(context)
        page = context.new_page()
        viewer = ViewerPage(page=page, base_url=live_server.url)
        page.on(
            "console",
            lambda m: viewer.console_errors.append(m.text) if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: viewer.console_errors.append(f"page error: {e}"))
        return viewer

    yield make
    for context in contexts:
        context.close()

