"""Research datasets without DICOM: PNG/JPEG studies imported through the one import path.

A dataset (a folder in one of ``dataset_layouts.LAYOUTS``) becomes one import batch: each image
is built into a Secondary Capture object (``raster``) and handed to ``import_batch_run_built``,
which judges it exactly as an uploaded DICOM file (safety scan, de-identification, quarantine,
idempotency); the imaging study records the dataset's name and study id, by which candidate
reports and predictions find it. The original report and the clinical context, where the layout
carries them, go in through the reports service (versioned like every report) once the study's
images are in.

Quarantine. Every secondary capture waits for a coordinator, because screenshots and scanned
documents carry text in their pixels. A dataset conversion is a secondary capture by class but
not by origin: its header is ours and its pixels are a published research dataset's, which the
publisher de-identified (MIMIC-CXR, IU X-ray and CheXpert Plus black out burned-in text). The
rule stays the same by default: the images wait, reviewed one by one. A coordinator who asks for
the import may instead confirm, for the whole dataset, that its publisher removed identifiers
from the pixels (``release``): the images are then stored as reviewed by that coordinator at
import, with the quarantine reason kept on each, as a one-by-one approval records it. Nobody
else can release them (the command needs a named coordinator for it), and images of any other
kind in the same path are untouched.

Idempotent: object UIDs come from (dataset, study id, file), so a second import of the same
files stores nothing new and a changed report becomes the next version of the original.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from reviewapp.core.errors import ApplicationError
from reviewapp.core.roles import Role, user_has_role
from reviewapp.imaging.ingest import archives, dataset_layouts, raster, services
from reviewapp.imaging.ingest.types import DatasetOrigin, FileOutcome, IncomingFile
from reviewapp.imaging.models import ImportBatch, ImportProblem, Study

logger = logging.getLogger(__name__)

OPTIONS_FILE = "dataset.json"
DATASET_NAME_MAX = 64
REPORTS_CHUNK = 500


@dataclass(frozen=True)
class DatasetOptions:
    """What the coordinator asked for; kept beside a staged upload for the worker."""

    name: str
    layout: str
    modality: str = "DX"
    table: str = ""  # the manifest / JSON / metadata file inside the folder, if not the usual
    release: bool = False

    def validated(self) -> DatasetOptions:
        name = " ".join(self.name.split())
        if not name or len(name) > DATASET_NAME_MAX:
            raise ValidationError(
                f"Name the dataset (1 to {DATASET_NAME_MAX} characters), e.g. MIMIC-CXR test.",
                code="dataset_name",
            )
        if self.layout not in dataset_layouts.LAYOUTS:
            raise ValidationError(
                f"Choose a layout: {', '.join(dataset_layouts.LAYOUTS)}.", code="dataset_layout"
            )
        if self.modality not in raster.MODALITIES:
            raise ValidationError(
                f"Choose a modality: {', '.join(raster.MODALITIES)}.", code="dataset_modality"
            )
        if self.table and (
            "/" in self.table.replace("\\", "/").strip("/") or self.table.startswith(".")
        ):
            raise ValidationError(
                "Name the table file alone, without a folder.", code="dataset_table"
            )
        return DatasetOptions(
            name=name,
            layout=self.layout,
            modality=self.modality,
            table=self.table.strip(),
            release=self.release,
        )


@dataclass
class DatasetImportResult:
    batch: ImportBatch
    studies: int = 0  # studies the layout named with at least one usable image
    studies_stored: int = 0  # of those, studies whose images are in the archive
    images: int = 0
    reports_created: int = 0
    reports_versioned: int = 0
    reports_unchanged: int = 0
    contexts_set: int = 0
    outcomes: list[FileOutcome] = field(default_factory=list)
    problems: list[dataset_layouts.LayoutProblem] = field(default_factory=list)


def dataset_import_run(
    *,
    batch: ImportBatch,
    root: Path,
    options: DatasetOptions,
    requested_by: AbstractBaseUser | AnonymousUser | None,
    study_ids: set[str] | None = None,
    on_progress: Callable[[FileOutcome], None] | None = None,
) -> DatasetImportResult:
    """Import the dataset in the folder ``root`` into ``batch`` (synchronous).

    Every image the layout names is judged on its own: a bad row or file is recorded on the
    batch by name with its reason, the good ones import. ``release`` (see the module doc)
    needs ``requested_by`` to be a coordinator: the command and the API pass the person.
    """
    options = options.validated()
    released_by = _releaser(user=requested_by, options=options)
    table = root / options.table if options.table else None
    try:
        read = dataset_layouts.layout_read(
            layout=options.layout, root=root, table=table, study_ids=study_ids
        )
    except dataset_layouts.LayoutRefused as exc:
        services.import_batch_fail(batch=batch, message=str(exc))
        raise ApplicationError(str(exc), code="dataset_unreadable") from exc
    result = DatasetImportResult(batch=batch, problems=read.problems, studies=len(read.studies))
    result.images = read.images
    ImportBatch.objects.filter(pk=batch.pk).update(
        files_total=read.images + len(read.problems),
        origin=f"dataset {options.name} ({options.layout})"[:128],
    )
    scratch_root = Path(settings.DATA_DIR) / "tmp"
    scratch_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch_root) as scratch:
        items = _items(
            read=read,
            options=options,
            released_by=released_by,
            scratch=Path(scratch),
        )
        result.outcomes = services.import_batch_run_built(
            batch=batch, items=items, on_progress=on_progress
        )
    _reports_store(read=read, options=options, requested_by=requested_by, result=result)
    services.import_batch_finish(batch=batch)
    batch.refresh_from_db()
    logger.info(
        "Dataset import %s: %d studies, %d images, %d reports created, %d versioned",
        batch.public_id,
        result.studies,
        result.images,
        result.reports_created,
        result.reports_versioned,
    )
    return result


def _releaser(
    *, user: AbstractBaseUser | AnonymousUser | None, options: DatasetOptions
) -> User | None:
    """Who releases the images from quarantine at import (None: they wait), or refuse."""
    if not options.release:
        return None
    person = services.acting_user(user)
    if person is None or not user_has_role(person, Role.COORDINATOR):
        raise ApplicationError(
            "Only a coordinator can confirm that a dataset's pixels are de-identified.",
            code="release_needs_coordinator",
        )
    return person


def _items(
    *,
    read: dataset_layouts.LayoutRead,
    options: DatasetOptions,
    released_by: User | None,
    scratch: Path,
) -> Iterator[IncomingFile | FileOutcome]:
    """Each layout problem as a refusal, then each image built into a DICOM file in
    ``scratch`` (removed once the import path has taken it)."""
    for problem in read.problems:
        yield FileOutcome(name=problem.where[:512], status="rejected", reason=problem.reason)
    target = scratch / "object.dcm"
    for study in read.studies:
        origin = DatasetOrigin(
            name=options.name,
            study_id=study.study_id,
            released_by=released_by,
        )
        series_keys: dict[str, int] = {}
        counts: dict[str, int] = {}
        for image in study.images:
            # One series per view: views a dataset does not label share one series.
            key = raster.view_position(image.view) or image.view.strip().lower()
            number = series_keys.setdefault(key, len(series_keys) + 1)
            counts[key] = counts.get(key, 0) + 1
            meta = raster.RasterMeta(
                dataset=options.name,
                study_id=study.study_id,
                file_key=image.file_key,
                view=image.view,
                series_key=key,
                series_number=number,
                instance_number=counts[key],
                patient_id=study.patient_id,
                study_date=study.study_date,
                study_time=study.study_time,
                laterality=image.laterality,
                patient_sex=study.patient_sex,
                modality=options.modality,
                body_part="CHEST" if options.layout != "manifest" else "",
            )
            try:
                ds = raster.dicom_from_raster(image.path, meta=meta)
            except raster.RasterRefused as exc:
                yield FileOutcome(name=image.file_key[:512], status="rejected", reason=str(exc))
                continue
            ds.save_as(target, enforce_file_format=True)
            del ds
            try:
                yield IncomingFile(name=image.file_key[:512], path=target, dataset=origin)
            finally:
                target.unlink(missing_ok=True)


def _reports_store(
    *,
    read: dataset_layouts.LayoutRead,
    options: DatasetOptions,
    requested_by: AbstractBaseUser | AnonymousUser | None,
    result: DatasetImportResult,
) -> None:
    """The original report and clinical context of each study whose images are stored."""
    # Imported here: the reports app builds on the archive, not the other way round.
    from reviewapp.reports.services import (
        OriginalText,
        reports_original_upsert_many,
        study_contexts_set_many,
    )

    stored: dict[str, str] = {}
    names = {
        image.file_key[:512]: study.study_id for study in read.studies for image in study.images
    }
    for outcome in result.outcomes:
        if outcome.study_instance_uid and outcome.status != "rejected":
            study_id = names.get(outcome.name)
            if study_id is not None:
                stored.setdefault(study_id, outcome.study_instance_uid)
    result.studies_stored = len(stored)
    studies = Study.objects.in_bulk(list(stored.values()), field_name="study_instance_uid")
    texts: list[OriginalText] = []
    contexts: list[tuple[Study, dict[str, str | None]]] = []
    for study_row in read.studies:
        uid = stored.get(study_row.study_id)
        study = studies.get(uid) if uid else None
        if study is None:
            if study_row.has_report:
                _note(
                    batch=result.batch,
                    where=f"study {study_row.study_id}",
                    reason="its report was not imported: none of its images was",
                )
            continue
        if study.dataset_study_id != study_row.study_id:
            # Stored earlier from another source under the same UIDs (it cannot be another
            # dataset's: UIDs include the dataset's name): record the id predictions use.
            Study.objects.filter(pk=study.pk).update(
                dataset_study_id=study_row.study_id[:128], dataset_name=options.name[:128]
            )
        if study_row.has_report:
            texts.append(
                OriginalText(
                    study=study, findings=study_row.findings, impression=study_row.impression
                )
            )
        context = {
            "indication": study_row.indication or None,
            "technique": study_row.technique or None,
            "comparison": study_row.comparison or None,
        }
        if any(context.values()):
            contexts.append((study, context))
    source_note = f"dataset {options.name}"
    for start in range(0, len(texts), REPORTS_CHUNK):
        counts = reports_original_upsert_many(
            texts=texts[start : start + REPORTS_CHUNK],
            source_note=source_note,
            author=requested_by,
            change_reason=f"re-imported from {source_note}"[:200],
        )
        result.reports_created += counts["created"]
        result.reports_versioned += counts["versioned"]
        result.reports_unchanged += counts["unchanged"]
    for start in range(0, len(contexts), REPORTS_CHUNK):
        result.contexts_set += study_contexts_set_many(
            contexts=contexts[start : start + REPORTS_CHUNK]
        )


def _note(*, batch: ImportBatch, where: str, reason: str) -> None:
    ImportProblem.objects.create(
        batch=batch, file_name=where[:512], kind=ImportProblem.Kind.REJECTED, reason=reason
    )


# --- uploads (page and API) -------------------------------------------------------------------


def dataset_import_from_upload(
    *,
    created_by: AbstractBaseUser | AnonymousUser,
    upload: UploadedFile,
    options: DatasetOptions,
) -> ImportBatch:
    """Stage a zipped dataset as a new batch and queue it for the worker."""
    options = options.validated()
    _releaser(user=created_by, options=options)
    with transaction.atomic():
        batch = services.import_batch_create(
            source=ImportBatch.Source.DATASET, created_by=created_by, files_total=1
        )
        services.import_batch_stage(batch=batch, uploads=[upload])
        staged = Path(batch.staging_path)
        (staged / OPTIONS_FILE).write_text(json.dumps(options.__dict__))
        ImportBatch.objects.filter(pk=batch.pk).update(
            origin=f"dataset {options.name} ({options.layout})"[:128]
        )
        pk = batch.pk
        transaction.on_commit(lambda: _enqueue(batch_pk=pk))
    batch.refresh_from_db()
    return batch


def _enqueue(*, batch_pk: int) -> None:
    from reviewapp.imaging.tasks import dataset_import_task

    try:
        dataset_import_task.delay(batch_pk=batch_pk)
    except Exception:
        logger.exception("Could not queue dataset import batch %s", batch_pk)
        ImportBatch.objects.filter(pk=batch_pk, status=ImportBatch.Status.PENDING).update(
            status=ImportBatch.Status.FAILED,
            error_message="The import could not be queued (the task queue is unreachable). "
            "Upload the dataset again later, or ask an administrator to check the worker.",
        )


def dataset_import_staged_run(*, batch: ImportBatch) -> DatasetImportResult | None:
    """Run a staged dataset upload (the worker's side): unpack the zip under the upload limits
    into a folder, then import it. None when there is nothing left to run."""
    files = services.import_batch_staged_files(batch=batch)
    options_path = Path(batch.staging_path) / OPTIONS_FILE if batch.staging_path else None
    if not files or options_path is None or not options_path.is_file():
        services.import_batch_fail(
            batch=batch, message="The uploaded dataset is no longer on the server; upload again."
        )
        return None
    options = DatasetOptions(**json.loads(options_path.read_text()))
    scratch_root = Path(settings.DATA_DIR) / "tmp"
    scratch_root.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=scratch_root) as scratch:
            tree, refused = _unpack(files=files, dest=Path(scratch))
            if refused is not None:
                services.import_batch_fail(batch=batch, message=refused)
                return None
            try:
                return dataset_import_run(
                    batch=batch, root=tree, options=options, requested_by=batch.created_by
                )
            except ApplicationError as exc:
                # An unreadable layout, or a release its requester may no longer give.
                services.import_batch_fail(batch=batch, message=exc.message)
                return None
    finally:
        services.import_batch_unstage(batch=batch)


def _unpack(*, files: list[IncomingFile], dest: Path) -> tuple[Path, str | None]:
    """The uploaded zip as a folder tree with its own member names (already checked by the
    archive rules: no absolute paths, no ``..``, no links), or why it cannot be used."""
    members = dest / "members"
    tree = dest / "tree"
    tree.mkdir()
    budget = archives.UploadBudget.from_settings()
    for incoming in files:
        for item in archives.expand_upload(incoming, dest=members, budget=budget):
            if isinstance(item, FileOutcome):
                return tree, f"{item.name}: {item.reason}"
            if item.path.parent != members:
                return tree, "Upload the dataset as one .zip of its folder."
            relative = item.name.split("/", 1)[1] if "/" in item.name else ""
            target = tree / relative
            if not relative or not target.resolve().is_relative_to(tree.resolve()):
                return tree, f"{item.name}: a path in the zip leads outside its folder"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(item.path, target)
    # A zip of the dataset's folder holds that folder: import from inside it.
    entries = [p for p in tree.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0], None
    return tree, None
