"""Automated metrics of candidate reports, stored beside the expert ratings.

Glossary:
- MetricJob: one request to score the candidate reports of one source in one reader study
  with a list of metrics (each with its parameters): the unit of work on the queue, with its
  progress counts and, when it fails, a message that says what to fix. The results it writes
  are not the job's: they belong to the report versions they score.
- MetricResult: one metric's values for one candidate report version against one reference
  report version (the imaging study's original), keyed by the metric's name, code version and
  the digest of its parameters, so computing the same thing again rewrites the same row
  instead of adding one. A pair whose reference is missing or blank is stored as *skipped*
  with the reason and no values: never a zero, which would read as "the candidate is wrong".
  A pair the metric itself could not score (a judge's answer without its counts) is stored as
  *failed*, with the reason and no values, for that metric only.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from reviewapp.core.models import TimestampedModel
from reviewapp.metrics.schemas import (
    metric_detail_validate,
    metric_params_validate,
    metric_specs_validate,
    metric_values_validate,
)
from reviewapp.reports.models import Report, ReportSource
from reviewapp.studies.models import ReaderStudy


class MetricJob(TimestampedModel):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    FINISHED = (Status.SUCCEEDED, Status.FAILED)

    reader_study = models.ForeignKey(
        ReaderStudy, on_delete=models.CASCADE, related_name="metric_jobs"
    )
    # Null: the study's candidate reports written before sources were recorded.
    source = models.ForeignKey(
        ReportSource, null=True, blank=True, on_delete=models.PROTECT, related_name="metric_jobs"
    )
    metrics = models.JSONField(validators=[metric_specs_validate])
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    # Progress in report pairs times metrics, so the bar moves within a slow metric too.
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    scored = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    # Results (pair x metric) a metric could not compute; each is a MetricResult that says why.
    failed = models.PositiveIntegerField(default=0)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # A second click while a job is waiting or running joins it instead of queuing
            # the same work twice.
            models.UniqueConstraint(
                fields=["reader_study", "source"],
                condition=models.Q(status__in=["queued", "running"]),
                name="metric_job_one_unfinished_per_study_source",
                nulls_distinct=False,
            ),
            models.CheckConstraint(
                condition=models.Q(done__lte=models.F("total")), name="metric_job_done_le_total"
            ),
        ]

    def __str__(self) -> str:
        return f"Metric job {self.public_id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED


class MetricResult(models.Model):
    class Status(models.TextChoices):
        SCORED = "scored", "Scored"
        SKIPPED = "skipped", "Skipped"
        FAILED = "failed", "Failed"

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="metric_results")
    # Null when the imaging study has no original report: the pair is skipped, and named.
    reference = models.ForeignKey(
        Report, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    metric = models.CharField(max_length=64)
    metric_version = models.CharField(max_length=16)
    params = models.JSONField(default=dict, blank=True, validators=[metric_params_validate])
    # SHA-256 of the canonical JSON of params: the parameters' part of the result's identity.
    params_sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices)
    reason = models.CharField(max_length=64, blank=True)
    values = models.JSONField(default=dict, blank=True, validators=[metric_values_validate])
    detail = models.JSONField(default=dict, blank=True, validators=[metric_detail_validate])
    job = models.ForeignKey(
        MetricJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="results"
    )
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["report", "metric"]
        constraints = [
            models.UniqueConstraint(
                fields=["report", "reference", "metric", "metric_version", "params_sha256"],
                name="metric_result_unique",
                nulls_distinct=False,
            ),
            models.CheckConstraint(
                condition=models.Q(status="scored", reason="")
                | models.Q(status__in=["skipped", "failed"], values={}) & ~models.Q(reason=""),
                name="metric_result_unscored_has_reason_no_values",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.metric} v{self.metric_version} of report {self.report_id} ({self.status})"
