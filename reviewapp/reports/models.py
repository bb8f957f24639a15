"""Report texts.

Glossary:
- Report: one version of the text of one report on one study: the radiologist's *original*, an
  *ai* report written by a model run, or an *edited* report a reader produced by correcting
  another one. Findings and impression are kept apart because readers are shown them as
  separate sections. A report's text never changes once written (the database refuses it):
  a changed text is a new Report row, the next version of the same line.
- Report line (``lineage``): the versions of one study's report from one source (for now the
  original; AI and edited reports start a line of their own each). Exactly one version of a
  line is the latest; reader-study cases pin the exact version they compare, so what a reader
  rated can never change under them.
- ReportEvent: the append-only history of every report row (insert, flag change, delete),
  written by database triggers.
"""

from __future__ import annotations

import uuid

import pghistory
import pgtrigger
from django.conf import settings
from django.db import models

from reviewapp.core.models import TimestampedModel
from reviewapp.imaging.models import Study

# What makes a report the report it is. Changing any of these in place would rewrite what a
# reader rated, so the database refuses it; ``is_latest``, the SET_NULL provenance links and
# the timestamps may still change (ReportEvent keeps every earlier value).
IMMUTABLE_FIELDS = (
    "study",
    "kind",
    "findings",
    "impression",
    "lineage",
    "version",
    "supersedes",
    "change_reason",
    "source_note",
)


@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
    model_name="ReportEvent",
    append_only=True,
)
class Report(TimestampedModel):
    class Kind(models.TextChoices):
        ORIGINAL = "original", "Original (radiologist)"
        AI = "ai", "AI-generated"
        EDITED = "edited", "Edited by a reader"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="reports")
    kind = models.CharField(max_length=16, choices=Kind.choices, db_index=True)
    findings = models.TextField(blank=True)
    impression = models.TextField(blank=True)
    # Provenance: who or what wrote it. The model name of an AI report lives with its
    # generation run (reviewapp.generation), never on anything a reader can reach.
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    derived_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="edits"
    )
    source_note = models.CharField(max_length=256, blank=True, help_text="e.g. CSV file name")
    # Versioning: every version of one line shares its lineage key; see the glossary.
    lineage = models.UUIDField(default=uuid.uuid4, editable=False, db_index=True)
    version = models.PositiveIntegerField(default=1)
    supersedes = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="superseded_by",
        help_text="The previous version of this report, which this one replaced.",
    )
    change_reason = models.CharField(max_length=200, blank=True)
    is_latest = models.BooleanField(default=True)

    class Meta:
        ordering = ["study", "kind", "created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(findings="", impression=""), name="report_not_empty"
            ),
            # A re-import never adds a second original: it adds a version of the one original,
            # and only one version of it is the latest.
            models.UniqueConstraint(
                fields=["study"],
                condition=models.Q(kind="original", is_latest=True),
                name="one_latest_original_report_per_study",
            ),
            models.UniqueConstraint(fields=["lineage", "version"], name="report_version_unique"),
            models.UniqueConstraint(
                fields=["lineage"],
                condition=models.Q(is_latest=True),
                name="report_one_latest_per_lineage",
            ),
            models.CheckConstraint(
                condition=models.Q(version=1, supersedes__isnull=True)
                | models.Q(version__gt=1, supersedes__isnull=False),
                name="report_version_chain",
            ),
        ]
        triggers = [
            pgtrigger.Protect(
                name="report_text_immutable",
                operation=pgtrigger.Update,
                condition=pgtrigger.AnyChange(*IMMUTABLE_FIELDS),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} report v{self.version} on {self.study_id}"
