"""The image archive.

Glossary:
- Study: one imaging examination of one patient (a StudyInstanceUID), de-identified on import.
- Series: one acquisition within a study (e.g. the PA view, or one CT reconstruction).
- Instance: one stored DICOM object (a SOP instance); its file lives in Django storage.
- Frame: one image inside an instance (a CT slice file has one; multi-frame objects have many).
- ImportBatch: one import run (upload, command line, STOW-RS, or one DICOM push association)
  with its counts and per-file problems, so a coordinator sees exactly which files were
  skipped and why.
- PseudonymMapping: original identifier -> pseudonym; admins only (it re-identifies).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from reviewapp.core.models import TimestampedModel
from reviewapp.imaging.schemas import dicom_json_validate, frame_ranges_validate


class Study(TimestampedModel):
    study_instance_uid = models.CharField(max_length=64, unique=True)
    patient_pseudonym = models.CharField(max_length=64, db_index=True)
    accession_pseudonym = models.CharField(max_length=64, blank=True, db_index=True)
    study_date = models.DateField(null=True, blank=True)
    study_time = models.CharField(max_length=16, blank=True)
    modalities = models.CharField(max_length=64, blank=True, help_text="e.g. CT or CR\\DX")
    description = models.CharField(max_length=256, blank=True)
    body_part = models.CharField(max_length=64, blank=True)
    patient_sex = models.CharField(max_length=16, blank=True)
    patient_age = models.CharField(max_length=16, blank=True)
    stratum = models.CharField(max_length=64, blank=True, db_index=True)
    # The study id of a research dataset (MIMIC-CXR, IU X-ray, ReXrank...) recorded at import,
    # so that predictions keyed by it find the study. Not unique: two datasets may reuse ids.
    dataset_study_id = models.CharField(max_length=128, blank=True, db_index=True)
    # The research dataset the images were converted from (PNG/JPEG imports), as the
    # coordinator named it: the stored DICOM loses its free-text derivation note to
    # de-identification, so the archive keeps it here. Staff only, like the description.
    dataset_name = models.CharField(max_length=128, blank=True)
    # Clinical context, imported with the original reports (de-identified like report text):
    # readers see it once, above both reports and identical for every arm; models get it in
    # their prompt. Never part of a report, so never part of what is compared.
    indication = models.TextField(blank=True, help_text="Indication / clinical history")
    technique = models.TextField(blank=True)
    comparison = models.TextField(blank=True, help_text="Prior examinations compared")

    class Meta:
        verbose_name_plural = "studies"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Study {self.public_id} ({self.modalities or '?'})"

    @property
    def label(self) -> str:
        """The one way staff pages name a study: date · modality · short description · short id.

        Staff only: the description is free DICOM text that can carry a dataset's label
        ("No Finding"), so nothing a reader reaches may show it.
        """
        description = " ".join(self.description.split())
        if len(description) > 40:
            description = description[:39].rstrip() + "…"
        parts = [
            self.study_date.isoformat() if self.study_date else "undated",
            self.modalities.replace("\\", "/") or "?",
            description or "no description",
            str(self.public_id)[:8],
        ]
        return " · ".join(parts)


class Series(TimestampedModel):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    series_instance_uid = models.CharField(max_length=64, unique=True)
    modality = models.CharField(max_length=16, blank=True)
    series_number = models.IntegerField(null=True, blank=True)
    description = models.CharField(max_length=256, blank=True)
    body_part = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name_plural = "series"
        ordering = ["series_number", "id"]

    def __str__(self) -> str:
        return f"Series {self.series_number} {self.modality} of {self.study_id}"


class Instance(TimestampedModel):
    class Status(models.TextChoices):
        AVAILABLE = "available", "Available"
        QUARANTINED = "quarantined", "Quarantined (burned-in annotation)"

    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances")
    sop_instance_uid = models.CharField(max_length=64, unique=True)
    sop_class_uid = models.CharField(max_length=64)
    transfer_syntax_uid = models.CharField(max_length=64)
    instance_number = models.IntegerField(null=True, blank=True)
    rows = models.PositiveIntegerField()
    columns = models.PositiveIntegerField()
    number_of_frames = models.PositiveIntegerField(default=1)
    bits_allocated = models.PositiveSmallIntegerField(default=16)
    view_position = models.CharField(max_length=16, blank=True)
    # Slice order along the series' normal (mm); falls back to instance number.
    position = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.AVAILABLE)
    quarantine_reason = models.CharField(max_length=256, blank=True)
    quarantine_reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    quarantine_reviewed_at = models.DateTimeField(null=True, blank=True)
    # The batch that stored it: a redelivered import task recognises its own work by this.
    import_batch = models.ForeignKey(
        "ImportBatch", null=True, blank=True, on_delete=models.SET_NULL, related_name="instances"
    )
    file = models.FileField(upload_to="dicom/", max_length=255)
    file_size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    # Precomputed on import so frames are served by byte range, with no DICOM parsing per
    # request: [[offset, length], ...] per frame, into the stored file.
    frame_ranges = models.JSONField(default=list, validators=[frame_ranges_validate])
    # DICOM JSON (PS3.18 F.2) of the stored header, bulk data left out, for /metadata.
    dicom_json = models.JSONField(default=dict, validators=[dicom_json_validate])

    class Meta:
        ordering = ["position", "instance_number", "id"]
        indexes = [models.Index(fields=["series", "status"])]

    def __str__(self) -> str:
        return f"Instance {self.sop_instance_uid}"


class ImportBatch(TimestampedModel):
    class Source(models.TextChoices):
        UPLOAD = "upload", "Browser upload"
        COMMAND = "command", "Command line"
        STOW = "stow", "STOW-RS"
        DIMSE = "dimse", "DICOM push (C-STORE)"
        DATASET = "dataset", "Research dataset (PNG/JPEG)"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    source = models.CharField(max_length=16, choices=Source.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    files_total = models.PositiveIntegerField(default=0)
    files_done = models.PositiveIntegerField(default=0)
    imported_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)
    quarantined_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Where the uploaded files wait for the worker; removed when the batch ends.
    staging_path = models.CharField(max_length=512, blank=True)
    error_message = models.TextField(blank=True)
    # Who sent a pushed batch (calling AE title and address), so a coordinator can tell which
    # PACS or modality it came from; for a research dataset import, the dataset's name and
    # layout. Never patient data.
    origin = models.CharField(max_length=128, blank=True)

    class Meta:
        verbose_name_plural = "import batches"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Import {self.public_id} ({self.status})"


class ImportProblem(models.Model):
    """One file of a batch that was not imported as-is, and why (never any patient data)."""

    class Kind(models.TextChoices):
        REJECTED = "rejected", "Rejected"
        QUARANTINED = "quarantined", "Quarantined"

    batch = models.ForeignKey(ImportBatch, on_delete=models.CASCADE, related_name="problems")
    file_name = models.CharField(max_length=512)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.REJECTED)
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.file_name}: {self.reason}"


class PseudonymMapping(models.Model):
    """Original identifier -> pseudonym. Re-identifies patients: admins only."""

    class Kind(models.TextChoices):
        PATIENT_ID = "patient_id", "Patient ID"
        ACCESSION = "accession", "Accession number"
        STUDY_UID = "study_uid", "Study Instance UID"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    original = models.CharField(max_length=256)
    pseudonym = models.CharField(max_length=128)
    date_shift_days = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "original"], name="unique_pseudonym_original")
        ]

    def __str__(self) -> str:
        return f"{self.kind} -> {self.pseudonym}"
