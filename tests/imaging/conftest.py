"""Archive fixtures shared by every imaging test (and by other apps' tests that need studies).

Studies are imported through the real pipeline (parse, de-identify, store, index), into
storage under a per-test folder, so a test sees exactly what a coordinator's import makes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from reviewapp.imaging.ingest.services import (
    import_batch_create,
    import_batch_run,
    instance_quarantine_approve,
)
from reviewapp.imaging.ingest.types import FileOutcome, IncomingFile
from reviewapp.imaging.models import ImportBatch, Instance, Study
from tests.conftest import SAMPLES

CT_DIR = SAMPLES / "ct" / "lung_pet_ct_dx_A0002_thorax"
CXR_J2K = SAMPLES / "cxr" / "nema_wg04_RG1_chest_PA_J2KI.dcm"
CXR_JPEG = SAMPLES / "cxr" / "siim_nihcxr14_chest_PA_jpeg.dcm"
CT_FILES = sorted(CT_DIR.glob("*.dcm"))


def import_files(
    paths: Iterable[Path],
    *,
    user: AbstractBaseUser | None = None,
    source: ImportBatch.Source = ImportBatch.Source.COMMAND,
    root: Path | None = None,
) -> tuple[ImportBatch, list[FileOutcome]]:
    """Import files synchronously through the service, named relative to ``root``."""
    files = [IncomingFile(name=str(p.relative_to(root)) if root else p.name, path=p) for p in paths]
    batch = import_batch_create(source=source, created_by=user, files_total=len(files))
    outcomes = import_batch_run(batch=batch, files=files)
    batch.refresh_from_db()
    return batch, outcomes


@pytest.fixture
def imported_ct_study(db: None, archive_dirs: Path) -> Study:
    """The 30-slice chest CT, imported."""
    _, outcomes = import_files(CT_FILES)
    assert {o.status for o in outcomes} == {"imported"}, outcomes
    return Study.objects.get(study_instance_uid=outcomes[0].study_instance_uid)


@pytest.fixture
def imported_cxr_studies(db: None, archive_dirs: Path) -> list[Study]:
    """The two chest radiographs (JPEG 2000 first, then JPEG baseline), imported and released.

    Radiographs without Burned In Annotation are quarantined on import; these samples are
    known to carry no burned-in text, so the fixture approves them as a coordinator would.
    """
    _, outcomes = import_files([CXR_J2K, CXR_JPEG])
    assert [o.status for o in outcomes] == ["quarantined", "quarantined"], outcomes
    for instance in Instance.objects.filter(status=Instance.Status.QUARANTINED):
        instance_quarantine_approve(instance=instance, reviewed_by=None)
    return [Study.objects.get(study_instance_uid=o.study_instance_uid) for o in outcomes]


def database_url() -> str:
    """The test database as a DATABASE_URL, for processes a test starts (workers, web)."""
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"
