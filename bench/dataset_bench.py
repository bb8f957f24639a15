"""Benchmark: a research dataset of PNG studies with a manifest and reports, imported end to end.

Usage: python bench/dataset_bench.py [--studies 10000] [--size 512] [--profile]

Builds a synthetic dataset (one 8-bit grayscale PNG per study, ``--size`` pixels square, a
manifest CSV carrying each study's findings, impression and indication), then imports it with
``dataset_import_run`` exactly as ``manage.py import_dataset --release`` does: every image built
into DICOM, safety-scanned, de-identified, stored and indexed; every report stored as a
version and every context set. Then imports it again (nothing new to store). Runs in a database
of its own (BENCH_DATABASE_URL, or DATABASE_URL's name with "_dataset_bench" appended, created
if missing and migrated) and a data folder of its own, removed at the end.

Target (issue 20): 10,000 PNG studies with manifest and reports in under 5 minutes
(>= 35 studies/s end to end).
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import bench_database_use  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")

# Texts written for this benchmark (no dataset's reports are copied here).
FINDINGS = "FINDINGS: Heart size is normal. Lungs are clear. No effusion or pneumothorax."
IMPRESSION = "IMPRESSION: No acute cardiopulmonary process."


def dataset_build(root: Path, *, studies: int, size: int) -> float:
    """Write the PNGs and the manifest; return the seconds it took."""
    started = time.perf_counter()
    rng = np.random.default_rng(20261207)
    # A smooth body with noise: compresses like a radiograph, not like pure noise.
    ramp = np.add.outer(np.linspace(40, 200, size), np.linspace(0, 30, size))
    images = root / "images"
    images.mkdir(parents=True)
    with (root / "manifest.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "study_id",
                "image",
                "view",
                "patient_id",
                "study_date",
                "findings",
                "impression",
                "indication",
            ]
        )
        for number in range(studies):
            noise = rng.integers(-6, 7, size=(size, size))
            pixels = np.clip(ramp + noise, 0, 255).astype(np.uint8)
            name = f"images/{number:06d}.png"
            Image.fromarray(pixels).save(root / name, format="PNG", compress_level=1)
            writer.writerow(
                [
                    f"bench-{number:06d}",
                    name,
                    "PA",
                    f"patient-{number // 3}",
                    f"2020-{number % 12 + 1:02d}-{number % 28 + 1:02d}",
                    f"{FINDINGS} Study {number}.",
                    IMPRESSION,
                    "Cough.",
                ]
            )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=512, help="PNG side in pixels")
    parser.add_argument("--profile", action="store_true", help="print where the time goes")
    args = parser.parse_args()

    name = bench_database_use("_dataset_bench")
    work = Path(tempfile.mkdtemp(prefix="dataset-bench-"))
    os.environ["RADREVIEW_DATA_DIR"] = str(work / "data")
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, check=True
        )
        import django

        django.setup()
        from reviewapp.accounts.services import user_create
        from reviewapp.core.roles import Role
        from reviewapp.imaging.ingest.datasets import DatasetOptions, dataset_import_run
        from reviewapp.imaging.ingest.services import import_batch_create
        from reviewapp.imaging.models import ImportBatch

        built = dataset_build(work / "dataset", studies=args.studies, size=args.size)
        print(
            f"database {name}: {args.studies:,} PNG studies of {args.size}x{args.size} with a "
            f"manifest and reports written in {built:.1f} s"
        )
        coordinator = user_create(
            username=f"bench-coord-{uuid.uuid4().hex[:8]}",
            password=uuid.uuid4().hex,
            roles=[Role.COORDINATOR],
            check_password=False,
        )
        run = uuid.uuid4().hex[:8]
        options = DatasetOptions(name=f"bench {run}", layout="manifest", release=True)
        for label in ("first import", "second import (nothing new)"):
            batch = import_batch_create(source=ImportBatch.Source.DATASET, created_by=coordinator)
            load_before = os.getloadavg()[0]
            profiler = cProfile.Profile() if args.profile and label == "first import" else None
            started = time.perf_counter()
            cpu_started = time.process_time()
            if profiler is not None:
                profiler.enable()
            result = dataset_import_run(
                batch=batch,
                root=work / "dataset",
                options=options,
                requested_by=coordinator,
            )
            if profiler is not None:
                profiler.disable()
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
            statuses: dict[str, int] = {}
            for outcome in result.outcomes:
                statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
            print(
                f"{label}: {result.studies_stored:,} studies in {elapsed:.1f} s "
                f"({result.studies_stored / elapsed:.1f} studies/s; {cpu:.1f} CPU-s in this "
                f"process); images {statuses}; reports created {result.reports_created}, "
                f"versioned {result.reports_versioned}, unchanged {result.reports_unchanged}; "
                f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
            )
            if profiler is not None:
                stats = pstats.Stats(profiler)
                stats.sort_stats("cumulative").print_stats(35)
                stats.sort_stats("tottime").print_stats(25)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
