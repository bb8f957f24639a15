"""Viewer load time, from opening the study page to the first image drawn and to the whole CT
stack loaded, in headless Chromium against the real server (daphne, WhiteNoise, DICOMweb).

Cases: the JPEG 2000 chest radiograph (1955 x 1841, 15 bit) and the sample CT replicated to 300
slices (512 x 512, uncompressed). Targets: first image under 1 s; 300-slice stack loaded under
3 s. To say what bounds the stack time, the same 300 frames are also fetched without a browser
(6 parallel connections, as Chromium uses per host) and Cornerstone's own decode times are read.

Runs in a throwaway database (<DATABASE_URL name>_viewer_bench) and a temporary data folder.
"""

from __future__ import annotations

import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sampledata"
CT_SLICES = 300
RUNS = 5
TARGET_FIRST_IMAGE_S = 1.0
TARGET_STACK_S = 3.0

# The server and this process must agree on secrets (sessions are signed) and settings.
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "reviewapp.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
        "RADREVIEW_DEID_SECRET": secrets.token_urlsafe(32),
        "RADREVIEW_HTTPS": "0",
        "RADREVIEW_STATIC_FROM_SOURCE": "1",
        "RADREVIEW_LOG_LEVEL": "WARNING",
    }
)
DATA_DIR = Path(tempfile.mkdtemp(prefix="viewer-bench-"))
os.environ["RADREVIEW_DATA_DIR"] = str(DATA_DIR / "data")
sys.path.insert(0, str(REPO))
SERVER_LOG = DATA_DIR / "server.log"


def bundle_build() -> None:
    built = subprocess.run(
        ["npm", "run", "build", "--silent"], cwd=REPO, capture_output=True, text=True, check=False
    )
    if built.returncode != 0:
        raise SystemExit(f"npm run build failed:\n{built.stdout}\n{built.stderr}")


def ct_replicate(target: Path, count: int) -> list[Path]:
    """Write ``count`` slices cycling through the sample CT, as one contiguous series."""
    import pydicom
    from pydicom.uid import generate_uid

    sources = sorted((SAMPLES / "ct" / "lung_pet_ct_dx_A0002_thorax").glob("*.dcm"))
    datasets = [pydicom.dcmread(p) for p in sources]
    spacing = float(datasets[0].get("SliceThickness") or 1.0)
    top = max(float(ds.ImagePositionPatient[2]) for ds in datasets)
    target.mkdir(parents=True)
    paths = []
    for index in range(count):
        ds = datasets[index % len(datasets)].copy()
        ds.SOPInstanceUID = generate_uid(entropy_srcs=["viewer-bench", str(index)])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = index + 1
        x, y, _ = ds.ImagePositionPatient
        ds.ImagePositionPatient = [x, y, top - index * spacing]
        ds.SliceLocation = top - index * spacing
        path = target / f"slice-{index:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def archive_fill(user) -> dict[str, object]:
    from reviewapp.imaging.models import Instance, Study
    from reviewapp.imaging.services import (
        import_batch_create,
        import_batch_run,
        instance_quarantine_approve,
    )
    from reviewapp.imaging.types import IncomingFile

    def import_paths(paths: list[Path]) -> Study:
        batch = import_batch_create(source="command", created_by=user, files_total=len(paths))
        outcomes = import_batch_run(
            batch=batch, files=[IncomingFile(name=p.name, path=p) for p in paths]
        )
        bad = [o for o in outcomes if o.status not in ("imported", "quarantined")]
        if bad:
            raise SystemExit(f"import failed: {bad[:3]}")
        for instance in Instance.objects.filter(status=Instance.Status.QUARANTINED):
            instance_quarantine_approve(instance=instance, reviewed_by=user)
        return Study.objects.get(study_instance_uid=outcomes[0].study_instance_uid)

    started = time.perf_counter()
    cxr = import_paths([SAMPLES / "cxr" / "nema_wg04_RG1_chest_PA_J2KI.dcm"])
    ct = import_paths(ct_replicate(DATA_DIR / "ct300", CT_SLICES))
    print(
        f"imported 1 radiograph and {CT_SLICES} CT slices in {time.perf_counter() - started:.1f} s"
    )
    return {"cxr": cxr, "ct": ct}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_start(database_url: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url}
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
        stderr=SERVER_LOG.open("w"),
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    return process, base
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise SystemExit("the server did not start")


def frames_fetch(base: str, cookie: str, study, parallel: int = 6) -> tuple[float, int]:
    """Fetch every frame of the study without a browser; return (seconds, bytes)."""
    from reviewapp.imaging.models import Instance

    urls = [
        f"{base}/dicomweb/studies/{study.study_instance_uid}/series/"
        f"{i.series.series_instance_uid}/instances/{i.sop_instance_uid}/frames/1"
        for i in Instance.objects.filter(series__study=study).select_related("series")
    ]
    headers = {
        "Cookie": cookie,
        "Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*',
    }

    def get(url: str) -> int:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as response:
            return len(response.read())

    started = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        total = sum(pool.map(get, urls))
    return time.perf_counter() - started, total


WAIT_FOR_VIEWER = """(needStack) => {
  const el = document.querySelector('[data-viewer]');
  const s = el && el.viewerHandle && el.viewerHandle.state();
  if (!s) return false;
  if (s.errors.length) return true;
  return s.firstRenderAt !== null && (!needStack || s.stackLoadedAt !== null);
}"""

READ_FIGURES = """() => {
  const el = document.querySelector('[data-viewer]');
  const s = el.viewerHandle.state();
  const bundle = performance.getEntriesByType('resource')
    .filter((e) => /\\/dist\\/assets\\/.*\\.js$/.test(e.name))
    .sort((a, b) => b.transferSize - a.transferSize)[0];
  const metadata = performance.getEntriesByType('resource')
    .filter((e) => e.name.endsWith('/metadata'));
  const nav = performance.getEntriesByType('navigation')[0];
  return {
    errors: s.errors,
    firstRender: s.firstRenderAt,
    marks: {
      ...s.marks,
      ...Object.fromEntries(performance.getEntriesByType('mark')
        .filter((e) => e.name.startsWith('viewer:')).map((e) => [e.name.slice(7), e.startTime])),
    },
    stackLoaded: s.stackLoadedAt,
    stackSize: s.stackSize,
    html: nav ? nav.responseEnd : null,
    bundleEnd: bundle ? bundle.responseEnd : null,
    bundleBytes: bundle ? bundle.transferSize : null,
    metadataEnd: metadata.length ? Math.max(...metadata.map((e) => e.responseEnd)) : null,
    timings: el.viewerHandle.loadTimings(),
  };
}"""


def page_measure(browser, base: str, cookie: str, path: str, *, stack: bool) -> list[dict]:
    """RUNS cold loads (a fresh browser context each: nothing cached), then one warm reload."""
    results = []
    name, value = cookie.split("=", 1)
    for run in range(RUNS):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_cookies([{"name": name, "value": value, "url": base}])
        page = context.new_page()
        page.goto(f"{base}{path}")
        loads = [False, True] if run == RUNS - 1 else [False]
        for warm in loads:
            if warm:
                page.reload()
            # The figures are the page's own clock; polling every animation frame would
            # only take main-thread time from the load being measured.
            page.wait_for_function(WAIT_FOR_VIEWER, arg=stack, polling=100, timeout=60_000)
            figures = page.evaluate(READ_FIGURES)
            if figures["errors"]:
                raise SystemExit(f"viewer error: {figures['errors']}")
            results.append({**figures, "warm": warm})
        context.close()
    return results


def summarise(label: str, results: list[dict], *, stack: bool) -> dict[str, float]:
    cold = [r for r in results if not r["warm"]]
    warm = [r for r in results if r["warm"]]

    def median(key: str, rows: list[dict]) -> float:
        values = [r[key] for r in rows if r[key] is not None]
        return statistics.median(values) / 1000 if values else float("nan")

    first = median("firstRender", cold)
    line = (
        f"{label}: first image {first:.2f} s (median of {len(cold)} cold loads; "
        f"HTML {median('html', cold):.2f} s, bundle done {median('bundleEnd', cold):.2f} s "
        f"[{(cold[0]['bundleBytes'] or 0) / 1e6:.1f} MB], metadata done "
        f"{median('metadataEnd', cold):.2f} s); warm reload {median('firstRender', warm):.2f} s"
    )
    print(line)
    phases = ["start", "engine-evaluated", "cornerstoneReady", "metadataFetched", "setStack"]
    marks = {
        phase: statistics.median(r["marks"].get(phase, float("nan")) for r in cold) / 1000
        for phase in phases
    }
    print(
        f"{label}: viewer module running {marks['start']:.2f} s, Cornerstone evaluated "
        f"{marks['engine-evaluated']:.2f} s, initialised "
        f"{marks['cornerstoneReady']:.2f} s, QIDO + metadata fetched "
        f"{marks['metadataFetched']:.2f} s, "
        f"first image requested {marks['setStack']:.2f} s, drawn {first:.2f} s"
    )
    summary = {"first": first}
    if stack:
        loaded = median("stackLoaded", cold)
        decode_ms = statistics.median(r["timings"]["decodeMs"] for r in cold)
        print(
            f"{label}: whole stack ({cold[0]['stackSize']} images) loaded {loaded:.2f} s after "
            f"opening (median); {loaded - first:.2f} s after the first image; Cornerstone decode "
            f"time summed over the stack {decode_ms / 1000:.2f} s"
        )
        summary.update(stack=loaded, stack_after_first=loaded - first, decode=decode_ms / 1000)
    return summary


def database_drop(name: str) -> None:
    """Drop the bench database, closing whatever server connections still linger in it."""
    from django.db import connection

    connection.close()
    with connection._nodb_cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    import django

    bundle_build()
    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from reviewapp.accounts.services import user_create
    from reviewapp.core.roles import Role

    db = settings.DATABASES["default"]
    original_name = db["NAME"]
    db.setdefault("TEST", {})["NAME"] = f"{original_name}_viewer_bench"
    bench_db = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/radreview")
    bench_url = urlunsplit(urlsplit(url)._replace(path=f"/{bench_db}"))
    server = None
    try:
        user = user_create(
            username="bench-coordinator",
            password=secrets.token_urlsafe(16),
            roles=[Role.COORDINATOR],
            check_password=False,
        )
        studies = archive_fill(user)
        client = Client()
        client.force_login(user)
        cookie = (
            f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        )
        server, base = server_start(bench_url)

        from playwright.sync_api import sync_playwright

        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
            frames_fetch(base, cookie, studies["ct"])  # warm the server's file cache once
            server_s, server_bytes = frames_fetch(base, cookie, studies["ct"])
            cxr = page_measure(
                browser, base, cookie, f"/viewer/studies/{studies['cxr'].public_id}/", stack=False
            )
            ct = page_measure(
                browser, base, cookie, f"/viewer/studies/{studies['ct'].public_id}/", stack=True
            )
            browser.close()

        print()
        print(
            f"server alone: {CT_SLICES} CT frames ({server_bytes / 1e6:.0f} MB) "
            f"in {server_s:.2f} s "
            f"over 6 connections = {CT_SLICES / server_s:.0f} frames/s, "
            f"{server_bytes / 1e6 / server_s:.0f} MB/s"
        )
        cxr_summary = summarise("CXR JPEG 2000 1955x1841", cxr, stack=False)
        ct_summary = summarise(f"CT {CT_SLICES} slices", ct, stack=True)
        print()
        ok_first = max(cxr_summary["first"], ct_summary["first"]) < TARGET_FIRST_IMAGE_S
        ok_stack = ct_summary["stack"] < TARGET_STACK_S
        print(
            f"targets: first image < {TARGET_FIRST_IMAGE_S:.0f} s: "
            f"{'met' if ok_first else 'MISSED'}; "
            f"{CT_SLICES}-slice stack < {TARGET_STACK_S:.0f} s: {'met' if ok_stack else 'MISSED'}"
        )
        bound = "server frames/s" if server_s >= ct_summary["decode"] else "client decode"
        print(
            f"what bounds the stack: {bound} (server alone {server_s:.2f} s for the frames, "
            f"client decode {ct_summary['decode']:.2f} s summed over its workers, stack loaded "
            f"{ct_summary['stack_after_first']:.2f} s after the first image); machine has "
            f"{os.cpu_count()} CPU cores shared by server, browser and decode workers"
        )
        return 0
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        database_drop(bench_db)


if __name__ == "__main__":
    sys.exit(main())
