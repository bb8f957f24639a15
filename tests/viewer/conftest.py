"""Browser fixtures for the viewer: a fresh Vite build, headless Chromium on a live server, and
a page logged in as one of the personas, recording console errors and CSP violations."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
import pytest
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client
from playwright.sync_api import Browser, Page
from pydicom.uid import generate_uid

from reviewapp.imaging.ingest.services import instance_quarantine_approve
from reviewapp.imaging.models import Instance, Study
from tests.conftest import REPO_ROOT, serving
from tests.imaging.conftest import (  # noqa: F401 (fixtures shared with the archive's tests)
    CT_FILES,
    CXR_J2K,
    CXR_JPEG,
    import_files,
    imported_ct_study,
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


@pytest.fixture
def cxr_studies(
    db: None,
    archive_dirs: Path,
    coordinator: AbstractBaseUser,
) -> list[Study]:
    """The two chest radiographs (JPEG 2000 first, then JPEG baseline), imported; where the
    import held one back for a burned-in text check, carol releases it as she would."""
    _, outcomes = import_files([CXR_J2K, CXR_JPEG], user=coordinator)
    assert [o.status in ("imported", "quarantined") for o in outcomes] == [True, True], outcomes
    _release_held(outcomes, coordinator)
    return [Study.objects.get(study_instance_uid=o.study_instance_uid) for o in outcomes]


@pytest.fixture(scope="session")
def viewer_bundle() -> Path:
    """static/dist built from the current sources (rebuilt when any source is newer)."""
    if not MANIFEST.exists() or MANIFEST.stat().st_mtime < _newest_mtime(BUILD_INPUTS):
        subprocess.run(["npm", "run", "build", "--silent"], cwd=REPO_ROOT, check=True)
    return MANIFEST


@dataclass
class ViewerPage:
    page: Page
    base_url: str
    console_errors: list[str] = field(default_factory=list)
    failed_responses: list[str] = field(default_factory=list)

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

    def settled(self) -> dict:
        """The first tile's state once the page has drawn three frames in a row without a
        change or a render: what the last input left, however slowly a loaded machine gets
        there (a fixed wait read a pan still being applied as the effect of the next drag)."""
        self.page.evaluate(
            """() => new Promise((resolve) => {
              const el = document.querySelector('[data-viewer]');
              const now = () => JSON.stringify(el.viewerHandle.state().tiles[0]);
              let last = now(), renders = window.__renders, quiet = 0;
              const tick = () => {
                const state = now();
                if (state === last && window.__renders === renders) quiet += 1;
                else { quiet = 0; last = state; renders = window.__renders; }
                if (quiet >= 3) resolve(); else requestAnimationFrame(tick);
              };
              requestAnimationFrame(tick);
            })"""
        )
        return self.state()["tiles"][0]

    def canvas_stats(self, tile: int = 0, *, centre: float = 1.0) -> dict:
        """Statistics of what is drawn on a tile's visible canvas (grey levels of channel R),
        over the central ``centre`` fraction of its width and height."""
        return self.page.evaluate(
            """([tile, centre]) => {
              const canvas = document.querySelectorAll('.viewer-tile')[tile]
                .querySelector('canvas.cornerstone-canvas');
              const w = Math.max(1, Math.round(canvas.width * centre));
              const h = Math.max(1, Math.round(canvas.height * centre));
              const x = Math.round((canvas.width - w) / 2), y = Math.round((canvas.height - h) / 2);
              const data = canvas.getContext('2d').getImageData(x, y, w, h).data;
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
              return { width: canvas.width, height: canvas.height, mean,
                       std: Math.sqrt(sumSq / n - mean * mean),
                       levels: levels.size, nonBlackFraction: nonBlack / n, hash };
            }""",
            [tile, centre],
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


@pytest.fixture(scope="session")
def served_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data folder of the session's application server (stored DICOM files among them)."""
    return tmp_path_factory.mktemp("served") / "data"


@pytest.fixture
def archive_dirs(settings, served_data_dir: Path) -> Path:
    """Store this test's DICOM where the application server reads it: the server is another
    process, with the data folder it was started with."""
    served_data_dir.mkdir(exist_ok=True)
    settings.DATA_DIR = served_data_dir
    settings.MEDIA_ROOT = served_data_dir / "media"
    return served_data_dir


@pytest.fixture(scope="session")
def app_server(
    viewer_bundle: Path,
    django_db_setup: None,
    tmp_path_factory: pytest.TempPathFactory,
    served_data_dir: Path,
) -> Iterator[str]:
    """The application served as `make serve` serves it (tests.conftest.serving), on the test
    database, for the whole session: static files through WhiteNoise, frames through the same
    layers as in production."""
    with serving(
        tmp_path_factory.mktemp("app-server"), RADREVIEW_DATA_DIR=str(served_data_dir)
    ) as url:
        yield url


@pytest.fixture
def viewer_page_for(
    transactional_db: None,
    browser: Browser,
    app_server: str,
) -> Iterator[Callable[[AbstractBaseUser], ViewerPage]]:
    """A browser tab logged in as ``user`` on the application server (rows the test creates
    are committed, so the server's threads see them)."""
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
                    "url": app_server,
                }
            ]
        )
        context.add_init_script(COUNT_RENDERS)
        contexts.append(context)
        page = context.new_page()
        viewer = ViewerPage(page=page, base_url=app_server)
        page.on(
            "console",
            lambda m: viewer.console_errors.append(m.text) if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: viewer.console_errors.append(f"page error: {e}"))
        page.on(
            "response",
            lambda r: (
                viewer.failed_responses.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico")
                else None
            ),
        )
        return viewer

    yield make
    for context in contexts:
        context.close()


def _release_held(outcomes, user: AbstractBaseUser) -> None:
    held = Instance.objects.filter(
        sop_instance_uid__in=[o.sop_instance_uid for o in outcomes],
        status=Instance.Status.QUARANTINED,
    )
    for instance in held:
        instance_quarantine_approve(instance=instance, reviewed_by=user)


def _derived_copy(source: Path, target: Path, *, series: str, number: int, **values) -> Path:
    """A copy of a sample file as another instance of the same study, in series ``series``."""
    ds = pydicom.dcmread(source)
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[str(source), series, str(number)])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[series])
    ds.SeriesNumber = number
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    ds.save_as(target, enforce_file_format=True)
    return target


@pytest.fixture
def cxr_lateral_first_study(
    db: None,
    archive_dirs: Path,
    coordinator: AbstractBaseUser,
    tmp_path: Path,
) -> Study:
    """One radiograph study with a lateral view in series 1 and a PA view in series 2."""
    lateral = _derived_copy(
        CXR_JPEG, tmp_path / "lateral.dcm", series="lateral", number=1, ViewPosition="LL"
    )
    frontal = _derived_copy(
        CXR_JPEG, tmp_path / "pa.dcm", series="frontal", number=2, ViewPosition="PA"
    )
    _, outcomes = import_files([lateral, frontal], user=coordinator)
    _release_held(outcomes, coordinator)
    (study_uid,) = {o.study_instance_uid for o in outcomes}
    return Study.objects.get(study_instance_uid=study_uid)


@pytest.fixture
def ct_two_series_study(
    db: None,
    archive_dirs: Path,
    coordinator: AbstractBaseUser,
    tmp_path: Path,
) -> Study:
    """The sample CT (30 slices, series 3) plus a 5-slice series 7 in the same study."""
    extra = [
        _derived_copy(path, tmp_path / f"extra-{n}.dcm", series="extra", number=7)
        for n, path in enumerate(CT_FILES[:5])
    ]
    _, outcomes = import_files([*CT_FILES, *extra], user=coordinator)
    assert {o.status for o in outcomes} == {"imported"}, outcomes
    (study_uid,) = {o.study_instance_uid for o in outcomes}
    return Study.objects.get(study_instance_uid=study_uid)


def _transcoded(source: Path, target: Path, syntax: str) -> Path:
    """A copy of an uncompressed sample as a new instance of its series, its pixel data
    re-encoded losslessly in ``syntax`` by pydicom (RLE: its own encoder; JPEG-LS: pyjpegls,
    a dev dependency)."""
    ds = pydicom.dcmread(source)
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[str(source), syntax])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.compress(syntax)
    ds.save_as(target, enforce_file_format=True)
    stored = pydicom.dcmread(target, stop_before_pixels=True).file_meta.TransferSyntaxUID
    assert stored == syntax, stored
    return target


@pytest.fixture
def ct_slice_as(
    db: None,
    archive_dirs: Path,
    coordinator: AbstractBaseUser,
    tmp_path: Path,
) -> Callable[[str], Study]:
    """One slice of the sample CT (12 bits stored, rescale intercept -1024), transcoded to a
    transfer syntax and imported through the import service like any upload."""

    def make(syntax: str) -> Study:
        path = _transcoded(CT_FILES[len(CT_FILES) // 2], tmp_path / "slice.dcm", syntax)
        _, outcomes = import_files([path], user=coordinator)
        assert [o.status for o in outcomes] == ["imported"], outcomes
        instance = Instance.objects.get(sop_instance_uid=outcomes[0].sop_instance_uid)
        assert instance.transfer_syntax_uid == syntax  # stored as sent, not transcoded
        return instance.series.study

    return make
