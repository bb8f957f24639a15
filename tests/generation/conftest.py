"""Archived studies for generation tests, stored the way the importer stores them.

The sample DICOM is read with pydicom and saved into Django storage with Study, Series and
Instance rows; each study gets fresh UIDs so the same files can stand for several studies
(the retrieval baseline needs *other* studies to answer with).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pydicom
import pytest
import redis
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection
from pydicom.uid import generate_uid

from reviewapp.imaging.models import Instance, Series, Study
from reviewapp.reports.models import Report
from tests.conftest import REPO_ROOT, SAMPLES

CXR_JPEG = SAMPLES / "cxr" / "siim_nihcxr14_chest_PA_jpeg.dcm"
CXR_J2K = SAMPLES / "cxr" / "nema_wg04_RG1_chest_PA_J2KI.dcm"
CT_FILES = sorted((SAMPLES / "ct" / "lung_pet_ct_dx_A0002_thorax").glob("*.dcm"))


def archive_study(
    files: Sequence[Path],
    *,
    findings: str = "",
    impression: str = "",
    modality: str | None = None,
    stratum: str = "",
) -> Study:
    """Store ``files`` as one new study (fresh UIDs), with an original report when given."""
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    study_modality = modality or str(first.Modality)
    study = Study.objects.create(
        study_instance_uid=generate_uid(),
        patient_pseudonym="PSEUDO-" + generate_uid()[-8:],
        modalities=study_modality,
        description=str(first.get("StudyDescription", "")),
        stratum=stratum,
    )
    series = Series.objects.create(
        study=study, series_instance_uid=generate_uid(), modality=study_modality, series_number=1
    )
    for number, path in enumerate(files, start=1):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        position = ds.get("ImagePositionPatient")
        with path.open("rb") as handle:
            stored = default_storage.save(f"dicom/{generate_uid()}.dcm", File(handle))
        Instance.objects.create(
            series=series,
            sop_instance_uid=generate_uid(),
            sop_class_uid=str(ds.SOPClassUID),
            transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID),
            instance_number=number,
            rows=int(ds.Rows),
            columns=int(ds.Columns),
            view_position=str(ds.get("ViewPosition", "")),
            position=float(position[2]) if position else float(number),
            file=stored,
            file_size=path.stat().st_size,
            sha256="0" * 64,
        )
    if findings or impression:
        Report.objects.create(
            study=study, kind=Report.Kind.ORIGINAL, findings=findings, impression=impression
        )
    return study


@pytest.fixture
def archive(db: None) -> Callable[..., Study]:
    return archive_study


@pytest.fixture
def two_radiographs(db: None) -> tuple[Study, Study]:
    """Two chest radiographs with original reports: each is the other's nearest neighbour."""
    normal = archive_study(
        [CXR_JPEG], findings="Lungs are clear.", impression="No acute disease.", stratum="normal"
    )
    nodule = archive_study(
        [CXR_J2K],
        findings="Right upper lobe nodule.",
        impression="Nodule; CT advised.",
        stratum="abnormal",
    )
    return normal, nodule


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def child_env() -> dict[str, str]:
    """The environment of a child process that must use the test database."""
    params = connection.settings_dict
    env = dict(os.environ)
    env["DATABASE_URL"] = (
        f"postgres://{params['USER']}@{params['HOST']}:{params['PORT']}/{params['NAME']}"
    )
    return env


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen]]:
    """Start Celery workers on the test database and this test's Redis; stop them after."""
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    env = child_env()
    started: list[subprocess.Popen] = []

    def start(name: str) -> subprocess.Popen:
        log = (tmp_path / f"{name}.log").open("w")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "reviewapp",
                "worker",
                "-Q",
                "default,gpu",
                "--concurrency",
                "1",
                "-n",
                f"{name}@%h",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: SIGKILL reaches the pool child too
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    for log in sorted(tmp_path.glob("*.log")):
        sys.stderr.write(f"--- {log.name}\n{log.read_text()[-3000:]}\n")
