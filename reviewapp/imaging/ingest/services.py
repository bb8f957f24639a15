"""Writes to the image archive: import batches, stored instances, quarantine decisions.

Every interface (upload page, API, ``import_dicom``, STOW-RS, the worker) goes through
``import_batch_create`` and ``import_batch_run``, and the DICOM receiver (whose files arrive one
at a time) through ``import_batch_open``/``import_batch_add``, which take the same steps per
file; so one file is judged by the same rules whichever way it arrived.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from pydicom.dataset import Dataset

from reviewapp.core.errors import ApplicationError
from reviewapp.imaging import schemas
from reviewapp.imaging.ingest import archives, deid, dicom_index, dicom_safety
from reviewapp.imaging.ingest.types import DatasetOrigin, FileOutcome, IncomingFile
from reviewapp.imaging.models import (
    ImportBatch,
    ImportProblem,
    Instance,
    PseudonymMapping,
    Series,
    Study,
)

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[FileOutcome], None]

STAGING_MANIFEST = "manifest.json"


def _staging_root() -> Path:
    return Path(settings.DATA_DIR) / "imports"


def acting_user(user: AbstractBaseUser | AnonymousUser | None) -> User | None:
    """The account to record as having acted (None for anonymous or system actions)."""
    user_model = get_user_model()
    return user if isinstance(user, user_model) else None


def import_batch_create(
    *,
    source: ImportBatch.Source,
    created_by: AbstractBaseUser | AnonymousUser | None,
    files_total: int = 0,
) -> ImportBatch:
    """Open an import batch (pending) that counts what becomes of each file."""
    return ImportBatch.objects.create(
        source=source, created_by=acting_user(created_by), files_total=max(files_total, 0)
    )


def import_batch_stage(
    *, batch: ImportBatch, uploads: list[UploadedFile], names: list[str] | None = None
) -> int:
    """Copy uploaded files into the batch's staging folder for the worker; return how many.

    The worker never sees the uploaders' file names as paths: each file is staged under a
    counter and the names people know them by go into a manifest, shown in messages only.
    """
    if batch.status != ImportBatch.Status.PENDING:
        raise ApplicationError(
            "This import has already started; start a new one.", code="import_started"
        )
    folder = _staging_root() / str(batch.public_id)
    folder.mkdir(parents=True, exist_ok=True)
    # Django keeps only the base name of an upload; the browser's folder-relative path comes
    # separately (one per upload) and is what messages should name.
    use_names = names is not None and len(names) == len(uploads)
    entries: list[dict[str, str]] = []
    for index, upload in enumerate(uploads):
        staged = f"{index:06d}.upload"
        with (folder / staged).open("wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        shown = (names[index] if use_names and names else "") or upload.name or staged
        entries.append({"file": staged, "name": _display_name(shown)})
    (folder / STAGING_MANIFEST).write_text(json.dumps(entries))
    ImportBatch.objects.filter(pk=batch.pk).update(
        staging_path=str(folder), files_total=len(entries)
    )
    batch.refresh_from_db()
    return len(entries)


def import_batch_from_uploads(
    *,
    created_by: AbstractBaseUser | AnonymousUser,
    uploads: list[UploadedFile],
    names: list[str] | None = None,
) -> ImportBatch:
    """Stage browser uploads as a new batch and queue it for the worker.

    ``names`` (optional, one per upload) are the folder-relative paths the browser knows the
    files by.
    """
    if not uploads:
        raise ValidationError("Choose at least one file, folder or .zip to import.")
    with transaction.atomic():
        batch = import_batch_create(
            source=ImportBatch.Source.UPLOAD, created_by=created_by, files_total=len(uploads)
        )
        import_batch_stage(batch=batch, uploads=uploads, names=names)
        import_batch_queue(batch=batch)
    return batch


def import_batch_queue(*, batch: ImportBatch) -> None:
    """Hand a staged batch to the worker once the transaction that staged it commits."""
    batch_pk = batch.pk
    transaction.on_commit(lambda: _batch_enqueue(batch_pk=batch_pk))


def _batch_enqueue(*, batch_pk: int) -> None:
    from reviewapp.imaging.tasks import dicom_import_task

    try:
        dicom_import_task.delay(batch_pk=batch_pk)
    except Exception:
        # The broker is down: say so on the batch rather than leave it pending forever.
        logger.exception("Could not queue import batch %s", batch_pk)
        ImportBatch.objects.filter(pk=batch_pk, status=ImportBatch.Status.PENDING).update(
            status=ImportBatch.Status.FAILED,
            finished_at=timezone.now(),
            error_message="The import could not be queued (the task queue is unreachable). "
            "Upload the files again later, or ask an administrator to check the worker.",
        )


def import_batch_staged_files(*, batch: ImportBatch) -> list[IncomingFile]:
    """The files a batch's staging folder holds, named as their uploader knows them."""
    if not batch.staging_path:
        return []
    folder = Path(batch.staging_path)
    manifest = folder / STAGING_MANIFEST
    if not manifest.exists():
        return []
    entries = json.loads(manifest.read_text())
    return [
        IncomingFile(name=entry["name"], path=folder / entry["file"])
        for entry in entries
        if (folder / entry["file"]).is_file()
    ]


def import_batch_unstage(*, batch: ImportBatch) -> None:
    """Remove a finished batch's staging folder (uploads are not kept twice)."""
    if not batch.staging_path:
        return
    folder = Path(batch.staging_path)
    # Only ever delete inside our own staging root, whatever the row says.
    if folder.resolve().is_relative_to(_staging_root().resolve()):
        shutil.rmtree(folder, ignore_errors=True)


def import_batch_run(
    *,
    batch: ImportBatch,
    files: Iterable[IncomingFile],
    on_progress: ProgressCallback | None = None,
) -> list[FileOutcome]:
    """Import every file (zips expanded) into the archive, recording each outcome on the batch.

    Synchronous. One file's failure never stops the others, and a file whose rows could not
    be written leaves nothing stored. Running a batch again (a redelivered task) is safe:
    what it already stored counts as imported again, nothing is stored twice.
    """
    _batch_start(batch=batch)
    files = list(files)
    outcomes: list[FileOutcome] = []
    expected = len(files)

    def archive_opened(items: int) -> None:
        # An archive counts as one file until it is opened; then as the files it holds.
        nonlocal expected
        expected += items - 1
        ImportBatch.objects.filter(pk=batch.pk, files_total__lt=expected).update(
            files_total=expected
        )

    scratch_root = Path(settings.DATA_DIR) / "tmp"
    scratch_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch_root) as scratch:
        for item in _expand_all(files, dest=Path(scratch), on_open=archive_opened):
            outcome = _item_import(batch=batch, item=item)
            outcomes.append(outcome)
            if on_progress is not None:
                on_progress(outcome)
    ImportBatch.objects.filter(pk=batch.pk).update(
        status=ImportBatch.Status.DONE, finished_at=timezone.now()
    )
    batch.refresh_from_db()
    return outcomes


BUILT_CHUNK = 100


def import_batch_run_built(
    *,
    batch: ImportBatch,
    items: Iterable[IncomingFile | FileOutcome],
    on_progress: ProgressCallback | None = None,
) -> list[FileOutcome]:
    """``import_batch_run`` for DICOM objects this server built itself, one file each (a
    research dataset's converted images): no archive to expand, every other step the same.
    An item that is already a ``FileOutcome`` (an image refused before it became DICOM) is
    recorded as it is. The caller marks the batch finished (``import_batch_finish``).

    Each file passes every check and is stored on its own, as ever; the rows of up to
    ``BUILT_CHUNK`` files are then written together (``_rows_create_many``) and the batch's
    counts once per chunk: tens of thousands of images would otherwise wait on a score of
    round trips to the database each. A chunk that races another import is written file by
    file instead, with the per-file rules for races."""
    _batch_start(batch=batch)
    outcomes: list[FileOutcome] = []
    chunk: list[_Stored] = []
    ready: list[FileOutcome] = []

    def flush() -> None:
        written = _chunk_rows_write(batch=batch, chunk=chunk)
        done = ready + written
        _batch_record_many(batch=batch, outcomes=done)
        outcomes.extend(done)
        if on_progress is not None:
            for outcome in done:
                on_progress(outcome)
        chunk.clear()
        ready.clear()

    for item in items:
        if isinstance(item, FileOutcome):
            ready.append(item)
        else:
            stored = _file_store_guarded(batch=batch, incoming=item)
            if isinstance(stored, FileOutcome):
                ready.append(stored)
            elif any(c.base.sop_instance_uid == stored.base.sop_instance_uid for c in chunk):
                # The same object twice in one chunk: the second is what a rerun would see.
                ready.append(replace(stored.base, status="duplicate", reason="already imported"))
            else:
                chunk.append(stored)
        if len(chunk) + len(ready) >= BUILT_CHUNK:
            flush()
    flush()
    return outcomes


def _file_store_guarded(*, batch: ImportBatch, incoming: IncomingFile) -> _Stored | FileOutcome:
    try:
        return _file_store(batch=batch, incoming=incoming)
    except Exception as exc:  # never let one file stop the batch
        return _internal_error_outcome(batch=batch, incoming=incoming, exc=exc)


def _chunk_rows_write(*, batch: ImportBatch, chunk: list[_Stored]) -> list[FileOutcome]:
    if not chunk:
        return []
    try:
        return _rows_create_many(batch=batch, chunk=chunk)
    except IntegrityError:
        written: list[FileOutcome] = []
        for stored in chunk:
            try:
                written.append(_stored_rows_commit(batch=batch, stored=stored))
            except Exception as exc:
                logger.error(
                    "Unexpected error importing one file of batch %s: %s",
                    batch.public_id,
                    _error_summary(exc),
                )
                written.append(
                    replace(
                        stored.base,
                        status="rejected",
                        reason="an internal error stopped this file; it was not imported",
                    )
                )
        return written


def import_batch_open(
    *,
    source: ImportBatch.Source,
    created_by: AbstractBaseUser | AnonymousUser | None,
    origin: str = "",
) -> ImportBatch:
    """Start a batch whose files arrive one at a time (a DICOM association), running at once.

    Files go in with ``import_batch_add`` and ``import_batch_finish`` closes it.
    """
    batch = ImportBatch.objects.create(
        source=source, created_by=acting_user(created_by), origin=origin[:128]
    )
    _batch_start(batch=batch)
    return batch


def import_batch_add(*, batch: ImportBatch, incoming: IncomingFile) -> list[FileOutcome]:
    """Import one more upload into a running batch; record and return each file's outcome.

    The same steps as ``import_batch_run`` (size limits, zips expanded, safety checks,
    de-identification, quarantine, idempotency), so a file is judged alike either way. One
    DICOM object gives one outcome.
    """
    if batch.status != ImportBatch.Status.RUNNING:
        raise ApplicationError("This import has finished; start a new one.", code="import_finished")
    scratch_root = Path(settings.DATA_DIR) / "tmp"
    scratch_root.mkdir(parents=True, exist_ok=True)
    outcomes: list[FileOutcome] = []
    with tempfile.TemporaryDirectory(dir=scratch_root) as scratch:
        # Counted per item as it arrives: a pushed file is one item, an archive one per member.
        for item in _expand_all([incoming], dest=Path(scratch), on_open=lambda _items: None):
            ImportBatch.objects.filter(pk=batch.pk).update(files_total=F("files_total") + 1)
            outcomes.append(_item_import(batch=batch, item=item))
    return outcomes


def import_batch_finish(*, batch: ImportBatch) -> None:
    """Close a running batch opened with ``import_batch_open`` (a finished one stays as is)."""
    ImportBatch.objects.filter(pk=batch.pk, status=ImportBatch.Status.RUNNING).update(
        status=ImportBatch.Status.DONE, finished_at=timezone.now()
    )
    batch.refresh_from_db()


def import_batch_fail(*, batch: ImportBatch, message: str) -> None:
    """Mark a batch failed as a whole (e.g. its staged files vanished); ``message`` is shown."""
    ImportBatch.objects.filter(pk=batch.pk).update(
        status=ImportBatch.Status.FAILED, finished_at=timezone.now(), error_message=message
    )
    batch.refresh_from_db()


def _batch_start(*, batch: ImportBatch) -> None:
    # A rerun starts its counts afresh: the files it already stored are recognised as its own
    # (Instance.import_batch) and counted as imported again, so the totals stay true.
    with transaction.atomic():
        ImportProblem.objects.filter(batch=batch).delete()
        ImportBatch.objects.filter(pk=batch.pk).update(
            status=ImportBatch.Status.RUNNING,
            started_at=timezone.now(),
            finished_at=None,
            files_done=0,
            imported_count=0,
            duplicate_count=0,
            quarantined_count=0,
            failed_count=0,
            error_message="",
        )
    batch.refresh_from_db()


_COUNTER = {
    "imported": "imported_count",
    "duplicate": "duplicate_count",
    "quarantined": "quarantined_count",
    "rejected": "failed_count",
}


def _batch_record(*, batch: ImportBatch, outcome: FileOutcome) -> None:
    with transaction.atomic():
        counter = _COUNTER[outcome.status]
        ImportBatch.objects.filter(pk=batch.pk).update(
            files_done=F("files_done") + 1, **{counter: F(counter) + 1}
        )
        if outcome.status in ("rejected", "quarantined"):
            kind = (
                ImportProblem.Kind.QUARANTINED
                if outcome.status == "quarantined"
                else ImportProblem.Kind.REJECTED
            )
            ImportProblem.objects.create(
                batch=batch, file_name=outcome.name[:512], kind=kind, reason=outcome.reason
            )


def _batch_record_many(*, batch: ImportBatch, outcomes: list[FileOutcome]) -> None:
    """``_batch_record`` for a chunk of outcomes: one update of the counts, one insert."""
    if not outcomes:
        return
    with transaction.atomic():
        counts: dict[str, Any] = {}
        for outcome in outcomes:
            counter = _COUNTER[outcome.status]
            counts[counter] = counts.get(counter, 0) + 1
        ImportBatch.objects.filter(pk=batch.pk).update(
            files_done=F("files_done") + len(outcomes),
            **{counter: F(counter) + n for counter, n in counts.items()},
        )
        ImportProblem.objects.bulk_create(
            [
                ImportProblem(
                    batch=batch,
                    file_name=outcome.name[:512],
                    kind=ImportProblem.Kind.QUARANTINED
                    if outcome.status == "quarantined"
                    else ImportProblem.Kind.REJECTED,
                    reason=outcome.reason,
                )
                for outcome in outcomes
                if outcome.status in ("rejected", "quarantined")
            ]
        )


def _expand_all(
    files: Iterable[IncomingFile], *, dest: Path, on_open: Callable[[int], None]
) -> Iterator[IncomingFile | FileOutcome]:
    """The files of one upload, archives expanded under one budget, one member at a time:
    each expanded member is removed as soon as the caller asks for the next item, so the
    scratch folder never holds more than one (a 446 KB upload once expanded to 416 MB)."""
    budget = archives.UploadBudget.from_settings()
    for index, incoming in enumerate(files):
        try:
            target = dest / f"{index:06d}"
            target.mkdir()
            for item in archives.expand_upload(
                incoming, dest=target, budget=budget, on_open=on_open
            ):
                try:
                    yield item
                finally:
                    if isinstance(item, IncomingFile) and item.path.parent == target:
                        item.path.unlink(missing_ok=True)
        except Exception as exc:
            # The archive reader is a parser of hostile input: whatever it trips on is this
            # upload's problem, not the batch's.
            logger.error("Could not expand one upload: %s", _error_summary(exc))
            yield FileOutcome(
                name=incoming.name, status="rejected", reason="could not be read as a file or zip"
            )


def _item_import(*, batch: ImportBatch, item: IncomingFile | FileOutcome) -> FileOutcome:
    outcome = (
        item if isinstance(item, FileOutcome) else _file_import_guarded(batch=batch, incoming=item)
    )
    _batch_record(batch=batch, outcome=outcome)
    return outcome


def _file_import_guarded(*, batch: ImportBatch, incoming: IncomingFile) -> FileOutcome:
    try:
        return instance_import(batch=batch, incoming=incoming)
    except Exception as exc:  # never let one file stop the batch
        return _internal_error_outcome(batch=batch, incoming=incoming, exc=exc)


def _internal_error_outcome(
    *, batch: ImportBatch, incoming: IncomingFile, exc: BaseException
) -> FileOutcome:
    """The outcome of a file whose import failed unexpectedly: logged (no patient data: the
    error's type and where it was raised), the file named as not imported, the batch going on."""
    logger.error(
        "Unexpected error importing one file of batch %s: %s",
        batch.public_id,
        _error_summary(exc),
    )
    return FileOutcome(
        name=incoming.name,
        status="rejected",
        reason="an internal error stopped this file; it was not imported",
    )


def _error_summary(exc: BaseException) -> str:
    """Exception type and where it was raised, never its message: parsers and libraries put
    attribute values (names, dates, IDs) into their messages."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"


@dataclass(frozen=True)
class _Prepared:
    dataset: Dataset
    deid: deid.DeidResult | None
    quarantine_reason: str


def instance_import(*, batch: ImportBatch, incoming: IncomingFile) -> FileOutcome:
    """Parse, de-identify, store and index one file; record its rows in one transaction."""
    stored = _file_store(batch=batch, incoming=incoming)
    if isinstance(stored, FileOutcome):
        return stored
    return _stored_rows_commit(batch=batch, stored=stored)


@dataclass(frozen=True)
class _Stored:
    """One file past every check, de-identified, indexed and in storage, its rows not yet
    written."""

    incoming: IncomingFile
    prepared: _Prepared
    base: FileOutcome
    stored_name: str
    size: int
    digest: str
    frame_ranges: list[list[list[int]]]
    dicom_json: dict[str, Any]
    number_of_frames: int


def _file_store(*, batch: ImportBatch, incoming: IncomingFile) -> _Stored | FileOutcome:
    """Every step of an import but the rows: limits and safety scan, de-identification,
    quarantine decision, frame index, storage. An outcome when the file stops here."""
    try:
        # Decoding the first frame costs a fraction of a second per compressed image, and
        # turns corrupt pixels into a named refusal here instead of a blank viewer later.
        original = dicom_safety.read_untrusted(incoming.path, decode_check=True)
    except dicom_safety.UnsafeDicomError as exc:
        return FileOutcome(name=incoming.name, status="rejected", reason=exc.reason)
    own = _own_instance_get(original)
    if own is not None:
        return FileOutcome(
            name=incoming.name,
            status="duplicate",
            reason="already imported (this archive's own de-identified instance)",
            sop_instance_uid=own.sop_instance_uid,
            sop_class_uid=own.sop_class_uid,
            study_instance_uid=own.series.study.study_instance_uid,
            series_instance_uid=own.series.series_instance_uid,
        )
    prepared_or_outcome = _prepare(incoming=incoming, original=original)
    if isinstance(prepared_or_outcome, FileOutcome):
        return prepared_or_outcome
    prepared = prepared_or_outcome
    ds = prepared.dataset
    sop_uid = str(ds.SOPInstanceUID)
    base = FileOutcome(
        name=incoming.name,
        status="imported",
        sop_instance_uid=sop_uid,
        sop_class_uid=str(ds.SOPClassUID),
        study_instance_uid=str(ds.StudyInstanceUID),
        series_instance_uid=str(ds.SeriesInstanceUID),
    )
    existing = (
        Instance.objects.filter(sop_instance_uid=sop_uid).only("import_batch_id", "status").first()
    )
    if existing is not None:
        return _already_stored(base=base, existing=existing, batch=batch, prepared=prepared)

    scratch = Path(settings.DATA_DIR) / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=scratch, suffix=".dcm") as tmp:
        ds.save_as(tmp.name, enforce_file_format=True)
        local = Path(tmp.name)
        try:
            index = dicom_index.index_stored_file(local, ds)
        except dicom_index.FrameIndexError as exc:
            return replace(base, status="rejected", reason=_frame_error_reason(exc))
        size = local.stat().st_size
        digest = _sha256(local)
        storage_name = _storage_name(ds)
        # A leftover from a crash between storing and committing has no row: replace it.
        if default_storage.exists(storage_name):
            default_storage.delete(storage_name)
        with local.open("rb") as handle:
            stored_name = default_storage.save(storage_name, File(handle))
    return _Stored(
        incoming=incoming,
        prepared=prepared,
        base=base,
        stored_name=stored_name,
        size=size,
        digest=digest,
        frame_ranges=[
            [[int(offset), int(length)] for offset, length in frame] for frame in index.frame_ranges
        ],
        dicom_json=index.dicom_json,
        number_of_frames=index.number_of_frames,
    )


def _stored_rows_commit(*, batch: ImportBatch, stored: _Stored) -> FileOutcome:
    """Write one stored file's rows in their own transaction (its file goes if they fail)."""
    base, prepared, stored_name = stored.base, stored.prepared, stored.stored_name
    try:
        with transaction.atomic():
            instance = _rows_create(
                batch=batch,
                incoming=stored.incoming,
                prepared=prepared,
                stored_name=stored_name,
                size=stored.size,
                digest=stored.digest,
                frame_ranges=stored.frame_ranges,
                dicom_json=stored.dicom_json,
                number_of_frames=stored.number_of_frames,
            )
    except IntegrityError:
        # Another import stored the same SOP instance between our check and our insert;
        # any other constraint is a real failure of this file. The winner's file has the
        # same name (UIDs name it): it stays.
        if Instance.objects.filter(sop_instance_uid=base.sop_instance_uid).exists():
            if not Instance.objects.filter(file=stored_name).exists():
                default_storage.delete(stored_name)
            return replace(base, status="duplicate", reason="already imported")
        default_storage.delete(stored_name)
        raise
    except ApplicationError as exc:
        default_storage.delete(stored_name)
        return replace(base, status="rejected", reason=exc.message)
    except BaseException:
        default_storage.delete(stored_name)
        raise
    if instance.status == Instance.Status.QUARANTINED:
        return replace(base, status="quarantined", reason=prepared.quarantine_reason)
    return base


def _own_instance_get(ds: Dataset) -> Instance | None:
    """The stored instance ``ds`` is a copy of, when it is one of this archive's own
    de-identified instances pushed back (a PACS or Orthanc round trip): de-identifying it
    again would store it a second time, under new UIDs and a new pseudonym. Its UIDs are
    keyed hashes only this installation makes, so matching the stored instance, series and
    study is proof enough."""
    if str(ds.get("PatientIdentityRemoved", "")).upper() != "YES":
        return None
    return (
        Instance.objects.select_related("series__study")
        .filter(
            sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
            series__series_instance_uid=str(ds.get("SeriesInstanceUID", "")),
            series__study__study_instance_uid=str(ds.get("StudyInstanceUID", "")),
        )
        .first()
    )


def _frame_error_reason(exc: dicom_index.FrameIndexError) -> str:
    return f"its image frames cannot be located: {exc.reason}"


def _already_stored(
    *, base: FileOutcome, existing: Instance, batch: ImportBatch, prepared: _Prepared
) -> FileOutcome:
    if existing.import_batch_id == batch.pk:
        # As stored: a dataset import's released conversions are not waiting.
        if existing.status == Instance.Status.QUARANTINED:
            return replace(base, status="quarantined", reason=prepared.quarantine_reason)
        return base
    return replace(base, status="duplicate", reason="already imported")


def _prepare(*, incoming: IncomingFile, original: Dataset) -> _Prepared | FileOutcome:
    reason = dicom_safety.quarantine_reason(original) or ""
    if not settings.RADREVIEW_DEID_ENABLED:
        return _Prepared(dataset=original, deid=None, quarantine_reason=reason)
    result = deid.deidentify(original, secret=_deid_secret())
    residual = deid.residual_phi(result.dataset)
    if residual:
        # Keywords only: the values are what must not leak.
        return FileOutcome(
            name=incoming.name,
            status="rejected",
            reason="identifying attributes remain after de-identification: "
            + ", ".join(sorted(set(residual))[:10]),
        )
    return _Prepared(dataset=result.dataset, deid=result, quarantine_reason=reason)


def _deid_secret() -> bytes:
    return str(settings.RADREVIEW_DEID_SECRET).encode()


def _storage_name(ds: Dataset) -> str:
    # De-identified UIDs only: original file names can carry patient names.
    return f"dicom/{ds.StudyInstanceUID}/{ds.SOPInstanceUID}.dcm"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _rows_create(
    *,
    batch: ImportBatch,
    incoming: IncomingFile,
    prepared: _Prepared,
    stored_name: str,
    size: int,
    digest: str,
    frame_ranges: list[list[list[int]]],
    dicom_json: dict[str, Any],
    number_of_frames: int,
) -> Instance:
    _index_validate(frame_ranges=frame_ranges, dicom_json=dicom_json)
    ds = prepared.dataset
    study = _study_get_or_create(ds=ds, result=prepared.deid, dataset=incoming.dataset)
    series, series_created = Series.objects.get_or_create(
        series_instance_uid=str(ds.SeriesInstanceUID), defaults=_series_fields(ds, study)
    )
    _series_check(series=series, study=study)
    if series_created:
        _study_modalities_refresh(study=study)
    instance = _instance_row(
        batch=batch,
        incoming=incoming,
        prepared=prepared,
        series=series,
        stored_name=stored_name,
        size=size,
        digest=digest,
        frame_ranges=frame_ranges,
        dicom_json=dicom_json,
        number_of_frames=number_of_frames,
    )
    instance.save(force_insert=True)
    if prepared.deid is not None:
        _pseudonyms_record(result=prepared.deid, study=study)
    return instance


def _index_validate(*, frame_ranges: list[list[list[int]]], dicom_json: dict[str, Any]) -> None:
    try:
        schemas.frame_ranges_validate(frame_ranges)
        schemas.dicom_json_validate(dicom_json)
    except ValidationError as exc:
        # The import's reason for the file (schema messages name places, never values).
        raise ApplicationError(
            f"its frame index or header cannot be stored: {exc.messages[0]}",
            code=exc.code or "invalid_index",
        ) from None


def _series_fields(ds: Dataset, study: Study) -> dict[str, Any]:
    return {
        "study": study,
        "modality": _text(ds, "Modality", 16),
        "series_number": _int(ds, "SeriesNumber"),
        "description": _text(ds, "SeriesDescription", 256),
        "body_part": _text(ds, "BodyPartExamined", 64),
    }


def _series_check(*, series: Series, study: Study) -> None:
    if series.study_id != study.pk:
        raise ApplicationError(
            "its SeriesInstanceUID already belongs to another study in the archive",
            code="series_of_another_study",
        )


def _instance_row(
    *,
    batch: ImportBatch,
    incoming: IncomingFile,
    prepared: _Prepared,
    series: Series,
    stored_name: str,
    size: int,
    digest: str,
    frame_ranges: list[list[list[int]]],
    dicom_json: dict[str, Any],
    number_of_frames: int,
) -> Instance:
    """The Instance row of one stored file (not saved), with its quarantine decision."""
    ds = prepared.dataset
    quarantined = bool(prepared.quarantine_reason)
    released_by = incoming.dataset.released_by if incoming.dataset is not None else None
    if (
        quarantined
        and released_by is not None
        and dicom_safety.is_secondary_capture(str(ds.SOPClassUID))
    ):
        # A dataset import's own conversions, released by the coordinator who asked for it
        # (``DatasetOrigin``): recorded as reviewed by them, reason kept, as an approval is.
        quarantined = False
    reviewed = bool(prepared.quarantine_reason) and not quarantined
    return Instance(
        series=series,
        sop_instance_uid=str(ds.SOPInstanceUID),
        sop_class_uid=str(ds.SOPClassUID),
        transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID),
        instance_number=_int(ds, "InstanceNumber"),
        rows=int(ds.Rows),
        columns=int(ds.Columns),
        number_of_frames=max(number_of_frames, 1),
        bits_allocated=int(ds.get("BitsAllocated", 16) or 16),
        view_position=_text(ds, "ViewPosition", 16),
        position=slice_position(ds),
        status=Instance.Status.QUARANTINED if quarantined else Instance.Status.AVAILABLE,
        quarantine_reason=prepared.quarantine_reason[:256],
        quarantine_reviewed_by=released_by if reviewed else None,
        quarantine_reviewed_at=timezone.now() if reviewed else None,
        import_batch=batch,
        file=stored_name,
        file_size=size,
        sha256=digest,
        frame_ranges=frame_ranges,
        dicom_json=dicom_json,
    )


def _rows_create_many(*, batch: ImportBatch, chunk: list[_Stored]) -> list[FileOutcome]:
    """The rows of many stored files in one transaction, a few statements for all: the same
    rows and rules as ``_rows_create`` file by file (schemas, one study per series, the
    quarantine decision, pseudonyms). Raises IntegrityError when another import raced it; the
    caller then writes the chunk file by file."""
    outcomes: list[FileOutcome | None] = [None] * len(chunk)
    usable: list[int] = []
    for position, stored in enumerate(chunk):
        try:
            _index_validate(frame_ranges=stored.frame_ranges, dicom_json=stored.dicom_json)
        except ApplicationError as exc:
            outcomes[position] = replace(stored.base, status="rejected", reason=exc.message)
            continue
        usable.append(position)
    with transaction.atomic():
        first_of_study: dict[str, _Stored] = {}
        for position in usable:
            first_of_study.setdefault(chunk[position].base.study_instance_uid, chunk[position])
        studies = Study.objects.in_bulk(list(first_of_study), field_name="study_instance_uid")
        missing = [
            Study(
                study_instance_uid=uid,
                **_study_fields(
                    ds=stored.prepared.dataset,
                    result=stored.prepared.deid,
                    dataset=stored.incoming.dataset,
                ),
            )
            for uid, stored in first_of_study.items()
            if uid not in studies
        ]
        if missing:
            Study.objects.bulk_create(missing)
            studies.update({s.study_instance_uid: s for s in missing})
        first_of_series: dict[str, _Stored] = {}
        for position in usable:
            first_of_series.setdefault(chunk[position].base.series_instance_uid, chunk[position])
        series_rows = Series.objects.in_bulk(
            list(first_of_series), field_name="series_instance_uid"
        )
        new_series = [
            Series(
                series_instance_uid=uid,
                **_series_fields(stored.prepared.dataset, studies[stored.base.study_instance_uid]),
            )
            for uid, stored in first_of_series.items()
            if uid not in series_rows
        ]
        if new_series:
            Series.objects.bulk_create(new_series)
            series_rows.update({s.series_instance_uid: s for s in new_series})
        instances: list[Instance] = []
        for position in usable:
            stored = chunk[position]
            study = studies[stored.base.study_instance_uid]
            series = series_rows[stored.base.series_instance_uid]
            try:
                _series_check(series=series, study=study)
            except ApplicationError as exc:
                outcomes[position] = replace(stored.base, status="rejected", reason=exc.message)
                continue
            instance = _instance_row(
                batch=batch,
                incoming=stored.incoming,
                prepared=stored.prepared,
                series=series,
                stored_name=stored.stored_name,
                size=stored.size,
                digest=stored.digest,
                frame_ranges=stored.frame_ranges,
                dicom_json=stored.dicom_json,
                number_of_frames=stored.number_of_frames,
            )
            instances.append(instance)
            outcomes[position] = (
                replace(stored.base, status="quarantined", reason=stored.prepared.quarantine_reason)
                if instance.status == Instance.Status.QUARANTINED
                else stored.base
            )
        Instance.objects.bulk_create(instances)
        for study in {s.study.pk: s.study for s in new_series}.values():
            _study_modalities_refresh(study=study)
        pseudonyms = [
            PseudonymMapping(
                kind=kind,
                original=original[:256],
                pseudonym=pseudonym[:128],
                date_shift_days=stored.prepared.deid.date_shift_days,
            )
            for position in usable
            if (stored := chunk[position]).prepared.deid is not None
            for kind, original, pseudonym in _pseudonym_pairs(
                stored.prepared.deid, stored.base.study_instance_uid
            )
            if original
        ]
        # The first mapping of an original wins, as get_or_create keeps it file by file.
        PseudonymMapping.objects.bulk_create(pseudonyms, ignore_conflicts=True)
    for position, outcome in enumerate(outcomes):
        if outcome is not None and outcome.status == "rejected":
            default_storage.delete(chunk[position].stored_name)
    return [o for o in outcomes if o is not None]


def _study_get_or_create(
    *, ds: Dataset, result: deid.DeidResult | None, dataset: DatasetOrigin | None
) -> Study:
    uid = str(ds.StudyInstanceUID)
    defaults = _study_fields(ds=ds, result=result, dataset=dataset)
    # Two imports may create the same study at once: get_or_create inserts in a savepoint and
    # reads the winner's row when it loses the race on the unique UID.
    study, _ = Study.objects.get_or_create(study_instance_uid=uid, defaults=defaults)
    return study


def _study_fields(
    *, ds: Dataset, result: deid.DeidResult | None, dataset: DatasetOrigin | None
) -> dict[str, Any]:
    return {
        "dataset_study_id": dataset.study_id[:128] if dataset else "",
        "dataset_name": dataset.name[:128] if dataset else "",
        "patient_pseudonym": (result.patient_pseudonym if result else _text(ds, "PatientID", 64))[
            :64
        ],
        "accession_pseudonym": (
            result.accession_pseudonym if result else _text(ds, "AccessionNumber", 64)
        )[:64],
        "study_date": _date(ds, "StudyDate"),
        "study_time": _text(ds, "StudyTime", 16),
        "description": _text(ds, "StudyDescription", 256),
        "body_part": _text(ds, "BodyPartExamined", 64),
        "patient_sex": _text(ds, "PatientSex", 16),
        "patient_age": _text(ds, "PatientAge", 16),
    }


def _study_modalities_refresh(*, study: Study) -> None:
    modalities = sorted({m for m in study.series.values_list("modality", flat=True) if m})
    Study.objects.filter(pk=study.pk).update(modalities="\\".join(modalities)[:64])


def _pseudonym_pairs(result: deid.DeidResult, study_uid: str) -> list[tuple[str, str, str]]:
    return [
        (PseudonymMapping.Kind.PATIENT_ID, result.original_patient_id, result.patient_pseudonym),
        (PseudonymMapping.Kind.ACCESSION, result.original_accession, result.accession_pseudonym),
        (PseudonymMapping.Kind.STUDY_UID, result.original_study_uid, study_uid),
    ]


def _pseudonyms_record(*, result: deid.DeidResult, study: Study) -> None:
    for kind, original, pseudonym in _pseudonym_pairs(result, study.study_instance_uid):
        if not original:
            continue
        PseudonymMapping.objects.get_or_create(
            kind=kind,
            original=original[:256],
            defaults={"pseudonym": pseudonym[:128], "date_shift_days": result.date_shift_days},
        )


def slice_position(ds: Dataset) -> float | None:
    """Where a slice lies along its stack: ImagePositionPatient projected on the slice normal
    (so oblique and feet-first stacks order correctly), else InstanceNumber."""
    try:
        position = [float(v) for v in ds.ImagePositionPatient]
        orientation = [float(v) for v in ds.ImageOrientationPatient]
    except (AttributeError, TypeError, ValueError):
        position, orientation = [], []
    if len(position) == 3 and len(orientation) == 6:
        row, col = orientation[:3], orientation[3:]
        normal = (
            row[1] * col[2] - row[2] * col[1],
            row[2] * col[0] - row[0] * col[2],
            row[0] * col[1] - row[1] * col[0],
        )
        if any(normal):
            return float(sum(p * n for p, n in zip(position, normal, strict=True)))
    number = _int(ds, "InstanceNumber")
    return float(number) if number is not None else None


def _text(ds: Dataset, keyword: str, limit: int) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    return str(value).strip()[:limit]


def _int(ds: Dataset, keyword: str) -> int | None:
    value = ds.get(keyword)
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _date(ds: Dataset, keyword: str) -> date | None:
    raw = _text(ds, keyword, 16)
    if len(raw) < 8 or not raw[:8].isdigit():
        return None
    try:
        return date(int(raw[:4]), int(raw[4:6]), int(raw[6:8]))
    except ValueError:
        return None


def _display_name(name: str) -> str:
    # Browsers send folder uploads' relative paths; keep them for messages, never as paths.
    return name.replace("\\", "/").lstrip("/")[:512] or "unnamed"


@transaction.atomic
def instance_quarantine_approve(
    *, instance: Instance, reviewed_by: AbstractBaseUser | AnonymousUser | None
) -> Instance:
    """Release a quarantined instance to readers after a coordinator checked its pixels
    (``reviewed_by`` None: a trusted seed script, e.g. the demo's known-clean samples)."""
    locked = Instance.objects.select_for_update().get(pk=instance.pk)
    if locked.status != Instance.Status.QUARANTINED:
        raise ApplicationError("This image is not waiting for review.", code="not_quarantined")
    locked.status = Instance.Status.AVAILABLE
    locked.quarantine_reviewed_by = acting_user(reviewed_by)
    locked.quarantine_reviewed_at = timezone.now()
    locked.save(
        update_fields=["status", "quarantine_reviewed_by", "quarantine_reviewed_at", "updated_at"]
    )
    return locked


def instance_quarantine_reject(
    *, instance: Instance, reviewed_by: AbstractBaseUser | AnonymousUser | None
) -> None:
    """Delete a quarantined instance (its file goes once the deletion commits)."""
    with transaction.atomic():
        locked = Instance.objects.select_for_update().select_related("series").get(pk=instance.pk)
        if locked.status != Instance.Status.QUARANTINED:
            raise ApplicationError("This image is not waiting for review.", code="not_quarantined")
        name = locked.file.name or ""
        series = locked.series
        locked.delete()
        # An emptied series goes; the study stays, since reports may hang on it.
        if not series.instances.exists():
            study = series.study
            series.delete()
            _study_modalities_refresh(study=study)
        if name:
            transaction.on_commit(lambda: default_storage.delete(name))
    logger.info("Quarantined instance rejected by user %s", getattr(reviewed_by, "pk", None))
