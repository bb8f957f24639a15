"""OHIF v3, as its npm package ships it, against the live archive from another origin.

OHIF's built ``dist/`` (the ``@ohif/app`` package) is served by a plain static server on its
own port with one change: ``app-config.js`` names our DICOMweb root in place of the demo
server, keeping every other setting of the shipped default data source. The archive is served
as `make serve` serves it, with that origin allowed for CORS. OHIF authenticates the way its
documentation describes for a token: ``?token=`` on a viewer URL, sent as ``Bearer``.

The package is fetched once with ``npm pack`` into ``.cache/`` (not in the repository) and
reused by every later run.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from django.contrib.auth.models import AbstractUser
from PIL import Image
from playwright.sync_api import Browser, Locator, Page, expect
from rest_framework.authtoken.models import Token

from reviewapp.imaging.ingest.services import instance_quarantine_approve
from reviewapp.imaging.models import Instance, Study
from tests.conftest import serving
from tests.imaging.conftest import CT_FILES, CXR_JPEG

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

OHIF_VERSION = "3.13.2"
REPO_ROOT = Path(__file__).resolve().parents[2]
OHIF_CACHE = REPO_ROOT / ".cache" / f"ohif-app-{OHIF_VERSION}"
# OHIF draws with WebGL and decodes in workers: a cold start on a loaded machine is slow.
DRAWN_TIMEOUT_MS = 120_000


@pytest.fixture(scope="session")
def ohif_dist() -> Path:
    """OHIF's built application, from the npm package (fetched once, then cached)."""
    dist = OHIF_CACHE / "dist"
    if (dist / "index.html").exists():
        return dist
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(
            ["npm", "pack", f"@ohif/app@{OHIF_VERSION}", "--pack-destination", scratch],
            check=True,
            timeout=600,
            capture_output=True,
        )
        (archive,) = Path(scratch).glob("*.tgz")
        unpacked = Path(scratch) / "unpacked"
        with tarfile.open(archive) as tar:
            tar.extractall(unpacked, filter="data")
        OHIF_CACHE.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(OHIF_CACHE, ignore_errors=True)
        shutil.move(unpacked / "package", OHIF_CACHE)
    return dist


def _app_config(dicomweb_root: str) -> str:
    """The shipped default data source, pointed at our archive instead of the demo server."""
    return f"""window.config = {{
  routerBasename: null,
  extensions: [],
  modes: [],
  customizationService: {{}},
  showStudyList: true,
  maxNumberOfWebWorkers: 3,
  showWarningMessageForCrossOrigin: true,
  showCPUFallbackMessage: true,
  showLoadingIndicator: true,
  strictZSpacingForVolumeViewport: true,
  defaultDataSourceName: 'radreview',
  dataSources: [
    {{
      namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
      sourceName: 'radreview',
      configuration: {{
        friendlyName: 'radreview',
        name: 'radreview',
        wadoUriRoot: '{dicomweb_root}/wado',
        qidoRoot: '{dicomweb_root}',
        wadoRoot: '{dicomweb_root}',
        qidoSupportsIncludeField: false,
        imageRendering: 'wadors',
        thumbnailRendering: 'thumbnail',
        thumbnailRequestStrategy: 'fetch',
        enableStudyLazyLoad: true,
        supportsFuzzyMatching: false,
        supportsWildcard: true,
        staticWado: true,
        singlepart: 'bulkdata,video',
        bulkDataURI: {{ enabled: true, relativeResolution: 'studies' }},
        omitQuotationForMultipartRequest: true,
      }},
    }},
  ],
}};
"""


class _OhifHandler(SimpleHTTPRequestHandler):
    """OHIF's files; ``/app-config.js`` from the test; any other path is the single-page app."""

    config = b""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/app-config.js":
            self.send_response(200)
            self.send_header("Content-Type", "text/javascript")
            self.send_header("Content-Length", str(len(self.config)))
            self.end_headers()
            self.wfile.write(self.config)
            return
        if not (Path(self.directory) / path.lstrip("/")).is_file():
            self.path = "/index.html"
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class OhifSite:
    url: str
    handler: type[_OhifHandler]

    def point_at(self, dicomweb_root: str) -> None:
        self.handler.config = _app_config(dicomweb_root).encode()


@pytest.fixture
def ohif(ohif_dist: Path) -> Iterator[OhifSite]:
    """OHIF served from its own origin (another port on loopback)."""
    handler = type("Handler", (_OhifHandler,), {"config": b""})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(ohif_dist)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield OhifSite(url=f"http://127.0.0.1:{server.server_address[1]}", handler=handler)
    finally:
        server.shutdown()
        server.server_close()


def _not_black(locator: Locator) -> bool:
    """Whether the element's pixels on screen hold an image (not a blank or black box)."""
    pixels = np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("L"))
    return bool(pixels.std() > 8 and (pixels > 40).mean() > 0.05)


def _wait_for_image(page: Page, locator: Locator) -> None:
    expect(locator).to_be_visible(timeout=DRAWN_TIMEOUT_MS)
    deadline_checks = DRAWN_TIMEOUT_MS // 500
    for _ in range(deadline_checks):
        if _not_black(locator):
            return
        page.wait_for_timeout(500)
    raise AssertionError("the image never appeared")


def test_ohif_lists_and_draws_our_studies_from_another_origin(
    tmp_path: Path,
    coordinator: AbstractUser,
    ohif: OhifSite,
    browser: Browser,
) -> None:
    ohif_url = ohif.url
    token = Token.objects.create(user=coordinator).key
    with serving(tmp_path, RADREVIEW_DICOMWEB_CORS_ORIGINS=ohif_url) as archive_url:
        client = DICOMwebClient(
            f"{archive_url}/dicomweb", headers={"Authorization": f"Token {token}"}
        )
        client.store_instances([pydicom.dcmread(p) for p in [*CT_FILES, CXR_JPEG]])
        for held in Instance.objects.filter(status=Instance.Status.QUARANTINED):
            instance_quarantine_approve(instance=held, reviewed_by=coordinator)
        ct = Study.objects.get(modalities__contains="CT")
        radiograph = Study.objects.exclude(pk=ct.pk).get()
        ohif.point_at(f"{archive_url}/dicomweb")

        context = browser.new_context(viewport={"width": 1366, "height": 768})
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            for study in (ct, radiograph):
                page.goto(
                    f"{ohif_url}/viewer?StudyInstanceUIDs={study.study_instance_uid}&token={token}"
                )
                viewport = page.locator("[data-viewport-uid] canvas").first
                _wait_for_image(page, viewport)
                thumbnail = page.locator('[data-cy="study-browser-thumbnail"] img').first
                _wait_for_image(page, thumbnail)

            # Back to the study list inside the app: the token set by the viewer URL stays.
            page.locator('[data-cy="return-to-work-list"]').click()
            for study in (ct, radiograph):
                row = page.get_by_text(study.patient_pseudonym, exact=True)
                expect(row).to_be_visible(timeout=DRAWN_TIMEOUT_MS)
            expect(page.get_by_text("1-2 of 2")).to_be_visible()
            page.screenshot(path=str(tmp_path / "ohif-study-list.png"))
        finally:
            context.close()
    assert not errors, errors
