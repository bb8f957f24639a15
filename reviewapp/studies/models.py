"""Reader studies.

Glossary:
- ReaderStudy: one blinded evaluation: a frozen copy of a protocol (the questions), the cases,
  the readers, the seeds that drew the sample, the reading orders and the A/B sides.
- StudyArm: what one read compares: a pair of report sources (the first is the reference side:
  the original, or model A when two models meet) or, for single-report protocols, one source.
  A study's design names its arms; cases x arms x readers give the reads.
- StudyReader: one radiologist on a study's panel, with an optional cohort tag (e.g. US, India).
- Case: one imaging study in one arm of a reader study with the report(s) to be rated: two for
  pairwise protocols (the arm's first source, e.g. the original, and its second, the candidate),
  one for single-report protocols. A multi-arm study has one case per imaging study and arm.
  Which is which is known here and in analysis, never on the reader's side.
- Practice case: a case every reader reads first, to learn the protocol and the page; after
  submitting it the reader sees the coordinator's reference answers. Never analysed; exports
  keep its rows, flagged ``is_practice``.
- Assignment: one read: reader x case, its position in that reader's shuffled list, which report
  is shown as "Report A" and which as "Report B", the server-side timings and the draft.
- Rating: the submitted answers of one assignment; revised in place with a version number, every
  version kept by database triggers in the append-only RatingEvent table.
- RatingWrite: one accepted submit or revise, keyed by the client's idempotency key, so a retried
  request returns what the first one stored instead of writing twice.
- ErrorSpan: a passage of one report a reader marked as wrong (error-correction protocols),
  with the passage quoted from the rendered text its offsets refer to, stored when written.
- RenderedReport: one report version as one renderer version showed it to readers, with the
  SHA-256 of that text. Cases pin one per side when their study opens, so neither a new report
  version nor a renderer change can alter what an open, paused or locked study shows (or
  invalidate the offsets of its error spans). Draft studies render live.
"""

from __future__ import annotations

import hashlib
import uuid

import pghistory
import pgtrigger
from django.conf import settings
from django.db import models

from reviewapp.core.models import TimestampedModel
from reviewapp.imaging.models import Study
from reviewapp.reports.models import Report, ReportSource
from reviewapp.studies.blinding_schema import blinding_tells_validate
from reviewapp.studies.schemas import (
    answers_validate,
    draft_validate,
    protocol_document_validate,
    sample_spec_validate,
)


class ReaderStudy(TimestampedModel):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        PAUSED = "paused", "Paused"
        LOCKED = "locked", "Locked"

    class Design(models.TextChoices):
        # Blank: cases were chosen per model run, one candidate against the original (the
        # design before arms existed, and still the quickest for one model).
        ONE_MODEL = "", "One model's reports against the original reports"
        VS_REFERENCE = "vs_reference", "Each chosen model against the original reports"
        ALL_PAIRS = "all_pairs", "Every pair of the chosen sources (e.g. model A vs model B)"
        CHOSEN_PAIRS = "chosen_pairs", "Only the pairs of sources I choose"
        EACH_SOURCE = "each_source", "Each chosen source's report rated on its own"

    class ReadsMode(models.TextChoices):
        ALL = "all", "Every reader reads every case"
        K_PER_CASE = "k", "k readers per case, balanced load"

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # The whole protocol document, copied from a template when the study was made and frozen
    # once a rating exists; analysis reads questions and outcomes from here.
    protocol = models.JSONField(validators=[protocol_document_validate])
    protocol_key = models.CharField(max_length=64)
    protocol_version = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    ask_ai_guess = models.BooleanField(
        default=False, help_text='Ask after each case "Which report do you think was the AI\'s?"'
    )
    allow_revisions = models.BooleanField(default=True)
    reads_mode = models.CharField(max_length=8, choices=ReadsMode.choices, default=ReadsMode.ALL)
    reads_per_case = models.PositiveIntegerField(null=True, blank=True)
    design = models.CharField(max_length=16, choices=Design.choices, blank=True, default="")
    # Two reads of one imaging study (in two arms) right after each other would let a reader
    # compare them side by side and guess the arms from what changed.
    same_study_gap = models.PositiveSmallIntegerField(
        default=1,
        help_text="At least this many other cases between two reads of the same imaging study",
    )
    show_clinical_context = models.BooleanField(
        default=True,
        help_text="Show readers the indication, technique and comparison above the reports",
    )
    # Seeds are recorded so anyone can re-derive the sample, the orders and the sides.
    sample_seed = models.BigIntegerField(null=True, blank=True)
    sample_spec = models.JSONField(default=dict, blank=True, validators=[sample_spec_validate])
    assignment_seed = models.BigIntegerField(null=True, blank=True)
    assignments_generated_at = models.DateTimeField(null=True, blank=True)
    coordinators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="coordinated_reader_studies", blank=True
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="created_reader_studies",
    )
    opened_at = models.DateTimeField(null=True, blank=True)
    locked_at = models.DateTimeField(null=True, blank=True)
    # The blinding check (reviewapp.studies.blinding): the tells the renderer could not remove,
    # the digest of the cases and reports it looked at (a change to them makes it stale), and
    # who acknowledged it; a draft opens only once the current check is acknowledged.
    blinding_checked_at = models.DateTimeField(null=True, blank=True)
    blinding_digest = models.CharField(max_length=64, blank=True)
    blinding_tells = models.JSONField(
        default=list, blank=True, validators=[blinding_tells_validate]
    )
    blinding_acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    blinding_acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "reader studies"
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(reads_mode="k") | models.Q(reads_per_case__gte=1),
                name="reader_study_k_needs_reads_per_case",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"

    @property
    def is_pairwise(self) -> bool:
        return self.protocol.get("mode") == "pairwise"

    @property
    def accepts_ratings(self) -> bool:
        return self.status == self.Status.OPEN


class StudyArm(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    reader_study = models.ForeignKey(ReaderStudy, on_delete=models.CASCADE, related_name="arms")
    position = models.PositiveSmallIntegerField(help_text="1-based order on staff pages")
    # Pairs: the first source is the reference side (the original, or the earlier model when
    # two models meet); comparative answers are stored as how they favour the second.
    first_source = models.ForeignKey(ReportSource, on_delete=models.PROTECT, related_name="+")
    second_source = models.ForeignKey(
        ReportSource, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["reader_study", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["reader_study", "first_source", "second_source"],
                name="arm_unique_sources_per_study",
                nulls_distinct=False,
            ),
            models.UniqueConstraint(
                fields=["reader_study", "position"], name="arm_unique_position_per_study"
            ),
            models.CheckConstraint(
                condition=~models.Q(first_source=models.F("second_source")),
                name="arm_sources_differ",
            ),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        """Staff only: names the sources (e.g. "model-a vs Original (radiologist)")."""
        if self.second_source is None:
            return self.first_source.label
        return f"{self.second_source.label} vs {self.first_source.label}"


class StudyReader(models.Model):
    reader_study = models.ForeignKey(ReaderStudy, on_delete=models.CASCADE, related_name="panel")
    reader = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reader_study_seats"
    )
    cohort = models.CharField(max_length=64, blank=True)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["reader__username"]
        constraints = [
            models.UniqueConstraint(fields=["reader_study", "reader"], name="one_seat_per_reader")
        ]

    def __str__(self) -> str:
        return f"{self.reader} on {self.reader_study_id}"


def rendering_sha256(*, findings: str, impression: str) -> str:
    """The SHA-256 (hex) that proves which rendered text a reader saw.

    Definition (stated in the README's export section, so an analyst can recompute it): the
    SHA-256 of the UTF-8 bytes of ``"FINDINGS\n" + findings + "\n\nIMPRESSION\n" +
    impression``, where findings and impression are the rendered sections exactly as shown.
    """
    text = "FINDINGS\n" + findings + "\n\nIMPRESSION\n" + impression
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class RenderedReport(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="renderings")
    renderer_version = models.PositiveIntegerField()
    findings = models.TextField(blank=True)
    impression = models.TextField(blank=True)
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["report", "renderer_version"]
        constraints = [
            models.UniqueConstraint(
                fields=["report", "renderer_version"], name="one_rendering_per_renderer_version"
            )
        ]
        # What a reader saw is evidence: never rewritten, never removed while pinned.
        triggers = [pgtrigger.Protect(name="rendered_report_immutable", operation=pgtrigger.Update)]

    def __str__(self) -> str:
        return f"Rendering r{self.renderer_version} of report {self.report_id}"

    def sections(self) -> dict[str, str]:
        return {"findings": self.findings, "impression": self.impression}


class Case(TimestampedModel):
    reader_study = models.ForeignKey(ReaderStudy, on_delete=models.CASCADE, related_name="cases")
    imaging_study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="+")
    # Null in studies without arms (one model against the original, chosen per model run).
    # RESTRICT: an arm with cases cannot go alone, but deleting a draft study takes both.
    arm = models.ForeignKey(
        StudyArm, null=True, blank=True, on_delete=models.RESTRICT, related_name="cases"
    )
    # Pairwise: first = the original (or the arm's first source), second = the candidate (the
    # arm's second source: an AI, imported or edited report). Single-report
    # protocols use first only. Readers never learn which is which: they see A/B per assignment.
    first_report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="+")
    second_report = models.ForeignKey(
        Report, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    stratum = models.CharField(max_length=64, blank=True)
    # Set and cleared only by services.case_practice_set, for every arm's case of one imaging
    # study at once: a study read for practice (with the answers revealed) and then again for
    # real would bias the real read.
    is_practice = models.BooleanField(default=False)
    # What readers are shown after submitting a practice case: stored as a rating's answers are
    # (protocols.answers_resolve, entered with the first report as Report A), so each reader
    # sees them on their own sides; {} until the coordinator enters them.
    reference_answers = models.JSONField(default=dict, blank=True, validators=[answers_validate])
    reference_set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reference_set_at = models.DateTimeField(null=True, blank=True)
    # The exact texts readers are shown, pinned when the study opens (see RenderedReport).
    first_rendering = models.ForeignKey(
        RenderedReport, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    second_rendering = models.ForeignKey(
        RenderedReport, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["reader_study", "first_report", "second_report"],
                name="case_unique_reports_per_study",
                nulls_distinct=False,
            ),
            models.CheckConstraint(
                condition=~models.Q(first_report=models.F("second_report")),
                name="case_reports_differ",
            ),
        ]

    def __str__(self) -> str:
        return f"Case {self.public_id}"


class Assignment(TimestampedModel):
    class Status(models.TextChoices):
        PENDING = "pending", "Not started"
        IN_PROGRESS = "in_progress", "In progress"
        SUBMITTED = "submitted", "Submitted"

    class Side(models.TextChoices):
        A = "A", "Report A"
        B = "B", "Report B"
        NONE = "", "Single report"

    reader_study = models.ForeignKey(
        ReaderStudy, on_delete=models.CASCADE, related_name="assignments"
    )
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="assignments")
    reader = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reading_assignments"
    )
    position = models.PositiveIntegerField(help_text="1-based place in this reader's list")
    report_a = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="+")
    report_b = models.ForeignKey(
        Report, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Where the case's second (candidate) report was shown; the balance check and analysis
    # read this instead of re-deriving it from report kinds.
    candidate_side = models.CharField(max_length=1, choices=Side.choices, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    opened_at = models.DateTimeField(null=True, blank=True)
    first_answer_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    # Autosaved work in progress; the client numbers its saves so a late, older save is ignored.
    draft = models.JSONField(default=dict, blank=True, validators=[draft_validate])
    draft_seq = models.BigIntegerField(default=0)
    draft_saved_at = models.DateTimeField(null=True, blank=True)
    active_seconds = models.FloatField(default=0)

    class Meta:
        ordering = ["reader_study", "reader", "position"]
        constraints = [
            models.UniqueConstraint(fields=["case", "reader"], name="one_assignment_per_read"),
            models.UniqueConstraint(
                fields=["reader_study", "reader", "position"], name="assignment_unique_position"
            ),
        ]
        indexes = [models.Index(fields=["reader", "reader_study", "status"])]

    def __str__(self) -> str:
        return f"Assignment {self.public_id}"


@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
    model_name="RatingEvent",
    append_only=True,
)
class Rating(TimestampedModel):
    assignment = models.OneToOneField(Assignment, on_delete=models.PROTECT, related_name="rating")
    # {question id: stored answer}: source-resolved (see services.answers_resolve), together
    # with what the reader saw (side and label), so analysis needs no re-derivation.
    answers = models.JSONField(validators=[answers_validate])
    # Which source each side showed, recorded with the answers (the unblinding key per rating).
    source_a = models.CharField(max_length=16)
    source_b = models.CharField(max_length=16, blank=True)
    ai_guess = models.CharField(max_length=16, blank=True)
    version = models.PositiveIntegerField(default=1)
    submitted_at = models.DateTimeField()
    revised_at = models.DateTimeField(null=True, blank=True)
    active_seconds = models.FloatField(default=0)
    edited_report = models.ForeignKey(
        Report, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"Rating v{self.version} of {self.assignment_id}"


class RatingWrite(models.Model):
    """One accepted submit or revise; the key makes a retried request a no-op."""

    idempotency_key = models.UUIDField(unique=True)
    rating = models.ForeignKey(Rating, on_delete=models.PROTECT, related_name="writes")
    version = models.PositiveIntegerField()
    payload_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"Write {self.idempotency_key} -> v{self.version}"


@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
    model_name="ErrorSpanEvent",
    append_only=True,
)
class ErrorSpan(models.Model):
    class Section(models.TextChoices):
        FINDINGS = "findings", "Findings"
        IMPRESSION = "impression", "Impression"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    rating = models.ForeignKey(Rating, on_delete=models.CASCADE, related_name="error_spans")
    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="+")
    side = models.CharField(max_length=1, blank=True)
    section = models.CharField(max_length=16, choices=Section.choices)
    start = models.PositiveIntegerField()
    end = models.PositiveIntegerField()
    category = models.CharField(max_length=64)
    is_significant = models.BooleanField()
    replacement_text = models.TextField(blank=True)
    # Quoted from the rendered text the offsets refer to, when the span is written: the stored
    # report text differs from it (headings, signatures, casing), so it cannot be re-derived.
    quoted_text = models.TextField(blank=True)
    sentence_index = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["rating", "section", "start"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(end__gt=models.F("start")), name="span_nonempty"
            )
        ]

    def __str__(self) -> str:
        return f"Span {self.section}[{self.start}:{self.end}] {self.category}"
