"""A staged upload is imported by a real Celery worker process (not in-process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from reviewapp.imaging.ingest.services import import_batch_from_uploads
from reviewapp.imaging.models import ImportBatch, Instance
from reviewapp.imaging.tasks import dicom_import_task
from tests.conftest import REPO_ROOT
from tests.imaging.conftest import CT_FILES, database_url

pytestmark = [pytest.mark.worker, pytest.mark.slow]


@pytest.fixture
def celery_worker(transactional_db: None, archive_dirs: Path, tmp_path: Path) -> Iterator[None]:
    """A solo worker on the test database and this test's data folder; killed at the end."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(),
        RADREVIEW_DATA_DIR=str(archive_dirs),
        RADREVIEW_TASKS_EAGER="0",
        PYTHONUNBUFFERED="1",
    )
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "reviewapp",
            "worker",
            "-P",
            "solo",
            "-Q",
            "default",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"archive-test-{os.getpid()}@%h",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while "ready." not in (tmp_path / "worker.log").read_text():
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "worker did not start"
            time.sleep(0.2)
        yield
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        log.close()


def _wait_done(batch: ImportBatch, timeout: float = 120) -> ImportBatch:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch.refresh_from_db()
        if batch.status in (ImportBatch.Status.DONE, ImportBatch.Status.FAILED):
            return batch
        time.sleep(0.3)
    raise AssertionError(f"batch still {batch.status} after {timeout}s")


def test_a_worker_process_imports_a_staged_batch_and_a_redelivery_changes_nothing(
    celery_worker: None, coordinator, archive_dirs: Path
) -> None:
    uploads = [SimpleUploadedFile(p.name, p.read_bytes()) for p in CT_FILES[:6]]
    uploads.append(SimpleUploadedFile("broken.dcm", b"not dicom" * 40))
    batch = import_batch_from_uploads(created_by=coordinator, uploads=uploads)
    batch = _wait_done(batch)
    assert batch.status == ImportBatch.Status.DONE
    assert (batch.files_done, batch.imported_count, batch.failed_count) == (7, 6, 1)
    assert batch.problems.get().file_name == "broken.dcm"  # type: ignore[attr-defined]
    assert Instance.objects.count() == 6
    # The worker removed the staged upload.
    assert not Path(batch.staging_path).exists()
    # A redelivered message for a finished batch does nothing.
    finished_at = batch.finished_at
    dicom_import_task(batch_pk=batch.pk)
    batch.refresh_from_db()
    assert batch.finished_at == finished_at
    assert Instance.objects.count() == 6


def test_a_task_redelivered_after_a_crash_mid_batch_finishes_it_without_duplicates(
    transactional_db: None, coordinator, archive_dirs: Path
) -> None:
    from reviewapp.imaging.ingest.services import import_batch_staged_files, instance_import

    uploads = [SimpleUploadedFile(p.name, p.read_bytes()) for p in CT_FILES[:4]]
    batch = import_batch_from_uploads(created_by=coordinator, uploads=uploads)
    # The first delivery stored two files, then its worker died (status left running).
    ImportBatch.objects.filter(pk=batch.pk).update(status=ImportBatch.Status.RUNNING)
    for incoming in import_batch_staged_files(batch=batch)[:2]:
        instance_import(batch=batch, incoming=incoming)
    dicom_import_task(batch_pk=batch.pk)
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.DONE
    assert (batch.imported_count, batch.duplicate_count, batch.files_done) == (4, 0, 4)
    assert Instance.objects.count() == 4
