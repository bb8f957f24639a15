"""Report texts.

Glossary:
- Report: the text of one report on one study: the radiologist's *original*, an *ai* report
  written by a model run, or an *edited* report a reader produced by correcting another one.
  Findings and impression are kept apart because readers are shown them as separate sections.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from reviewapp.core.models import TimestampedModel
from reviewapp.imaging.models import Study


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

    class Meta:
        ordering = ["study", "kind", "created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(findings="", impression=""), name="report_not_empty"
            ),
            # Re-importing a reports CSV updates the original; it never adds a second one.
            models.UniqueConstraint(
                fields=["study"],
                condition=models.Q(kind="original"),
                name="one_original_report_per_study",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} report on {self.study_id}"
