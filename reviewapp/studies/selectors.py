"""Reads of reader studies, each with its permission check built in.

Reader-facing selectors return plain dicts built here and nowhere else, so that no source
label, report id, model name or report date can slip into a page or an API response by a
serializer listing one field too many.
"""

from __future__ import annotations

import csv
import difflib
import io
import statistics
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone

from reviewapp.core.access import public_id_get_or_404, public_id_or_404
from reviewapp.core.roles import Role, user_has_role
from reviewapp.imaging.models import Study
from reviewapp.reports import selectors as report_selectors
from reviewapp.reports.models import Report, ReportSource
from reviewapp.studies import protocols
from reviewapp.studies.models import (
    Assignment,
    Case,
    ErrorSpan,
    Rating,
    ReaderStudy,
    RenderedReport,
    StudyArm,
)
from reviewapp.studies.rendering import context_render, report_render

UserLike = AbstractBaseUser | AnonymousUser
# Readers never see a draft: its cases, sides and protocol may still change.
READER_VISIBLE = (ReaderStudy.Status.OPEN, ReaderStudy.Status.PAUSED, ReaderStudy.Status.LOCKED)


def reader_studies_visible_to_reader(*, user: UserLike) -> QuerySet[ReaderStudy]:
    """Reader studies on whose panel ``user`` sits that readers may see (never a draft)."""
    return ReaderStudy.objects.filter(panel__reader_id=user.pk, status__in=READER_VISIBLE)


def assignments_visible_to_reader(*, user: UserLike) -> QuerySet[Assignment]:
    """``user``'s own assignments in studies readers may see: the one reader-visibility
    filter that every reader-facing read (pages, API, images, websocket) starts from."""
    return Assignment.objects.filter(reader_id=user.pk, reader_study__status__in=READER_VISIBLE)


# --- what readers are shown ---------------------------------------------------------------


def case_rendering(*, case: Case, report: Report) -> RenderedReport | None:
    """The rendering ``case`` pinned for ``report`` (one of its two), or None if not pinned."""
    return _pinned_rendering(case=case, report_id=report.pk)


def _pinned_rendering(*, case: Case, report_id: int | None) -> RenderedReport | None:
    if report_id == case.first_report_id:
        return case.first_rendering
    if report_id == case.second_report_id:
        return case.second_rendering
    return None


def report_sections_shown(
    *, reader_study: ReaderStudy, case: Case, report: Report
) -> dict[str, str]:
    """The findings and impression of ``report`` exactly as this study's readers see them.

    Past draft, the rendering pinned when the study opened: a newer report version or
    renderer never changes what an opened study shows, nor what its span offsets refer to.
    A draft study (and a case nobody pinned, which only code outside the services makes)
    renders live.
    """
    if reader_study.status != ReaderStudy.Status.DRAFT:
        pinned = case_rendering(case=case, report=report)
        if pinned is not None:
            return pinned.sections()
    return report_render(report)


# --- coordinators and analysts ------------------------------------------------------------


def reader_studies_managed_by(*, user: UserLike) -> QuerySet[ReaderStudy]:
    """Reader studies ``user`` coordinates (admins: all): the one rule for which studies a
    coordinator may see, change, analyse and export."""
    if user_has_role(user, Role.ADMIN):
        return ReaderStudy.objects.all()
    if user_has_role(user, Role.COORDINATOR):
        return ReaderStudy.objects.filter(coordinators__id=user.pk or 0)
    return ReaderStudy.objects.none()


def reader_study_list_for_staff(*, user: UserLike) -> QuerySet[ReaderStudy]:
    """Studies a coordinator coordinates; analysts and admins see all (read-only)."""
    if user_has_role(user, Role.ANALYST):
        return ReaderStudy.objects.all()
    return reader_studies_managed_by(user=user)


def reader_study_is_managed_by(*, user: UserLike, reader_study: ReaderStudy) -> bool:
    """Whether ``user`` may change ``reader_study`` (by ``reader_studies_managed_by``)."""
    return reader_studies_managed_by(user=user).filter(pk=reader_study.pk).exists()


def reader_study_get_for_staff(*, user: UserLike, public_id: Any) -> ReaderStudy:
    """A study the user may look at as coordinator or analyst, else 404."""
    return public_id_get_or_404(
        reader_study_list_for_staff(user=user), public_id, what="reader study"
    )


def reader_study_get_for_coordinator(*, user: UserLike, public_id: Any) -> ReaderStudy:
    """A study the user coordinates (admins too), else 404; analysts may not change studies."""
    return public_id_get_or_404(
        reader_studies_managed_by(user=user), public_id, what="reader study"
    )


def reader_study_protocol_frozen_reason(*, reader_study: ReaderStudy) -> str:
    """Why the study's protocol can no longer change, or "" while it can (a draft without
    ratings; reader_study_protocol_update enforces the same under a lock)."""
    if Rating.objects.filter(assignment__reader_study=reader_study).exists():
        return "Readers have rated cases with this protocol version, so it is frozen."
    if reader_study.status != ReaderStudy.Status.DRAFT:
        status = reader_study.get_status_display().lower()
        return f"The study is {status}; only a draft's protocol can change."
    return ""


def panel_closed_reason(*, reader_study: ReaderStudy) -> str:
    """Why the study's panel can no longer change, or "" while it can (a draft without
    reading lists; ``services.panel_set`` and ``panel_reader_add`` enforce it under a lock)."""
    if reader_study.status != ReaderStudy.Status.DRAFT:
        status = reader_study.get_status_display().lower()
        return f"The study is {status}: readers join a study only while it is a draft."
    if reader_study.assignments.exists():
        return (
            "The reading lists are generated, so the panel is fixed: lists are drawn once "
            "and never redrawn, and a reader added now would have nothing to read."
        )
    return ""


def case_candidates(
    *,
    user: UserLike,
    modality: str = "",
    stratum: str = "",
    candidate_reports: QuerySet[Report] | None = None,
    sources: list[ReportSource] | None = None,
    study_uids: list[str] | None = None,
) -> QuerySet[Study]:
    """Imaging studies a coordinator may build cases from, filtered.

    ``candidate_reports``: keep studies that have an original report and one of these (e.g. the
    AI reports of a chosen model run). ``sources``: keep studies with a report from each (a
    study's arms). ``study_uids``: an uploaded list of de-identified StudyInstanceUIDs or
    accession pseudonyms.
    """
    if not (user_has_role(user, Role.COORDINATOR) or user_has_role(user, Role.ADMIN)):
        return Study.objects.none()
    studies = Study.objects.all()
    if modality:
        studies = studies.filter(modalities__icontains=modality)
    if stratum:
        studies = studies.filter(stratum=stratum)
    if candidate_reports is not None:
        studies = studies.filter(
            id__in=candidate_reports.values("study_id"),
            reports__kind=Report.Kind.ORIGINAL,
        )
    for source in sources or []:
        studies = studies.filter(
            id__in=Report.objects.filter(_of_source(source), is_latest=True).values("study_id")
        )
    if study_uids is not None:
        studies = studies.filter(
            Q(study_instance_uid__in=study_uids) | Q(accession_pseudonym__in=study_uids)
        )
    return studies.distinct().order_by("id")


def _of_source(source: ReportSource) -> Q:
    # Originals imported before sources existed carry no source row; they are still originals.
    if source.kind == ReportSource.Kind.ORIGINAL:
        return Q(kind=Report.Kind.ORIGINAL)
    return Q(source=source)


def candidate_sources_list(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[ReportSource]:
    """The sources whose AI reports a case may compare with the original (configured and
    imported models; not the original, not readers' edits), with their study counts."""
    return report_selectors.report_sources_list(user=user).filter(
        kind__in=[ReportSource.Kind.MODEL, ReportSource.Kind.EXTERNAL]
    )


def candidate_source_get(
    *, user: AbstractBaseUser | AnonymousUser, public_id: uuid.UUID | str
) -> ReportSource:
    """One of :func:`candidate_sources_list`; anything else is a form error."""
    try:
        return candidate_sources_list(user=user).get(public_id=public_id)
    except (ReportSource.DoesNotExist, ValidationError, ValueError):
        raise ValidationError(
            {"candidate_source": "Choose one of the listed report sources."}
        ) from None


def candidate_reports_of_source(*, source: ReportSource) -> QuerySet[Report]:
    """The reports of one model's source a new case pairs with the original: per imaging
    study, the latest version of its newest line (two generation runs: the newer)."""
    newest = (
        Report.objects.filter(source=source, kind=Report.Kind.AI, is_latest=True)
        .order_by("study_id", "-created_at", "-id")
        .distinct("study_id")
        .values("pk")
    )
    return Report.objects.filter(pk__in=newest).select_related("study")


def reports_latest_by_source(
    *, imaging_ids: list[int], sources: list[ReportSource]
) -> dict[tuple[int, int], Report]:
    """(imaging study id, source id) -> the report a new case compares: the latest version
    of that source's line on the study (of several lines, e.g. two generation runs, the
    newest)."""
    found: dict[tuple[int, int], Report] = {}
    for source in sources:
        reports = Report.objects.filter(
            _of_source(source), study_id__in=imaging_ids, is_latest=True
        ).order_by("study_id", "-created_at", "-id")
        for report in reports:
            found.setdefault((report.study_id, source.pk), report)
    return found


def arm_list(*, reader_study: ReaderStudy) -> QuerySet[StudyArm]:
    """The study's arms with their sources and case counts (staff pages only: arms name
    sources)."""
    return (
        reader_study.arms.select_related(
            "first_source__model_config", "second_source__model_config"
        )
        .annotate(case_count=Count("cases"))
        .order_by("position")
    )


def arm_sources(*, reader_study: ReaderStudy) -> list[ReportSource]:
    """The distinct sources the study's arms compare, in arm order (staff only)."""
    seen: dict[int, ReportSource] = {}
    for arm in reader_study.arms.select_related("first_source", "second_source"):
        for source in (arm.first_source, arm.second_source):
            if source is not None:
                seen.setdefault(source.pk, source)
    return list(seen.values())


def cases_of_imaging_study_for_staff(*, user: UserLike, imaging: Study) -> QuerySet[Case]:
    """The cases made of one imaging study in the reader studies ``user`` may look at."""
    return (
        Case.objects.filter(
            imaging_study=imaging, reader_study__in=reader_study_list_for_staff(user=user)
        )
        .select_related("reader_study", "arm")
        .order_by("reader_study__created_at", "id")
    )


def case_get(*, reader_study: ReaderStudy, public_id: Any) -> Case:
    """One case of a study the caller already holds (fetched through a permission check)."""
    return public_id_get_or_404(case_list(reader_study=reader_study), public_id, what="case")


def case_list(*, reader_study: ReaderStudy) -> QuerySet[Case]:
    return reader_study.cases.select_related(
        "imaging_study", "first_report", "second_report", "arm"
    ).order_by("id")


def cases_modality_warnings(
    *, reader_study: ReaderStudy, cases: Iterable[Case] | None = None
) -> list[str]:
    """Say which cases' images are of a modality the study's protocol was not written for.

    One sentence per foreign modality (a CXR scale asked of CT cases would produce ratings
    that mean nothing); ``cases`` defaults to all the study's cases.
    """
    declared = reader_study.protocol.get("modalities") or []
    if not declared:
        return []
    chosen = case_list(reader_study=reader_study) if cases is None else list(cases)
    by_modality: dict[str, int] = {}
    for case in chosen:
        for modality in protocols.modality_mismatch(
            reader_study.protocol, case.imaging_study.modalities
        )[:1]:
            by_modality[modality] = by_modality.get(modality, 0) + 1
    title = reader_study.protocol.get("title", reader_study.protocol_key)
    return [
        f'{count} case(s) are {modality} images, but the protocol "{title}" is written for '
        f"{', '.join(declared)}: check the protocol fits, or remove those cases."
        for modality, count in sorted(by_modality.items())
    ]


def practice_cases_without_reference_count(*, reader_study: ReaderStudy) -> int:
    """Practice cases whose reference answers are not entered yet: the study cannot open."""
    return reader_study.cases.filter(is_practice=True, reference_answers={}).count()


@dataclass(frozen=True)
class SetupStep:
    """One step of building a study, as the study page's guided flow shows it."""

    key: str  # the page section's id is "step-<key>"
    title: str
    is_done: bool
    summary: str  # what is done, or what is missing, in words
    warning: str = ""


def reader_study_setup_steps(
    *, reader_study: ReaderStudy, blinding_summary: dict[str, Any], modality_warnings: list[str]
) -> list[SetupStep]:
    """The steps from protocol to opening, each with what is done and what is missing.

    ``blinding_summary`` is ``blinding.blinding_summary`` of the same study (passed in:
    blinding reads this module). Staff only: the summaries name arms' counts, not sources.
    """
    study = reader_study
    is_draft = study.status == ReaderStudy.Status.DRAFT
    case_count = study.cases.count()
    arm_count = study.arms.count()
    panel_count = study.panel.count()
    reads = list(
        study.assignments.order_by()
        .values("reader_id")
        .annotate(n=Count("id"))
        .values_list("n", flat=True)
    )
    title = study.protocol.get("title", study.protocol_key)
    practice_count = study.cases.filter(is_practice=True).count()
    practice_unanswered = practice_cases_without_reference_count(reader_study=study)
    practice = (
        f" {practice_count} of them practice"
        + (
            f", {practice_unanswered} still without reference answers"
            if practice_unanswered
            else ""
        )
        + "."
        if practice_count
        else ""
    )
    steps = [
        SetupStep(
            "protocol",
            "Protocol",
            True,
            f"{title}, version {study.protocol_version}.",
            "The protocol may not fit some cases (see Cases)." if modality_warnings else "",
        ),
        SetupStep(
            "cases",
            "Cases",
            case_count > 0,
            (
                f"{case_count} case{'s' if case_count != 1 else ''}"
                + (f" in {arm_count} arms." if arm_count > 1 else ".")
                + practice
            )
            if case_count
            else "No cases yet: choose the design, then add cases from the archive.",
            f"{len(modality_warnings)} modality warning(s)." if modality_warnings else "",
        ),
        SetupStep(
            "readers",
            "Readers",
            panel_count > 0,
            f"{panel_count} reader{'s' if panel_count != 1 else ''} on the panel."
            if panel_count
            else "No readers on the panel yet.",
        ),
    ]
    if reads:
        how = (
            "every reader reads every case"
            if study.reads_per_case is None
            else f"{study.reads_per_case} reader(s) per case"
        )
        lists = (
            f"{sum(reads)} read{'s' if sum(reads) != 1 else ''} in {len(reads)} "
            f"list{'s' if len(reads) != 1 else ''} ({how}), seed {study.assignment_seed}."
        )
    elif not case_count or not panel_count:
        lists = "Not generated: they need cases and readers first."
    else:
        lists = "Not generated yet."
    steps.append(SetupStep("lists", "Reading lists", bool(reads), lists))
    blinding = blinding_summary
    if blinding["is_acknowledged"]:
        check = f"{blinding['tell_count']} tell(s), reviewed by {blinding['acknowledged_by']}."
    elif not is_draft:
        check = "No reviewed check was recorded before the study opened."
    elif not blinding["checked_at"]:
        check = "Not run yet." if case_count else "Not run: it needs cases first."
    elif not blinding["is_current"]:
        check = "The cases changed since the last check: run it again."
    else:
        check = f"{blinding['tell_count']} tell(s) found: review them and acknowledge."
    steps.append(SetupStep("blinding", "Blinding check", bool(blinding["is_acknowledged"]), check))
    if is_draft:
        missing = [step.title.lower() for step in steps if not step.is_done]
        if practice_unanswered:
            missing.append("reference answers of the practice cases")
        opening = (
            "Not open yet; still missing: " + ", ".join(missing) + "."
            if missing
            else "Ready to open."
        )
    elif study.status == ReaderStudy.Status.OPEN:
        opening = "Open for reading" + (
            f" since {timezone.localtime(study.opened_at):%Y-%m-%d %H:%M}."
            if study.opened_at
            else "."
        )
    elif study.status == ReaderStudy.Status.PAUSED:
        opening = "Paused: readers can look at their cases but not submit until it resumes."
    else:
        opening = "Locked: no further ratings or revisions."
    steps.append(SetupStep("open", "Open for reading", not is_draft, opening))
    return steps


@dataclass(frozen=True)
class ReportMove:
    """One case side whose report has a newer version: what moving it to the latest changes."""

    case: Case
    slot: str  # "first" (the original in pairwise studies) or "second" (the candidate)
    old: Report
    new: Report
    summary: str  # e.g. "findings: 2 words removed, 3 added; impression unchanged"

    def as_dict(self) -> dict[str, Any]:
        return {
            "case": str(self.case.public_id),
            "imaging_study": str(self.case.imaging_study.public_id),
            "slot": self.slot,
            "source": self.old.kind,
            "old_version": self.old.version,
            "new_version": self.new.version,
            "old_report": str(self.old.public_id),
            "new_report": str(self.new.public_id),
            "summary": self.summary,
        }


def _words_changed(old: str, new: str) -> str:
    matcher = difflib.SequenceMatcher(a=old.split(), b=new.split(), autojunk=False)
    removed = added = 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            removed += i2 - i1
            added += j2 - j1
    if not removed and not added:
        return "unchanged" if old == new else "whitespace or casing only"
    return f"{removed} word{'s' if removed != 1 else ''} removed, {added} added"


def report_change_summary(*, old: Report, new: Report) -> str:
    """How the rendered text readers would see differs between two versions, in counts only
    (no report text, so the summary is safe in logs and messages)."""
    before, after = report_render(old), report_render(new)
    return "; ".join(
        f"{section}: {_words_changed(before[section], after[section])}"
        for section in ("findings", "impression")
    )


def cases_with_newer_versions_count(*, reader_study: ReaderStudy) -> int:
    """How many of the study's cases compare a report that has a newer version."""
    return reader_study.cases.filter(
        Q(first_report__is_latest=False) | Q(second_report__is_latest=False)
    ).count()


def cases_refresh_preview(*, reader_study: ReaderStudy) -> list[ReportMove]:
    """Each case side whose pinned report is no longer its line's latest version, with the
    latest one and a short summary of the change (for the study's coordinator)."""
    cases = list(
        reader_study.cases.select_related("imaging_study", "first_report", "second_report")
        .filter(Q(first_report__is_latest=False) | Q(second_report__is_latest=False))
        .order_by("id")
    )
    old_reports = [
        report
        for case in cases
        for report in (case.first_report, case.second_report)
        if report is not None and not report.is_latest
    ]
    latest = {
        report.lineage: report
        for report in Report.objects.filter(
            lineage__in={r.lineage for r in old_reports}, is_latest=True
        )
    }
    moves = []
    for case in cases:
        for slot, report in (("first", case.first_report), ("second", case.second_report)):
            if report is None or report.is_latest or report.lineage not in latest:
                continue
            new = latest[report.lineage]
            moves.append(
                ReportMove(
                    case=case,
                    slot=slot,
                    old=report,
                    new=new,
                    summary=report_change_summary(old=report, new=new),
                )
            )
    return moves


def rating_get_for_staff(*, reader_study: ReaderStudy, assignment_id: Any) -> Rating:
    """The rating of one assignment of a study the caller already may see, else 404."""
    rating = (
        Rating.objects.select_related("assignment__reader")
        .filter(
            assignment__reader_study=reader_study,
            assignment__public_id=public_id_or_404(assignment_id),
        )
        .first()
    )
    if rating is None:
        raise Http404
    return rating


# A reader counts as idle after this long without a submit or a draft save.
PROGRESS_IDLE_DAYS = 7
# Below this many timed reads a reader's own median says little: their estimate uses the
# study's pace instead (the page says which).
PROGRESS_OWN_PACE_MIN_READS = 3
# The expected finish date extends the reader's reads per day over this many recent days (or
# since their first read, if later): a calendar pace, which counts the days they do not read.
PROGRESS_PACE_DAYS = 14
PROGRESS_CSV_COLUMNS = [
    "reader",
    "name",
    "email",
    "cohort",
    "status",
    "submitted",
    "assigned",
    "in_progress",
    "reads_left",
    "last_activity",
    "median_seconds",
    "estimate_seconds",
    "estimate_basis",
    "reads_per_day",
    "expected_finish",
    "practice_submitted",
    "practice_assigned",
]

_PROGRESS_STATUS_TEXT = {
    "not_started": "not started",
    "reading": "reading",
    "idle": f"idle for more than {PROGRESS_IDLE_DAYS} days",
    "done": "done",
}


def duration_text(seconds: float | None) -> str:
    """``seconds`` for a person: "45 s", "3 min", "2 h 05 min"; empty when unknown."""
    if seconds is None:
        return ""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _moment_text(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def reader_study_progress(
    *, reader_study: ReaderStudy, with_contact: bool = False, now: datetime | None = None
) -> dict[str, Any]:
    """Progress per reader and overall, as a coordinator acts on it: reads done, last
    activity, median active time per submitted read, time of reading left and a status.
    Staff-only (it names readers); no patient data, no answers. Readers' e-mail only
    ``with_contact``: for those who manage the study (``reader_study_is_managed_by``), who
    send the reminders; analysts see the figures without it."""
    now = now or timezone.now()
    rows = reader_study.assignments.values(
        "reader_id",
        "reader__username",
        "reader__first_name",
        "reader__last_name",
        "reader__email",
        "status",
        "active_seconds",
        "submitted_at",
        "draft_saved_at",
        "rating__revised_at",
        "case__is_practice",
    ).order_by("reader__username")
    cohorts = dict(reader_study.panel.values_list("reader_id", "cohort"))
    per_reader: dict[int, dict[str, Any]] = {}
    for row in rows:
        entry = per_reader.setdefault(
            row["reader_id"],
            {
                "reader": row["reader__username"],
                "name": f"{row['reader__first_name']} {row['reader__last_name']}".strip(),
                "email": row["reader__email"] if with_contact else "",
                "cohort": cohorts.get(row["reader_id"], ""),
                "total": 0,
                "submitted": 0,
                "in_progress": 0,
                "practice_total": 0,
                "practice_submitted": 0,
                "timings": [],
                "moments": [],
                "submits": [],
            },
        )
        entry["moments"] += [
            m
            for m in (row["submitted_at"], row["draft_saved_at"], row["rating__revised_at"])
            if m is not None
        ]
        if row["case__is_practice"]:
            # Practice reads are counted apart: they are not the study's reads, and a reader
            # learning the page reads them slower than their own pace.
            entry["practice_total"] += 1
            entry["practice_submitted"] += row["status"] == Assignment.Status.SUBMITTED
            continue
        entry["total"] += 1
        if row["status"] == Assignment.Status.SUBMITTED:
            entry["submitted"] += 1
            if row["submitted_at"] is not None:
                entry["submits"].append(row["submitted_at"])
            # A read submitted without timing (a script, an import) has 0 s: unknown, not fast.
            if row["active_seconds"] > 0:
                entry["timings"].append(row["active_seconds"])
        elif row["status"] == Assignment.Status.IN_PROGRESS:
            entry["in_progress"] += 1
    every_timing = [t for entry in per_reader.values() for t in entry["timings"]]
    study_median = statistics.median(every_timing) if every_timing else None
    idle_before = now - timedelta(days=PROGRESS_IDLE_DAYS)
    readers = []
    for entry in per_reader.values():
        timings, moments = entry.pop("timings"), entry.pop("moments")
        left = entry["total"] - entry["submitted"]
        per_day, finish, finish_text = _calendar_pace(entry.pop("submits"), left=left, now=now)
        last = max(moments) if moments else None
        median = statistics.median(timings) if timings else None
        if len(timings) >= PROGRESS_OWN_PACE_MIN_READS:
            pace, basis = median, "reader"
        else:
            pace, basis = study_median, "study" if study_median is not None else ""
        estimate = left * pace if left and pace is not None else None
        if left == 0:
            status = "done"
        elif last is None:
            status = "not_started"
        elif last < idle_before:
            status = "idle"
        else:
            status = "reading"
        readers.append(
            {
                **entry,
                "left": left,
                "status": status,
                "status_text": _PROGRESS_STATUS_TEXT[status],
                "last_activity": last.isoformat() if last else None,
                "last_activity_text": _moment_text(last),
                "median_seconds": median,
                "median_text": duration_text(median),
                "estimate_seconds": estimate,
                "estimate_text": duration_text(estimate) if left else "",
                "estimate_basis": basis if estimate is not None else "",
                "reads_per_day": per_day,
                "expected_finish": finish,
                "finish_text": finish_text,
            }
        )
    total = sum(r["total"] for r in readers)
    submitted = sum(r["submitted"] for r in readers)
    return {
        "study": str(reader_study.public_id),
        "status": reader_study.status,
        "total": total,
        "submitted": submitted,
        "practice_total": sum(r["practice_total"] for r in readers),
        "practice_submitted": sum(r["practice_submitted"] for r in readers),
        "revisions": Rating.objects.filter(
            assignment__reader_study=reader_study, version__gt=1
        ).count(),
        "median_seconds": study_median,
        "median_text": duration_text(study_median),
        "idle_days": PROGRESS_IDLE_DAYS,
        "pace_days": PROGRESS_PACE_DAYS,
        "own_pace_min_reads": PROGRESS_OWN_PACE_MIN_READS,
        "readers": readers,
        "reminders": progress_reminders(readers, with_contact=with_contact),
    }


def progress_reminders(readers: list[dict[str, Any]], *, with_contact: bool = True) -> str:
    """The plain-text list a coordinator pastes into a mail: one line per reader with reads
    left (name, e-mail where shown, reads left, last activity)."""
    return "\n".join(
        f"{r['name'] or r['reader']}"
        f"{(' <' + (r['email'] or 'no e-mail') + '>') if with_contact else ''}: {r['left']} of "
        f"{r['total']} reads left; last activity "
        f"{r['last_activity_text'] or 'none yet'}"
        for r in readers
        if r["left"]
    )


def _calendar_pace(
    submits: list[datetime], *, left: int, now: datetime
) -> tuple[float | None, str | None, str]:
    """(reads per day, expected finish date ISO, text) from the reader's recent submits."""
    if not left:
        return None, None, ""
    window_start = now - timedelta(days=PROGRESS_PACE_DAYS)
    recent = sorted(t for t in submits if t >= window_start)
    if not recent:
        return None, None, f"no reads in the last {PROGRESS_PACE_DAYS} days"
    earliest = min(submits)
    since = max(window_start, earliest)
    days = max(1.0, (now - since).total_seconds() / 86400)
    per_day = len(recent) / days
    finish = (now + timedelta(days=left / per_day)).astimezone(UTC).date()
    over = (
        f"the last {PROGRESS_PACE_DAYS} days" if since == window_start else "since the first read"
    )
    return (
        round(per_day, 2),
        finish.isoformat(),
        f"about {finish.isoformat()} ({per_day:.1f} reads a day {over})",
    )


def progress_csv(progress: dict[str, Any]) -> str:
    """The progress table (``reader_study_progress``) as CSV, one row per reader."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(PROGRESS_CSV_COLUMNS)
    for r in progress["readers"]:
        writer.writerow(
            [
                r["reader"],
                r["name"],
                r["email"],
                r["cohort"],
                r["status"],
                r["submitted"],
                r["total"],
                r["in_progress"],
                r["left"],
                r["last_activity"] or "",
                "" if r["median_seconds"] is None else round(r["median_seconds"], 1),
                "" if r["estimate_seconds"] is None else round(r["estimate_seconds"], 1),
                r["estimate_basis"],
                "" if r["reads_per_day"] is None else r["reads_per_day"],
                r["expected_finish"] or "",
                r["practice_submitted"],
                r["practice_total"],
            ]
        )
    return out.getvalue()


def rating_history(*, rating: Rating) -> list[dict[str, Any]]:
    """Every stored version of a rating (from the trigger-written event table), oldest first."""
    events = (
        Rating.pgh_event_model.objects.filter(pgh_obj_id=rating.pk)  # type: ignore[attr-defined]
        .select_related("pgh_context")
        .order_by("pgh_id")
    )
    history = []
    for event in events:
        context = event.pgh_context.metadata if event.pgh_context else {}
        history.append(
            {
                "event": event.pgh_label,
                "at": event.pgh_created_at,
                "version": event.version,
                "answers": event.answers,
                "ai_guess": event.ai_guess,
                "by_user_id": context.get("user"),
                "action": context.get("action", "database change outside the application"),
            }
        )
    return history


# --- readers ------------------------------------------------------------------------------


def worklist_for_reader(*, user: UserLike) -> list[dict[str, Any]]:
    """The reader's studies with progress (real cases; practice apart), the next unrated case
    and the first case (from which a reader who has finished pages through their ratings to
    revise them), one query."""
    if not user_has_role(user, Role.READER):
        return []
    mine = assignments_visible_to_reader(user=user).filter(reader_study=OuterRef("pk")).order_by()
    # Practice reads are counted apart, as on the progress page: "done / total" is the study.
    real = mine.filter(case__is_practice=False)
    practice = mine.filter(case__is_practice=True)
    submitted = Assignment.Status.SUBMITTED
    studies = (
        reader_studies_visible_to_reader(user=user)
        .annotate(
            total=_count_of(real),
            done=_count_of(real.filter(status=submitted)),
            practice_total=_count_of(practice),
            practice_done=_count_of(practice.filter(status=submitted)),
            next_assignment=Subquery(
                mine.exclude(status=Assignment.Status.SUBMITTED)
                .order_by("position")
                .values("public_id")[:1]
            ),
            first_assignment=Subquery(mine.order_by("position").values("public_id")[:1]),
        )
        .order_by("name", "id")
        .values(
            "public_id",
            "name",
            "status",
            "allow_revisions",
            "total",
            "done",
            "practice_total",
            "practice_done",
            "next_assignment",
            "first_assignment",
        )
    )
    return [
        {
            "id": str(study["public_id"]),
            "name": study["name"],
            "status": study["status"],
            "total": study["total"],
            "done": study["done"],
            "practice_total": study["practice_total"],
            "practice_done": study["practice_done"],
            "next_assignment": (
                str(study["next_assignment"]) if study["next_assignment"] else None
            ),
            "first_assignment": (
                str(study["first_assignment"]) if study["first_assignment"] else None
            ),
            "can_revise": study["status"] == ReaderStudy.Status.OPEN and study["allow_revisions"],
        }
        for study in studies
    ]


def _count_of(assignments: QuerySet[Assignment]) -> Coalesce:
    counted = assignments.values("reader_study").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted), 0)


def assignment_list_for_reader(*, user: UserLike, study_id: Any = None) -> QuerySet[Assignment]:
    """The reader's own assignments in studies they can read (never a draft study)."""
    mine = assignments_visible_to_reader(user=user)
    if study_id is not None:
        mine = mine.filter(reader_study__public_id=public_id_or_404(study_id))
    return mine.select_related("reader_study").order_by("reader_study_id", "position")


def assignment_get_for_reader(*, user: UserLike, public_id: Any) -> Assignment:
    """The reader's own assignment; anyone else's (or a draft study's) is a 404."""
    return public_id_get_or_404(
        assignments_visible_to_reader(user=user).select_related(
            "reader_study",
            "case__imaging_study",
            "case__first_rendering",
            "case__second_rendering",
            "rating",
        ),
        public_id,
        what="case",
    )


def assignment_ref_get_for_reader(*, user: UserLike, public_id: Any) -> Assignment:
    """The reader's own assignment, by the same rule as ``assignment_get_for_reader``, with
    its ids only: for the write services, which lock the row and load what they need."""
    return public_id_get_or_404(
        assignments_visible_to_reader(user=user).only("pk", "reader_id"), public_id, what="case"
    )


def next_assignment_id_for_reader(*, user: UserLike, study_id: Any) -> uuid.UUID | None:
    """The id of the reader's next unrated case in a study they can read, or None."""
    return (
        assignments_visible_to_reader(user=user)
        .filter(reader_study__public_id=public_id_or_404(study_id, what="reader study"))
        .exclude(status=Assignment.Status.SUBMITTED)
        .order_by("position")
        .values_list("public_id", flat=True)
        .first()
    )


def answers_for_reader(answers: dict[str, Any]) -> dict[str, Any]:
    """Stored answers as the reader gave them: letter codes and texts, no source values."""
    out: dict[str, Any] = {}
    for item_id, answer in answers.items():
        if "code" in answer:
            out[item_id] = answer["code"]
        elif "text" in answer:
            out[item_id] = answer["text"]
    return out


def spans_for_reader(
    rating: Rating, *, stored: Iterable[ErrorSpan] | None = None
) -> list[dict[str, Any]]:
    """The rating's error spans as the reader marked them; ``stored``: the spans a write has
    just saved (the same rows, without reading them back)."""
    spans = (
        sorted(stored, key=lambda s: (s.section, s.start))
        if stored is not None
        else rating.error_spans.order_by("section", "start")
    )
    return [
        {
            "side": s.side,
            "section": s.section,
            "start": s.start,
            "end": s.end,
            "category": s.category,
            "significant": s.is_significant,
            "replacement": s.replacement_text,
        }
        for s in spans
    ]


CLINICAL_FIELDS = (
    ("indication", "Indication / history"),
    ("technique", "Technique"),
    ("comparison", "Comparison"),
)


def clinical_context_shown(*, reader_study: ReaderStudy, imaging: Study) -> list[dict[str, str]]:
    """The "Clinical information" rows readers see above both reports: of the imaging study,
    never of a report, so every arm of one study shows the same rows ([] where hidden)."""
    if not reader_study.show_clinical_context:
        return []
    rows = []
    for name, label in CLINICAL_FIELDS:
        text = context_render(getattr(imaging, name))
        if text:
            rows.append({"label": label, "text": text})
    return rows


def case_view_for_reader(*, assignment: Assignment) -> dict[str, Any]:
    """Everything the reading page needs for one assignment, blinded.

    Reports are listed in A, B order whatever their source, rendered by one renderer, and
    carry no id, kind, date or author.
    """
    study = assignment.reader_study
    sides = protocols.Sides(candidate_side=assignment.candidate_side)

    def shown(side: str) -> dict[str, str]:
        # Past draft the pinned rendering is all a reader sees: the report row itself is
        # loaded (one query) only where nothing was pinned.
        if study.status != ReaderStudy.Status.DRAFT:
            report_id = getattr(assignment, f"report_{side}_id")
            pinned = _pinned_rendering(case=assignment.case, report_id=report_id)
            if pinned is not None:
                return pinned.sections()
        report = getattr(assignment, f"report_{side}")
        return report_sections_shown(reader_study=study, case=assignment.case, report=report)

    reports = [{"side": "A" if sides.is_pairwise else "", **shown("a")}]
    if sides.is_pairwise and assignment.report_b_id is not None:
        reports.append({"side": "B", **shown("b")})
    for report in reports:
        report["label"] = sides.label(report["side"])
    # One query for the reader's whole list (positions, ids and images) instead of count +
    # prev + next. The next case's images are named so that the page can fetch them while
    # this case is read (images only: nothing of its reports).
    order = list(
        Assignment.objects.filter(reader_study=study, reader_id=assignment.reader_id)
        .order_by("position")
        .values_list(
            "position", "public_id", "case__imaging_study__study_instance_uid", "case__is_practice"
        )
    )
    total = len(order)
    before = [pid for pos, pid, _, _ in order if pos < assignment.position]
    after = [(pid, uid) for pos, pid, uid, _ in order if pos > assignment.position]
    previous_id = before[-1] if before else None
    following_id, following_uid = after[0] if after else (None, None)
    is_practice = assignment.case.is_practice
    # Counted within its kind: practice cases come first, and the real ones count from 1.
    kind = [pos for pos, _, _, practice in order if practice == is_practice]
    number = kind.index(assignment.position) + 1 if assignment.position in kind else 0
    counter = f"{'Practice case' if is_practice else 'Case'} {number} of {len(kind)}"
    rating = rating_of(assignment)
    can_write = study.status == ReaderStudy.Status.OPEN and (
        rating is None or (study.allow_revisions and not is_practice)
    )
    return {
        "assignment": str(assignment.public_id),
        "study": {"id": str(study.public_id), "name": study.name, "status": study.status},
        "protocol": {
            "title": study.protocol["title"],
            "instructions": study.protocol.get("instructions", ""),
        },
        "position": assignment.position,
        "total": total,
        "counter": counter,
        "practice": (
            {"feedback": practice_feedback_for_reader(assignment=assignment, rating=rating)}
            if is_practice
            else None
        ),
        "status": assignment.status,
        "previous": str(previous_id) if previous_id else None,
        "next": str(following_id) if following_id else None,
        "image_study_uid": assignment.case.imaging_study.study_instance_uid,
        "next_image_study_uid": following_uid,
        "clinical": clinical_context_shown(
            reader_study=study, imaging=assignment.case.imaging_study
        ),
        "reports": reports,
        "form": protocols.form_build(study.protocol, sides),
        "draft": assignment.draft,
        "draft_seq": assignment.draft_seq,
        "rating": (
            {
                "version": rating.version,
                "answers": answers_for_reader(rating.answers),
                "spans": spans_for_reader(rating),
            }
            if rating
            else None
        ),
        "can_write": can_write,
    }


def rating_of(assignment: Assignment) -> Rating | None:
    """The assignment's rating (loaded with it by the selectors above), or None."""
    try:
        return assignment.rating
    except Rating.DoesNotExist:
        return None


def rating_get_for_reader(*, user: UserLike, assignment_id: Any) -> Rating:
    rating = rating_of(assignment_get_for_reader(user=user, public_id=assignment_id))
    if rating is None:
        raise Http404
    return rating


def rating_history_for_reader(*, rating: Rating) -> list[dict[str, Any]]:
    """The reader's own versions in their own terms (codes and texts, no source values)."""
    return [
        {
            "version": entry["version"],
            "at": entry["at"],
            "event": entry["event"],
            "answers": answers_for_reader(entry["answers"] or {}),
        }
        for entry in rating_history(rating=rating)
    ]


def practice_feedback_for_reader(
    *, assignment: Assignment, rating: Rating | None
) -> list[dict[str, Any]] | None:
    """A submitted practice case's answers beside the reference, question by question, on
    this reader's sides (None until submitted: the reference is shown only after).

    Options and prompts in the reader's own words (``Report A`` as this reader saw it); no
    stored value or source, and no AI-guess question (protocols.protocol_for_reference).
    """
    if rating is None or not assignment.case.is_practice:
        return None
    study = assignment.reader_study
    protocol = protocols.protocol_for_reference(study.protocol)
    sides = protocols.Sides(candidate_side=assignment.candidate_side)
    reference = protocols.answers_on_sides(
        protocol,
        assignment.case.reference_answers,
        entered=protocols.reference_sides(study.protocol),
        shown=sides,
    )
    yours = protocols.answers_on_sides(protocol, rating.answers, entered=sides, shown=sides)
    rows = []
    for item in protocols.form_build(protocol, sides):
        if item["type"] == "error_spans" or (item["id"] not in yours | reference):
            continue
        mine, theirs = yours.get(item["id"], {}), reference.get(item["id"], {})
        rows.append(
            {
                "prompt": item["prompt"],
                "yours": mine.get("label") or mine.get("text", ""),
                "yours_code": mine.get("code", ""),
                "reference": theirs.get("label") or theirs.get("text", ""),
                "reference_code": theirs.get("code", ""),
                "agrees": "code" in theirs and mine.get("code") == theirs["code"],
            }
        )
    return rows


def practice_cases_for_coordinator(*, reader_study: ReaderStudy) -> list[dict[str, Any]]:
    """The study's cases for the practice page, one row per imaging study (practice is chosen
    per imaging study, all its arms at once), with whether each arm's case has its reference
    answers. Staff only: it names the cases' sources."""
    rows: dict[int, dict[str, Any]] = {}
    for case in case_list(reader_study=reader_study):
        row = rows.setdefault(
            case.imaging_study_id,
            {
                "imaging_study": case.imaging_study,
                "case": case,
                "is_practice": case.is_practice,
                "cases": [],
            },
        )
        row["cases"].append(
            {
                "case": case,
                "arm": case.arm,
                "has_reference": bool(case.reference_answers),
                "reference_set_at": case.reference_set_at,
            }
        )
    return list(rows.values())


def reference_form_for_coordinator(
    *,
    reader_study: ReaderStudy,
    case: Case,
    answers: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    """What the reference-answers page shows: the case's reports as Report A (its first
    report) and Report B, with their sources (coordinators know them), and the questions as
    readers see them on those sides, filled with ``answers`` (letter codes and texts by item
    id; default: the stored reference) and each item's message in ``errors``."""
    protocol = protocols.protocol_for_reference(reader_study.protocol)
    sides = protocols.reference_sides(reader_study.protocol)
    shown = [("A" if sides.is_pairwise else "", case.first_report)]
    if sides.is_pairwise and case.second_report is not None:
        shown.append(("B", case.second_report))
    reports = [
        {
            "side": side,
            "label": sides.label(side),
            "source": report.source.label if report.source else report.get_kind_display(),
            **report_sections_shown(reader_study=reader_study, case=case, report=report),
        }
        for side, report in shown
    ]
    if answers is None:
        stored = protocols.answers_on_sides(
            protocol, case.reference_answers, entered=sides, shown=sides
        )
        answers = {item: a.get("code") or a.get("text", "") for item, a in stored.items()}
    form = []
    for item in protocols.form_build(protocol, sides):
        if item["type"] == "error_spans":
            continue
        value = answers.get(item["id"], "")
        options = [{**o, "checked": o["code"] == value} for o in item.get("options", [])]
        error = (errors or {}).get(item["id"], "")
        form.append({**item, "options": options, "value": value, "error": error})
    return {
        "reports": reports,
        "form": form,
        "has_spans": any(q["type"] == "error_spans" for q in protocol["questions"]),
    }
