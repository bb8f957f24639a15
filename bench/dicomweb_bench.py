"""DICOMweb throughput: radreview against Orthanc (DICOMweb plugin), same machine, same data.

Data: the shared 30-slice CT replicated with new UIDs into one 300-slice series, plus the two
chest radiographs (JPEG 2000 and JPEG baseline). Both servers run on loopback, started here
and stopped at the end; the same Python client (requests, one keep-alive connection per
thread) drives both.

- STOW-RS ingestion: every instance, 10 per request, N concurrent connections (instances/s).
  Ours imports each instance as a coordinator's upload would: safety checks,
  de-identification, storage, frame index, rows; Orthanc stores the file as sent.
- WADO-RS frames: every frame of the 300 slices, one request per frame, N concurrent
  connections (frames/s, MB/s); first pass and then warm passes. Then the radiographs.
- A bound: the same client against uvicorn handing out the raw frame bytes from disk with no
  framework, database or auth, i.e. what this machine and client allow at best.

Run: ``python bench/dicomweb_bench.py [--clients 6] [--passes 3]`` (needs PostgreSQL, Redis,
and the Debian packages orthanc and orthanc-dicomweb). It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import pydicom  # noqa: E402
import requests  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from bench.common import (  # noqa: E402
    LoadResult,
    database_recreate,
    free_port,
    load_run,
    manage,
    orthanc_binary,
    orthanc_config,
    running,
)
from reviewapp.runner import web_command, web_environment  # noqa: E402

CT_DIR = REPO_ROOT / "sampledata" / "ct" / "lung_pet_ct_dx_A0002_thorax"
CXR_FILES = sorted((REPO_ROOT / "sampledata" / "cxr").glob("*.dcm"))
OCTET_ANY = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
STOW_BATCH = 10
PASSWORD = "bench-password-not-secret-4821"  # noqa: S105 - a throwaway bench database


# --- data --------------------------------------------------------------------------------------


def replicate_ct(dest: Path, *, copies: int = 10) -> list[Path]:
    """The 30 CT slices ``copies`` times as one series with new UIDs, stacked along z."""
    sources = [pydicom.dcmread(p) for p in sorted(CT_DIR.glob("*.dcm"))]
    sources.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    z_values = [float(ds.ImagePositionPatient[2]) for ds in sources]
    spacing = (z_values[-1] - z_values[0]) / max(len(z_values) - 1, 1) or 1.0
    extent = spacing * len(sources)
    study_uid, series_uid, frame_of_reference = generate_uid(), generate_uid(), generate_uid()
    paths = []
    for copy_index in range(copies):
        for slice_index, source in enumerate(sources):
            ds = copy.deepcopy(source)
            ds.StudyInstanceUID = study_uid
            ds.SeriesInstanceUID = series_uid
            ds.FrameOfReferenceUID = frame_of_reference
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            number = copy_index * len(sources) + slice_index + 1
            ds.InstanceNumber = number
            position = [float(v) for v in ds.ImagePositionPatient]
            position[2] = z_values[0] + copy_index * extent + slice_index * spacing
            ds.ImagePositionPatient = position
            if "SliceLocation" in ds:
                ds.SliceLocation = position[2]
            path = dest / f"ct-{number:04d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
    return paths


def stow_body(paths: list[Path], boundary: str = "bench-7d3f9a") -> tuple[bytes, str]:
    pieces = []
    for path in paths:
        pieces.append(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode())
        pieces.append(path.read_bytes())
        pieces.append(b"\r\n")
    pieces.append(f"--{boundary}--\r\n".encode())
    return b"".join(pieces), f'multipart/related; type="application/dicom"; boundary={boundary}'


# --- servers -----------------------------------------------------------------------------------


def ours_env(*, database_url: str, data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "RADREVIEW_DATA_DIR": str(data_dir),
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-" + "k" * 50,
        "RADREVIEW_HTTPS": "0",
        "RADREVIEW_DEID_SECRET": "bench-deid-secret-0123456789",
        "RADREVIEW_LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "reviewapp.settings",
    }


def ours_token(env: dict[str, str]) -> str:
    manage(
        "create_user",
        "bench-coordinator",
        "--role",
        "coordinator",
        env={**env, "RADREVIEW_NEW_PASSWORD": PASSWORD},
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "drf_create_token", "bench-coordinator"],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"token ([0-9a-f]{40})", out)
    if not match:
        raise SystemExit(f"could not create a token: {out!r}")
    return match.group(1)


# --- measurements ------------------------------------------------------------------------------


def stow_all(
    root: str, paths: list[Path], *, headers: dict[str, str], clients: int
) -> tuple[LoadResult, list[dict]]:
    answers: list[dict] = []

    def job(batch: list[Path]) -> Callable[[requests.Session], int]:
        def run(session: requests.Session) -> int:
            body, content_type = stow_body(batch)
            response = session.post(
                f"{root}/studies",
                data=body,
                headers={
                    **headers,
                    "Content-Type": content_type,
                    "Accept": "application/dicom+json",
                },
                timeout=600,
            )
            if response.status_code not in (200, 202):
                raise RuntimeError(f"STOW answered {response.status_code}: {response.text[:200]}")
            answers.append(response.json())
            return len(batch)

        return run

    batches = [paths[i : i + STOW_BATCH] for i in range(0, len(paths), STOW_BATCH)]
    result = load_run([job(b) for b in batches], concurrency=clients)
    # load_run counts requests; ingestion is counted in instances.
    result.requests = (
        sum(len(b) for b in batches) if not result.errors else result.requests * STOW_BATCH
    )
    return result, answers


def frame_urls(root: str, *, headers: dict[str, str], modality: str) -> list[str]:
    studies = requests.get(
        f"{root}/studies", params={"ModalitiesInStudy": modality}, headers=headers, timeout=60
    ).json()
    urls = []
    for study in studies:
        study_uid = study["0020000D"]["Value"][0]
        for series in requests.get(
            f"{root}/studies/{study_uid}/series", headers=headers, timeout=60
        ).json():
            series_uid = series["0020000E"]["Value"][0]
            instances = requests.get(
                f"{root}/studies/{study_uid}/series/{series_uid}/instances",
                params={"limit": 1000},
                headers=headers,
                timeout=60,
            ).json()
            for instance in instances:
                sop_uid = instance["00080018"]["Value"][0]
                urls.append(
                    f"{root}/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/frames/1"
                )
    return urls


def fetch_frames(
    urls: list[str], *, headers: dict[str, str], clients: int, accept_encoding: str | None = None
) -> LoadResult:
    wanted = {**headers, "Accept": OCTET_ANY}

    def job(url: str) -> Callable[[requests.Session], int]:
        def run(session: requests.Session) -> int:
            response = session.get(url, headers=wanted, timeout=60)
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code} for a frame: {response.text[:200]}")
            return len(response.content)

        return run

    return load_run([job(u) for u in urls], concurrency=clients, accept_encoding=accept_encoding)


RAW_APP = textwrap.dedent(
    '''
    """Bound for the client and machine: raw file bytes over uvicorn, no framework or auth."""
    import os

    ROOT = os.environ["RAW_DIR"]
    FILES = sorted(os.path.join(ROOT, name) for name in os.listdir(ROOT))


    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        index = int(scope["path"].rsplit("/", 1)[-1] or 0) % len(FILES)
        with open(FILES[index], "rb") as handle:
            body = handle.read()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        await send({"type": "http.response.body", "body": body})
    '''
)


# --- report ------------------------------------------------------------------------------------


def row(name: str, ours: float, theirs: float | None, unit: str) -> str:
    ratio = f"{ours / theirs:5.2f}x" if theirs else "   n/a"
    other = f"{theirs:10.1f}" if theirs is not None else "       n/a"
    return f"{name:<44} {ours:10.1f} {other} {ratio}  {unit}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--passes", type=int, default=3, help="frame passes (first is cold)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers for radreview")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "RADREVIEW_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rr_dicomweb_bench"
        ),
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="dicomweb-bench-"))
    try:
        return _run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, work: Path) -> int:
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    data = work / "data"
    data.mkdir()
    ct_paths = replicate_ct(data)
    all_paths = ct_paths + CXR_FILES
    ct_bytes = sum(p.stat().st_size for p in ct_paths)
    print(
        f"data: {len(ct_paths)} CT slices ({ct_bytes / 1e6:.0f} MB) + {len(CXR_FILES)} radiographs",
        flush=True,
    )

    results: dict[str, dict[str, float]] = {"ours": {}, "orthanc": {}, "raw": {}}

    # Orthanc -------------------------------------------------------------------------------
    orthanc_dir = work / "orthanc"
    orthanc_dir.mkdir()
    port = free_port()
    config = orthanc_config(orthanc_dir, port=port)
    root = f"http://127.0.0.1:{port}/dicom-web"
    with running(
        [orthanc_binary(), str(config)],
        ready_url=f"http://127.0.0.1:{port}/system",
        log_path=work / "orthanc.log",
    ):
        _measure("orthanc", root, {}, all_paths, args, results)

    # radreview -----------------------------------------------------------------------------
    database_recreate(args.database_url)
    env = ours_env(database_url=args.database_url, data_dir=work / "radreview")
    manage("migrate", "--verbosity", "0", env=env)
    token = ours_token(env)
    # Served as `make serve` serves it: the runner's command line and environment (uvicorn
    # workers, a connection pool per worker).
    env = web_environment({**env, "RADREVIEW_WEB_WORKERS": str(args.workers)})
    port = free_port()
    command = web_command(env, host="127.0.0.1", port=port)
    with running(
        command,
        ready_url=f"http://127.0.0.1:{port}/healthz",
        env=env,
        log_path=work / "ours.log",
        timeout=120,
    ):
        _measure(
            "ours",
            f"http://127.0.0.1:{port}/dicomweb",
            {"Authorization": f"Token {token}"},
            all_paths,
            args,
            results,
            approve_env=env,
        )

    # raw bound -----------------------------------------------------------------------------
    raw_dir = work / "raw"
    raw_dir.mkdir()
    for index, path in enumerate(ct_paths):
        ds = pydicom.dcmread(path)
        (raw_dir / f"{index:04d}.raw").write_bytes(ds.PixelData)
    (work / "raw_app.py").write_text(RAW_APP)
    port = free_port()
    raw_command = [
        sys.executable, "-m", "uvicorn", "raw_app:app", "--app-dir", str(work),
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers),
        "--lifespan", "off", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    with running(
        raw_command,
        ready_url=f"http://127.0.0.1:{port}/0",
        env={**os.environ, "RAW_DIR": str(raw_dir)},
        log_path=work / "raw.log",
    ):
        urls = [f"http://127.0.0.1:{port}/{i}" for i in range(len(ct_paths))]
        fetch_frames(urls, headers={}, clients=args.clients)
        warm = [
            fetch_frames(urls, headers={}, clients=args.clients)
            for _ in range(max(args.passes - 1, 1))
        ]
        results["raw"]["frames_warm"] = sum(r.requests for r in warm) / sum(r.seconds for r in warm)
        results["raw"]["mb_warm"] = sum(r.bytes for r in warm) / 1e6 / sum(r.seconds for r in warm)

    _report(results, args)
    print(f"load average at end: {os.getloadavg()[0]:.2f}", flush=True)
    return 0


APPROVE_HELD = (
    "from django.contrib.auth import get_user_model\n"
    "from reviewapp.imaging.models import Instance\n"
    "from reviewapp.imaging.ingest.services import instance_quarantine_approve\n"
    "user = get_user_model().objects.get(username='bench-coordinator')\n"
    "for held in Instance.objects.filter(status=Instance.Status.QUARANTINED):\n"
    "    instance_quarantine_approve(instance=held, reviewed_by=user)\n"
)


def _measure(
    name: str,
    root: str,
    headers: dict[str, str],
    paths: list[Path],
    args: argparse.Namespace,
    results: dict[str, dict[str, float]],
    approve_env: dict[str, str] | None = None,
) -> None:
    print(
        f"\n[{name}] STOW-RS {len(paths)} instances, {STOW_BATCH} per request, "
        f"{args.clients} clients",
        flush=True,
    )
    stow, _ = stow_all(root, paths, headers=headers, clients=args.clients)
    if stow.errors:
        print(f"  STOW errors: {stow.errors[:3]}", flush=True)
    results[name]["stow"] = stow.per_second
    print(
        f"  {stow.requests} instances in {stow.seconds:.1f} s = {stow.per_second:.1f} instances/s",
        flush=True,
    )

    if approve_env is not None:
        # Radiographs without a Burned In Annotation answer wait for a coordinator; approve
        # them as one would, so both servers serve the same images.
        manage("shell", "-c", APPROVE_HELD, env=approve_env)
    urls = frame_urls(root, headers=headers, modality="CT")
    print(
        f"[{name}] WADO-RS frames: {len(urls)} CT frames x {args.passes} passes, "
        f"{args.clients} clients",
        flush=True,
    )
    passes = [fetch_frames(urls, headers=headers, clients=args.clients) for _ in range(args.passes)]
    for number, result in enumerate(passes, 1):
        errors = f" errors: {result.errors[:2]}" if result.errors else ""
        print(
            f"  pass {number}: {result.requests} frames in {result.seconds:.2f} s = "
            f"{result.per_second:.0f} frames/s, {result.mb_per_second:.1f} MB/s{errors}",
            flush=True,
        )
    plain = [
        fetch_frames(urls, headers=headers, clients=args.clients, accept_encoding="identity")
        for _ in range(max(args.passes - 1, 1))
    ]
    for number, result in enumerate(plain, 1):
        print(
            f"  identity pass {number}: {result.per_second:.0f} frames/s, "
            f"{result.mb_per_second:.1f} MB/s",
            flush=True,
        )
    results[name]["frames_identity"] = sum(r.requests for r in plain) / sum(
        r.seconds for r in plain
    )
    results[name]["mb_identity"] = sum(r.bytes for r in plain) / 1e6 / sum(r.seconds for r in plain)
    warm = passes[1:] or passes
    results[name]["frames_cold"] = passes[0].per_second
    results[name]["mb_cold"] = passes[0].mb_per_second
    results[name]["frames_warm"] = sum(r.requests for r in warm) / sum(r.seconds for r in warm)
    results[name]["mb_warm"] = sum(r.bytes for r in warm) / 1e6 / sum(r.seconds for r in warm)

    cxr_urls = frame_urls(root, headers=headers, modality="CR") + frame_urls(
        root, headers=headers, modality="DX"
    )
    if cxr_urls:
        cxr = fetch_frames(cxr_urls * 50, headers=headers, clients=args.clients)
        results[name]["cxr_frames"] = cxr.per_second
        results[name]["cxr_mb"] = cxr.mb_per_second
        errors = f" errors: {cxr.errors[:2]}" if cxr.errors else ""
        print(
            f"[{name}] radiograph frames ({len(cxr_urls)} x 50): {cxr.per_second:.0f} frames/s, "
            f"{cxr.mb_per_second:.1f} MB/s{errors}",
            flush=True,
        )
    else:
        print(f"[{name}] no radiograph is served (held for review or not found)", flush=True)


def _report(results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    ours, theirs, raw = results["ours"], results["orthanc"], results["raw"]
    print(
        f"\nDICOMweb, {args.clients} concurrent clients (Python requests), "
        f"radreview on uvicorn x{args.workers}"
    )
    print("(client as is: requests offers gzip, which Orthanc applies to every frame; radreview")
    print(" never compresses frames. The identity rows ask both for no compression.)")
    print(f"{'':<44} {'radreview':>10} {'Orthanc':>10} {'ratio':>6}")
    print(row("STOW-RS ingestion", ours.get("stow", 0), theirs.get("stow"), "instances/s"))
    print(
        row(
            "CT frames, first pass",
            ours.get("frames_cold", 0),
            theirs.get("frames_cold"),
            "frames/s",
        )
    )
    print(row("CT frames, first pass", ours.get("mb_cold", 0), theirs.get("mb_cold"), "MB/s"))
    print(
        row(
            "CT frames, warm passes",
            ours.get("frames_warm", 0),
            theirs.get("frames_warm"),
            "frames/s",
        )
    )
    print(row("CT frames, warm passes", ours.get("mb_warm", 0), theirs.get("mb_warm"), "MB/s"))
    print(
        row(
            "CT frames, warm, Accept-Encoding: identity",
            ours.get("frames_identity", 0),
            theirs.get("frames_identity"),
            "frames/s",
        )
    )
    print(
        row(
            "CT frames, warm, Accept-Encoding: identity",
            ours.get("mb_identity", 0),
            theirs.get("mb_identity"),
            "MB/s",
        )
    )
    if "cxr_frames" in ours or "cxr_frames" in theirs:
        print(
            row(
                "radiograph frames", ours.get("cxr_frames", 0), theirs.get("cxr_frames"), "frames/s"
            )
        )
    print(
        "bound (raw bytes over uvicorn, no framework/auth): "
        f"{raw.get('frames_warm', 0):.0f} frames/s, "
        f"{raw.get('mb_warm', 0):.1f} MB/s; ours reaches "
        f"{100 * ours.get('frames_warm', 0) / max(raw.get('frames_warm', 1), 1):.0f}% of it"
    )


if __name__ == "__main__":
    sys.exit(main())
