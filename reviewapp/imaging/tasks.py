"""Worker adapters for the image archive."""

from __future__ import annotations

import logging

from reviewapp.core.tasks import acks_late_task
from reviewapp.imaging.ingest import datasets, services
from reviewapp.imaging.models import ImportBatch

logger = logging.getLogger(__name__)


@acks_late_task()
def dicom_import_task(*, batch_pk: int) -> None:
    """Import a staged upload batch. A redelivery after the batch finished does nothing; one
    after a crash mid-batch runs it again, which stores nothing twice."""
    batch = ImportBatch.objects.filter(pk=batch_pk).first()
    if batch is None or batch.status in (ImportBatch.Status.DONE, ImportBatch.Status.FAILED):
        return
    files = services.import_batch_staged_files(batch=batch)
    if not files and batch.files_total:
        services.import_batch_fail(
            batch=batch, message="The uploaded files are no longer on the server; upload again."
        )
        return
    services.import_batch_run(batch=batch, files=files)
    services.import_batch_unstage(batch=batch)
    logger.info("Import batch %s finished", batch.public_id)


@acks_late_task()
def dataset_import_task(*, batch_pk: int) -> None:
    """Import a staged research dataset (a zip of PNG/JPEG images and their table). A
    redelivery after it finished does nothing; one after a crash runs it again, which stores
    nothing twice (UIDs come from the dataset's own names)."""
    batch = ImportBatch.objects.filter(pk=batch_pk).first()
    if batch is None or batch.status in (ImportBatch.Status.DONE, ImportBatch.Status.FAILED):
        return
    datasets.dataset_import_staged_run(batch=batch)
    logger.info("Dataset import batch %s finished", batch.public_id)
