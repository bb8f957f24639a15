"""Backups a study can survive on: the database and the stored DICOM files, consistent.

Decision record
- **Consistency.** A backup opens one REPEATABLE READ, READ ONLY transaction, exports its
  snapshot, and both ``pg_dump --snapshot`` and the list of stored files are taken from that
  snapshot. The files copied are exactly those the dumped rows name, so a restore never has a
  row without its file, and an import that commits during the backup is either wholly in it or
  wholly out of it. Stored files are written before their row commits and never rewritten
  under the same name, so a file named by the snapshot is complete when it is copied.
- **Format.** A folder: ``database.dump`` (pg_dump's custom format), ``files/`` (the stored
  names as they are) and ``manifest.json`` (format, creation time, server version, SHA-256 of
  the dump and of every file). Restoring checks every hash before it touches anything.
- **Restore** only into an empty database and empty storage: merging a backup into a living
  archive would mix two histories. ``pg_restore --single-transaction --exit-on-error``
  loads the rows before it creates the triggers, so restoring fires no history trigger and the
  audit history comes back as it was.
- **Tools.** pg_dump must be at least the server's major version; the one on PATH is used
  unless it is older and the embedded PostgreSQL's own binaries are newer enough.
- Files go through Django's storage API, so the same commands serve any storage backend.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection

from reviewapp.core.errors import ApplicationError

BACKUP_FORMAT = 1
MANIFEST = "manifest.json"
DUMP = "database.dump"
FILES = "files"
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    files: int
    bytes: int


def _libpq_environment() -> dict[str, str]:
    """Connection parameters for pg_dump/pg_restore as libpq variables (no password in argv)."""
    db: dict[str, Any] = dict(settings.DATABASES["default"])
    env = dict(os.environ)
    for key, variable in (
        ("HOST", "PGHOST"),
        ("PORT", "PGPORT"),
        ("USER", "PGUSER"),
        ("PASSWORD", "PGPASSWORD"),
        ("NAME", "PGDATABASE"),
    ):
        if db.get(key):
            env[variable] = str(db[key])
    return env


def _conninfo() -> str:
    db: dict[str, Any] = dict(settings.DATABASES["default"])
    params = {
        "host": db.get("HOST") or "",
        "port": str(db.get("PORT") or ""),
        "user": db.get("USER") or "",
        "password": db.get("PASSWORD") or "",
        "dbname": db["NAME"],
    }
    return psycopg.conninfo.make_conninfo(**{k: v for k, v in params.items() if v})


def _tool_major(path: str) -> int:
    out = subprocess.run(  # noqa: S603 (a PostgreSQL tool found on PATH or in pgserver)
        [path, "--version"], capture_output=True, text=True, check=True
    ).stdout
    return int(out.split()[-1].split(".")[0])


def _pg_tool(name: str, *, server_major: int) -> str:
    """A pg_dump/pg_restore at least as new as the server (pg_dump refuses older)."""
    candidates = [shutil.which(name)]
    try:
        import pgserver  # the embedded demo's PostgreSQL ships its own client tools

        candidates.append(str(Path(pgserver.__file__).parent / "pginstall" / "bin" / name))
    except ImportError:
        pass
    found = [c for c in candidates if c and Path(c).exists()]
    for candidate in found:
        if _tool_major(candidate) >= server_major:
            return candidate
    raise ApplicationError(
        f"No {name} of PostgreSQL {server_major} or newer was found; install the PostgreSQL "
        f"{server_major} client tools.",
        code="backup_tool_missing",
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _safe_relative(name: str) -> Path:
    """A stored name as a relative path that cannot leave the backup folder."""
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise ApplicationError(f"Unsafe stored file name in the backup: {name!r}.", code="unsafe")
    return relative


def backup_create(*, destination: Path) -> BackupSummary:
    """Write a consistent backup of the database and every stored file it names."""
    if destination.exists() and any(destination.iterdir()):
        raise ApplicationError(
            f"{destination} is not empty; back up into a new folder.", code="not_empty"
        )
    (destination / FILES).mkdir(parents=True, exist_ok=True)
    with psycopg.connect(_conninfo(), autocommit=False) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        row = conn.execute("SELECT pg_export_snapshot(), current_setting('server_version_num')")
        snapshot, version_num = row.fetchone()  # type: ignore[misc]
        server_major = int(version_num) // 10000
        dump = subprocess.run(  # noqa: S603 (our argv, no shell)
            [
                _pg_tool("pg_dump", server_major=server_major),
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--snapshot={snapshot}",
                f"--file={destination / DUMP}",
            ],
            env=_libpq_environment(),
            capture_output=True,
            text=True,
        )
        if dump.returncode != 0:
            raise ApplicationError(
                f"pg_dump failed: {dump.stderr.strip()[-500:]}", code="backup_failed"
            )
        try:
            names = [
                name
                for (name,) in conn.execute(
                    "SELECT file FROM imaging_instance WHERE file <> '' ORDER BY file"
                )
            ]
        except psycopg.errors.UndefinedTable as exc:
            raise ApplicationError(
                "The database holds no radreview tables (never migrated?): nothing to back up.",
                code="empty",
            ) from exc
        files: dict[str, str] = {}
        total = 0
        for name in names:
            target = destination / FILES / _safe_relative(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with default_storage.open(name, "rb") as source, target.open("wb") as sink:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    sink.write(chunk)
                    total += len(chunk)
            files[name] = digest.hexdigest()
        conn.rollback()
    manifest = {
        "format": BACKUP_FORMAT,
        "created": datetime.now(UTC).isoformat(),
        "server_version_num": int(version_num),
        "database": {"file": DUMP, "sha256": _sha256(destination / DUMP)},
        "files": files,
    }
    (destination / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return BackupSummary(path=destination, files=len(files), bytes=total)


def _manifest_checked(source: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise ApplicationError(
            f"{source} holds no readable {MANIFEST}: not a backup.", code="not_a_backup"
        ) from exc
    if manifest.get("format") != BACKUP_FORMAT:
        raise ApplicationError(
            f"Backup format {manifest.get('format')!r} is not {BACKUP_FORMAT}.", code="format"
        )
    if _sha256(source / DUMP) != manifest["database"]["sha256"]:
        raise ApplicationError("The database dump does not match its hash.", code="corrupt")
    for name, expected in manifest["files"].items():
        path = source / FILES / _safe_relative(name)
        if not path.is_file() or _sha256(path) != expected:
            raise ApplicationError(
                f"Stored file {name} is missing or does not match its hash.", code="corrupt"
            )
    return manifest


def _database_is_empty() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        )
        (tables,) = cursor.fetchone()
    return tables == 0


def backup_restore(*, source: Path) -> BackupSummary:
    """Restore a backup into an empty database and empty storage, checking every hash first."""
    manifest = _manifest_checked(source)
    if not _database_is_empty():
        raise ApplicationError(
            "The database is not empty; restore into a newly created database.",
            code="not_empty",
        )
    clashes = [name for name in manifest["files"] if default_storage.exists(name)]
    if clashes:
        raise ApplicationError(
            f"Storage already holds {len(clashes)} of the backup's files (first: {clashes[0]}); "
            "restore into empty storage.",
            code="not_empty",
        )
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version_num')")
        (version_num,) = cursor.fetchone()
    connection.close()  # pg_restore needs the database to itself for its single transaction
    restore = subprocess.run(  # noqa: S603 (our argv, no shell)
        [
            _pg_tool("pg_restore", server_major=int(version_num) // 10000),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={settings.DATABASES['default']['NAME']}",
            str(source / DUMP),
        ],
        env=_libpq_environment(),
        capture_output=True,
        text=True,
    )
    if restore.returncode != 0:
        raise ApplicationError(
            f"pg_restore failed (nothing was restored): {restore.stderr.strip()[-500:]}",
            code="restore_failed",
        )
    total = 0
    for name in manifest["files"]:
        path = source / FILES / _safe_relative(name)
        with path.open("rb") as handle:
            stored = default_storage.save(name, File(handle))
        if stored != name:
            raise ApplicationError(
                f"Storage renamed {name} to {stored}; restore into empty storage.",
                code="not_empty",
            )
        total += path.stat().st_size
    return BackupSummary(path=source, files=len(manifest["files"]), bytes=total)
