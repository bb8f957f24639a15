"""Writes of the analysis app: the audit trail of exports.

An export is recorded before its first byte is produced, so one that fails or is abandoned
half way still shows who asked for what; completion adds the row count.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from reviewapp.analysis.models import ExportAudit
from reviewapp.studies.models import ReaderStudy


@transaction.atomic
def export_audit_start(
    *,
    user: AbstractBaseUser,
    reader_study: ReaderStudy,
    dataset: ExportAudit.Dataset | str,
    format: ExportAudit.Format | str,
    interface: ExportAudit.Interface | str,
) -> ExportAudit:
    """Record that ``user`` started exporting a dataset of a study they may analyse."""
    return ExportAudit.objects.create(
        user=user,  # type: ignore[misc]
        username=user.get_username(),
        reader_study=reader_study,
        reader_study_name=reader_study.name,
        dataset=ExportAudit.Dataset(dataset),
        format=ExportAudit.Format(format),
        interface=ExportAudit.Interface(interface),
    )


def export_audit_finish(*, audit: ExportAudit, row_count: int) -> None:
    """Mark an export complete with the number of rows written."""
    ExportAudit.objects.filter(pk=audit.pk).update(row_count=row_count, completed_at=timezone.now())
