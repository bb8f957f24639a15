"""AI report generation.

Glossary:
- ModelConfig: a configured report writer: a backend (retrieval baseline, local transformers
  model, OpenAI-compatible server), where it lives, its generation parameters and one prompt
  template per study kind (CXR, CT). Its name is for coordinators and analysts only.
- GenerationJob: one request by a coordinator to write AI reports for a set of studies.
- GenerationRun: one study within a job: the unit of work on the queue, with its attempts,
  status, error text, the AI report it wrote and that report's reproducibility record.
  The run table, not the broker, is the source of truth about what is done.
- StudyDescriptor: the retrieval baseline's cached image descriptor of one study.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from reviewapp.core.models import TimestampedModel
from reviewapp.generation.schemas import parameters_validate, provenance_validate
from reviewapp.imaging.models import Study
from reviewapp.reports.models import Report

DEFAULT_PROMPT_CXR = (
    "You are an expert radiologist. Write the report of this chest radiograph ({views}). "
    "Answer with two sections, FINDINGS: and IMPRESSION:."
)
DEFAULT_PROMPT_CT = (
    "You are an expert radiologist. These are {num_images} axial slices of a CT study, each "
    "shown in lung, mediastinal and bone windows as the red, green and blue channels. Write "
    "the report. Answer with two sections, FINDINGS: and IMPRESSION:."
)


class ModelConfig(TimestampedModel):
    class Backend(models.TextChoices):
        RETRIEVAL = "retrieval", "Retrieval baseline (no weights, CPU)"
        TRANSFORMERS = "transformers", "Local transformers model"
        OPENAI = "openai", "OpenAI-compatible server (vLLM)"

    name = models.CharField(max_length=100, unique=True)
    backend = models.CharField(max_length=16, choices=Backend.choices)
    location = models.CharField(
        max_length=500,
        blank=True,
        help_text="Model directory (transformers) or server base URL (openai); empty for the "
        "retrieval baseline.",
    )
    served_model_name = models.CharField(
        max_length=200, blank=True, help_text="The model name the OpenAI-compatible server expects."
    )
    parameters = models.JSONField(
        default=dict,
        blank=True,
        validators=[parameters_validate],
        help_text="Generation and preprocessing parameters, e.g. "
        '{"max_new_tokens": 300, "do_sample": false, "seed": 0, "ct_slices": 16}.',
    )
    prompt_cxr = models.TextField(default=DEFAULT_PROMPT_CXR, blank=True)
    prompt_ct = models.TextField(default=DEFAULT_PROMPT_CT, blank=True)
    max_attempts = models.PositiveSmallIntegerField(default=2)
    time_limit_seconds = models.PositiveIntegerField(
        default=900, help_text="A run still going after this long is treated as stuck."
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(max_attempts__gte=1), name="model_config_attempts_positive"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def queue(self) -> str:
        # Only a local model needs a GPU worker; the others are I/O or light CPU work.
        return "gpu" if self.backend == self.Backend.TRANSFORMERS else "default"


class GenerationJob(TimestampedModel):
    model_config = models.ForeignKey(ModelConfig, on_delete=models.PROTECT, related_name="jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Generation job {self.public_id}"


class GenerationRun(TimestampedModel):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="runs")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="generation_runs")
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=2)
    error_message = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The AI report this run wrote: at most one, ever (a redelivered task finds it here).
    report = models.OneToOneField(
        Report, null=True, blank=True, on_delete=models.RESTRICT, related_name="generation_run"
    )
    provenance = models.JSONField(default=dict, blank=True, validators=[provenance_validate])

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "study"], name="one_run_per_study_per_job"),
            models.CheckConstraint(
                condition=~models.Q(status="succeeded") | models.Q(report__isnull=False),
                name="succeeded_run_has_report",
            ),
        ]

    def __str__(self) -> str:
        return f"Run {self.public_id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED


class StudyDescriptor(models.Model):
    study = models.OneToOneField(Study, on_delete=models.CASCADE, related_name="descriptor")
    version = models.CharField(max_length=32)
    kind = models.CharField(max_length=8)
    vector = models.BinaryField()  # float32, little-endian
    created_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Descriptor {self.version} of {self.study_id}"
