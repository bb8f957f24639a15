"""The import and study endpoints as a script (or the upload page's XHR) uses them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from reviewapp.celery import app as celery_app
from reviewapp.imaging.models import ImportBatch, Instance, Study
from tests.conftest import REPO_ROOT
from tests.imaging.conftest import CT_FILES, database_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def test_a_script_uploads_files_and_follows_the_batch_to_the_end(
    coordinator, api_client_for, archive_dirs: Path, eager_tasks, django_capture_on_commit_callbacks
) -> None:
    client = api_client_for(coordinator)
    files = [SimpleUploadedFile(p.name, p.read_bytes()) for p in CT_FILES[:5]]
    files.append(SimpleUploadedFile("junk.bin", b"\x00" * 300))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/import-batches",
            {"files": files, "paths": [f"ct/{f.name}" for f in files]},
            format="multipart",
        )
    assert response.status_code == 202, response.content
    created = response.json()
    assert created["files_total"] == 6
    assert created["page_url"].endswith(f"/imports/{created['public_id']}/")
    detail = client.get(f"/api/v1/import-batches/{created['public_id']}").json()
    assert detail["status"] == "done"
    assert (detail["files_done"], detail["imported_count"], detail["failed_count"]) == (6, 5, 1)
    assert [p["file_name"] for p in detail["problems"]] == ["ct/junk.bin"]
    assert detail["problems"][0]["reason"]


def test_the_api_refuses_an_oversized_upload_with_413_and_a_message(
    coordinator, api_client_for, archive_dirs: Path
) -> None:
    response = api_client_for(coordinator).post(
        "/api/v1/import-batches",
        {"files": [SimpleUploadedFile("a.dcm", b"x" * 100)]},
        format="multipart",
        CONTENT_LENGTH=str(2 * 1024**3),
    )
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]
    assert ImportBatch.objects.count() == 0
    assert not (archive_dirs / "imports").exists()


def test_an_upload_without_files_is_a_clear_400(coordinator, api_client_for) -> None:
    response = api_client_for(coordinator).post("/api/v1/import-batches", {}, format="multipart")
    assert response.status_code == 400
    assert "at least one file" in str(response.json())


def test_studies_api_filters_and_counts(
    analyst, api_client_for, imported_ct_study: Study, imported_cxr_studies
) -> None:
    client = api_client_for(analyst)
    everything = client.get("/api/v1/studies").json()
    assert everything["count"] == 3
    ct = client.get("/api/v1/studies", {"modality": "CT"}).json()["results"]
    assert [s["public_id"] for s in ct] == [str(imported_ct_study.public_id)]
    assert (ct[0]["series_count"], ct[0]["instance_count"]) == (1, 30)
    assert client.get("/api/v1/studies", {"has_ai_report": "true"}).json()["count"] == 0
    bad = client.get("/api/v1/studies", {"date_from": "yesterday"})
    assert bad.status_code == 400
    detail = client.get(f"/api/v1/studies/{imported_ct_study.public_id}").json()
    assert detail["series"][0]["instance_count"] == 30
    assert Instance.objects.count() == 32
    assert client.get("/api/v1/studies/00000000-0000-0000-0000-000000000000").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_an_upload_the_queue_cannot_take_is_marked_failed_with_a_message(
    archive_dirs: Path,
) -> None:
    # A web process whose broker is down (a port nobody listens on) stages an upload: the
    # queueing fails after the commit, and the batch says so instead of staying "pending".
    script = (
        "import django; django.setup()\n"
        "from django.core.files.uploadedfile import SimpleUploadedFile\n"
        "from reviewapp.imaging.ingest.services import import_batch_from_uploads\n"
        "batch = import_batch_from_uploads(created_by=None,"
        " uploads=[SimpleUploadedFile('a.dcm', b'x' * 10)])\n"
        "print(batch.public_id)\n"
    )
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(),
        REDIS_URL="redis://127.0.0.1:1/0",
        RADREVIEW_DATA_DIR=str(archive_dirs),
        DJANGO_SETTINGS_MODULE="reviewapp.settings",
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    batch = ImportBatch.objects.get(public_id=done.stdout.strip().splitlines()[-1])
    assert batch.status == ImportBatch.Status.FAILED
    assert "could not be queued" in batch.error_message
