"""Analysis and exports.

Glossary:
- ExportAudit: one export of a reader study's data (ratings, error spans or reports as CSV or
  Parquet, or the sidecar JSON describing them) by one person through one interface. Exports
  carry the unblinding key, so every one is recorded before its first byte leaves, and marked
  complete with its row count (1 for a sidecar) when the last one has.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from reviewapp.core.models import TimestampedModel
from reviewapp.studies.models import ReaderStudy


class ExportAudit(TimestampedModel):
    class Dataset(models.TextChoices):
        RATINGS = "ratings", "Ratings (one row per reader x case x question)"
        SPANS = "spans", "Error spans (one row per marked passage)"
        REPORTS = "reports", "Reports shown (one row per pinned rendering, with its SHA-256)"
        SIDECAR = "sidecar", "Sidecar (JSON: rules, CI methods, row counts, conventions)"

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        PARQUET = "parquet", "Parquet"
        JSON = "json", "JSON"

    class Interface(models.TextChoices):
        WEB = "web", "Web page"
        API = "api", "REST API"
        COMMAND = "command", "Command line"

    # Kept when the account or study goes: the audit trail must outlive both.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150)
    reader_study = models.ForeignKey(
        ReaderStudy, null=True, on_delete=models.SET_NULL, related_name="export_audits"
    )
    reader_study_name = models.CharField(max_length=200)
    dataset = models.CharField(max_length=16, choices=Dataset.choices)
    format = models.CharField(max_length=16, choices=Format.choices)
    interface = models.CharField(max_length=16, choices=Interface.choices)
    row_count = models.PositiveIntegerField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return (
            f"{self.username} exported {self.dataset} as {self.format} ({self.created_at:%Y-%m-%d})"
        )
