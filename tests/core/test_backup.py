"""Backups a study can survive on: `manage.py backup` then `manage.py restore` into a fresh
database and storage give back the same ratings export, byte for byte, the same audit
history and the same stored DICOM files."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from django.contrib.auth.models import AbstractUser
from django.db import connection

from reviewapp.imaging.models import Instance
from reviewapp.studies.services import rating_revise
from tests.analysis.conftest import build_pairwise_study
from tests.conftest import REPO_ROOT
from tests.imaging.conftest import CT_FILES, import_files


def _server_url() -> str:
    return os.environ["DATABASE_URL"].rpartition("/")[0]


def _manage(*args: str, database: str, data_dir: Path) -> subprocess.CompletedProcess[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": f"{_server_url()}/{database}",
        "RADREVIEW_DATA_DIR": str(data_dir),
        "DJANGO_DEBUG": "1",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "manage.py"), *args],
        env=env,
        capture_output=True,
        check=False,
        cwd=REPO_ROOT,
    )


def _audit_history(database: str) -> str:
    """Every history table (pghistory events, export audit) in a stable order, as text."""
    with psycopg.connect(f"{_server_url()}/{database}") as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
                "AND (table_name LIKE '%%event' OR table_name = 'analysis_exportaudit') "
                "ORDER BY table_name"
            )
        ]
        assert any(name.endswith("event") for name in tables), tables
        lines = []
        for table in tables:
            rows = conn.execute(f'SELECT * FROM "{table}" ORDER BY 1').fetchall()  # noqa: S608
            lines.append(f"{table}: {len(rows)}")
            lines.extend(repr(row) for row in rows)
    return "\n".join(lines)


def _stored_files(media: Path) -> dict[str, str]:
    return {
        str(path.relative_to(media)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(media.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def restored_database() -> str:
    name = f"{connection.settings_dict['NAME']}_restored"
    with psycopg.connect(f"{_server_url()}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(f"{_server_url()}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_restored_backup_gives_the_same_export_audit_history_and_files(
    archive_dirs: Path,
    reader: AbstractUser,
    second_reader: AbstractUser,
    coordinator: AbstractUser,
    analyst: AbstractUser,
    restored_database: str,
    tmp_path: Path,
) -> None:
    rated = build_pairwise_study(
        name="Backup study",
        readers=[(reader, "US"), (second_reader, "US")],
        n_cases=6,
        seed=11,
        coordinator=coordinator,
    )
    _, outcomes = import_files(CT_FILES[:3])
    assert {o.status for o in outcomes} == {"imported"}
    # A revision leaves history rows the restore must bring back as they were.
    assignment = rated.study.assignments.filter(reader=reader).first()
    rating_revise(
        assignment=assignment,
        reader=reader,
        answers={"comparison": "c"},
        expected_version=assignment.rating.version,
        idempotency_key=uuid.uuid4(),
    )
    original_db = connection.settings_dict["NAME"]
    study_id = str(rated.study.public_id)
    export = _manage(
        "export_ratings", study_id, "--user", analyst.get_username(),
        database=original_db, data_dir=archive_dirs,
    )  # fmt: skip
    assert export.returncode == 0, export.stderr.decode()
    history = _audit_history(original_db)
    files = _stored_files(archive_dirs / "media")
    assert len(files) == Instance.objects.count() == 3

    backup = tmp_path / "backup"
    made = _manage("backup", str(backup), database=original_db, data_dir=archive_dirs)
    assert made.returncode == 0, made.stderr.decode()
    assert json.loads((backup / "manifest.json").read_text())["files"].keys() == files.keys()

    restored_data = tmp_path / "restored"
    done = _manage("restore", str(backup), database=restored_database, data_dir=restored_data)
    assert done.returncode == 0, done.stderr.decode()

    assert _audit_history(restored_database) == history
    assert _stored_files(restored_data / "media") == files
    again = _manage(
        "export_ratings", study_id, "--user", analyst.get_username(),
        database=restored_database, data_dir=restored_data,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr.decode()
    assert again.stdout == export.stdout
    assert export.stdout.count(b"\n") > 12  # the export is the study's rows, not a header alone

    # Restoring twice is refused: the database is no longer empty, and nothing is touched.
    twice = _manage("restore", str(backup), database=restored_database, data_dir=restored_data)
    assert twice.returncode != 0
    assert b"not empty" in twice.stderr


@pytest.mark.django_db(transaction=True)
def test_a_damaged_backup_is_refused_before_anything_is_restored(
    archive_dirs: Path, restored_database: str, tmp_path: Path
) -> None:
    import_files(CT_FILES[:1])
    backup = tmp_path / "backup"
    made = _manage(
        "backup", str(backup), database=connection.settings_dict["NAME"], data_dir=archive_dirs
    )
    assert made.returncode == 0, made.stderr.decode()
    stored = next((backup / "files").rglob("*.dcm"))
    damaged = bytearray(stored.read_bytes())
    damaged[-1] ^= 0xFF
    stored.write_bytes(bytes(damaged))

    restored_data = tmp_path / "restored"
    done = _manage("restore", str(backup), database=restored_database, data_dir=restored_data)
    assert done.returncode != 0
    assert b"does not match its hash" in done.stderr
    with psycopg.connect(f"{_server_url()}/{restored_database}") as conn:
        (tables,) = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    assert tables == 0
    assert not (restored_data / "media").exists()
