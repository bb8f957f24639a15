"""Report texts.

Glossary:
- Report: one version of the text of one report on one study: the radiologist's *original*, an
  *ai* report written by a model run, or an *edited* report a reader produced by correcting
  another one. Findings and impression are kept apart because readers are shown them as
  separate sections. A report's text never changes once written (the database refuses it):
  a changed text is a new Report row, the next version of the same line.
- ReportSource: where a report comes from: the radiologists' *original*, a configured *model*
  (its generation runs), an imported *external* model (name, version, description, provenance)
  or readers' *edits*. Source labels are for coordinators and analysts only: nothing a reader
  can reach names one.
- Report line (``lineage``): the versions of one study's report from one source (originals and
  imported external candidates: a re-import is the next version of the study-and-source line;
  each generation run and each reader edit starts a line of its own). Exactly one version of a
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
from reviewapp.reports.source_schema import source_provenance_validate

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


class ReportSource(TimestampedModel):
    class Kind(models.TextChoices):
        ORIGINAL = "original", "Original (radiologist)"
        MODEL = "model", "Configured model"
        EXTERNAL = "external", "Imported model"
        EDITED = "edited", "Edited by readers"

    kind = models.CharField(max_length=16, choices=Kind.choices, db_index=True)
    # For kind model the name is the configuration's own (shown from it, never copied here, so
    # renaming the configuration renames its source).
    name = models.CharField(max_length=100, blank=True)
    version = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True, max_length=2000)
    provenance = models.JSONField(
        default=dict,
        blank=True,
        validators=[source_provenance_validate],
        help_text='Free provenance fields, e.g. {"paper": "...", "checkpoint": "...", '
        '"decoding": "greedy"}: a flat object of short strings, numbers or booleans.',
    )
    model_config = models.OneToOneField(
        "generation.ModelConfig",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="report_source",
    )

    class Meta:
        ordering = ["kind", "name", "version"]
        constraints = [
            # One source each for the originals and for readers' edits.
            models.UniqueConstraint(
                fields=["kind"],
                condition=models.Q(kind__in=["original", "edited"]),
                name="report_source_one_original_one_edited",
            ),
            models.UniqueConstraint(
                fields=["name", "version"],
                condition=models.Q(kind="external"),
                name="report_source_external_name_version_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(kind="model", model_config__isnull=False)
                | (~models.Q(kind="model") & models.Q(model_config__isnull=True)),
                name="report_source_model_has_config",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind="external", name=""),
                name="report_source_external_named",
            ),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        """The name coordinators and analysts see (never shown to readers)."""
        if self.kind == self.Kind.MODEL and self.model_config is not None:
            return self.model_config.name
        if self.kind == self.Kind.EXTERNAL:
            return f"{self.name} {self.version}".strip()
        return self.name or self.get_kind_display()


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
    # Set when the report is written and never changed after (a trigger refuses it); null
    # only for rows written by code that predates sources and has not named one.
    source = models.ForeignKey(
        ReportSource, null=True, blank=True, on_delete=models.PROTECT, related_name="reports"
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
            # A report's source may be filled in once (rows from before sources existed) but
            # never moved: which model wrote what a reader rated is part of what they rated.
            pgtrigger.Protect(
                name="report_source_fixed",
                operation=pgtrigger.Update,
                condition=pgtrigger.Q(old__source__isnull=False)
                & pgtrigger.Q(old__source__df=pgtrigger.F("new__source")),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} report v{self.version} on {self.study_id}"
