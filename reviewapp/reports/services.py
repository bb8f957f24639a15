"""Writes of report texts: original reports from CSV files, and new versions of a report.

A CSV row names its study by the StudyInstanceUID or AccessionNumber the hospital knows;
the archive only holds de-identified ones, so rows are matched through the keyed UID hash and
the pseudonym map. Report text is never logged or put into messages.

Reports are immutable (see reports.models): a re-import with a different text stores the next
version of the study's original and leaves the previous one, with every case that pins it,
exactly as it was. The result names the reader studies whose cases keep the previous version.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction

from reviewapp.core.csv_input import CsvRefused, csv_rows, csv_text
from reviewapp.core.errors import ApplicationError
from reviewapp.core.history import history_context_set
from reviewapp.imaging.ingest.deid import pseudonymize_uid
from reviewapp.imaging.ingest.services import acting_user
from reviewapp.imaging.models import PseudonymMapping, Study
from reviewapp.reports import candidate_formats
from reviewapp.reports.models import Report, ReportSource
from reviewapp.reports.source_schema import source_provenance_validate
from reviewapp.studies.models import Case, ReaderStudy

if TYPE_CHECKING:
    from reviewapp.generation.models import ModelConfig

logger = logging.getLogger(__name__)

MAX_CSV_BYTES = 50 * 1024 * 1024
MAX_FIELD_CHARS = 100_000
STRATUM_MAX = 64

# Accepted spellings of each column (compared lower-cased, spaces and underscores removed).
_COLUMNS = {
    "study_uid": {"studyinstanceuid", "studyuid"},
    "accession": {"accessionnumber", "accession", "accessionno"},
    # A research dataset's own study id, recorded when its images were imported.
    "dataset_id": {"studyid", "datasetstudyid"},
    "findings": {"findings", "finding"},
    "impression": {"impression", "impressions", "conclusion"},
    "stratum": {"stratum", "strata", "label"},
    # Clinical context of the study (not of the report): shown to readers above both reports.
    "indication": {
        "indication",
        "indications",
        "history",
        "clinicalhistory",
        "clinicalindication",
        "indicationhistory",
        "reasonforexam",
    },
    "technique": {"technique"},
    "comparison": {"comparison", "comparisons"},
}
CONTEXT_COLUMNS = ("indication", "technique", "comparison")


@dataclass(frozen=True)
class RowProblem:
    """One record that was not imported; ``row`` counts records as the format numbers them
    (CSV: the header is row 1; JSONL: the line; ReXrank: the position), ``key`` is the
    ReXrank study id when there is one."""

    row: int
    reason: str
    key: str = ""


@dataclass(frozen=True)
class AffectedStudy:
    """A reader study whose cases still hold a version an import replaced (and keep it)."""

    public_id: str
    name: str
    status: str
    cases: int


@dataclass
class ReportsImportResult:
    created: int = 0
    versioned: int = 0  # a changed text, stored as the next version of the study's original
    unchanged: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    error: str = ""  # the whole file was refused (e.g. no key column)
    affected_studies: list[AffectedStudy] = field(default_factory=list)

    @property
    def imported(self) -> int:
        return self.created + self.versioned + self.unchanged

    @property
    def versioned_message(self) -> str:
        """What became of changed reports, in words every interface shows ("" if none)."""
        if not self.versioned:
            return ""
        if self.versioned == 1:
            message = "1 report changed and was stored as a new version."
        else:
            message = f"{self.versioned} reports changed and were stored as new versions."
        kept = [s for s in self.affected_studies if s.status != ReaderStudy.Status.DRAFT]
        drafts = [s for s in self.affected_studies if s.status == ReaderStudy.Status.DRAFT]
        if kept:
            names = ", ".join(f"'{s.name}' ({s.status})" for s in kept)
            message += f" Cases in {names} keep the version their readers rated."
        if drafts:
            names = ", ".join(f"'{s.name}'" for s in drafts)
            message += (
                f" Draft studies ({names}) keep the previous version until a coordinator moves "
                "them to the new versions from the study's page."
            )
        if not self.affected_studies:
            message += " No reader study uses the previous versions."
        return message


def _normalise(header: str) -> str:
    return header.strip().lower().replace(" ", "").replace("_", "").replace("-", "")


def _column_map(headers: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, header in enumerate(headers):
        key = _normalise(header)
        for name, spellings in _COLUMNS.items():
            if key in spellings and name not in found:
                found[name] = index
    return found


def reports_import_csv(
    *,
    data: bytes,
    source_name: str,
    author: AbstractBaseUser | AnonymousUser | None = None,
) -> ReportsImportResult:
    """Create or update the original report of each study a CSV row names.

    Columns: StudyInstanceUID, AccessionNumber or a research dataset's study_id (one is
    required), findings, impression, and
    an optional stratum (e.g. normal/abnormal) and clinical context (indication or history,
    technique, comparison) set on the study. Each bad row is reported by
    number with its reason and the good rows still import.
    """
    result = ReportsImportResult()
    if len(data) > MAX_CSV_BYTES:
        result.error = f"The file is larger than {MAX_CSV_BYTES // (1024 * 1024)} MB."
        return result
    try:
        headers, rows = csv_rows(csv_text(data))
    except CsvRefused as exc:
        result.error = str(exc)
        return result
    columns = _column_map(headers)
    if not {"study_uid", "accession", "dataset_id"} & set(columns):
        result.error = (
            "The header row needs a StudyInstanceUID, AccessionNumber or study_id column "
            "(and findings, impression; optionally stratum, indication, technique, comparison)."
        )
        return result
    if "findings" not in columns and "impression" not in columns:
        result.error = "The header row needs a findings and/or an impression column."
        return result

    secret = str(settings.RADREVIEW_DEID_SECRET).encode()
    seen: dict[int, int] = {}
    replaced: list[int] = []  # ids of the versions this import superseded
    for row in rows:
        if row.problem:
            result.problems.append(RowProblem(row.number, row.problem))
            continue
        problem = _row_import(
            values=row.values,
            columns=columns,
            row=row.number,
            secret=secret,
            source_name=source_name,
            author=author,
            result=result,
            seen=seen,
            replaced=replaced,
        )
        if problem is not None:
            result.problems.append(RowProblem(row.number, problem))
    result.affected_studies = _studies_holding(replaced)
    logger.info(
        "Reports CSV imported: %d created, %d versioned, %d unchanged, %d rows refused",
        result.created,
        result.versioned,
        result.unchanged,
        len(result.problems),
    )
    return result


def _row_import(
    *,
    values: list[str],
    columns: dict[str, int],
    row: int,
    secret: bytes,
    source_name: str,
    author: AbstractBaseUser | AnonymousUser | None,
    result: ReportsImportResult,
    seen: dict[int, int],
    replaced: list[int],
) -> str | None:
    def get(name: str) -> str:
        index = columns.get(name)
        return values[index].strip() if index is not None else ""

    findings, impression = get("findings"), get("impression")
    if not findings and not impression:
        return "findings and impression are both empty"
    if len(findings) > MAX_FIELD_CHARS or len(impression) > MAX_FIELD_CHARS:
        return f"the report text is longer than {MAX_FIELD_CHARS} characters"
    stratum = get("stratum").lower()
    if len(stratum) > STRATUM_MAX:
        return f"the stratum is longer than {STRATUM_MAX} characters"
    context = {name: get(name) for name in CONTEXT_COLUMNS if name in columns and get(name)}
    if any(len(text) > MAX_FIELD_CHARS for text in context.values()):
        return f"the clinical context is longer than {MAX_FIELD_CHARS} characters"
    if get("dataset_id"):
        study, why = study_match_dataset_id(get("dataset_id"))
    else:
        study, why = study_match(
            study_uid=get("study_uid"), accession=get("accession"), secret=secret
        )
    if study is None:
        return why
    if study.pk in seen:
        return f"names the same study as row {seen[study.pk]}"
    seen[study.pk] = row
    imported = report_original_upsert(
        study=study,
        findings=findings,
        impression=impression,
        stratum=stratum or None,
        source_note=source_name,
        author=author,
        change_reason=f"re-imported from {source_name}"[:200],
    )
    setattr(result, imported.outcome, getattr(result, imported.outcome) + 1)
    if imported.previous is not None:
        replaced.append(imported.previous.pk)
    if context:
        study_context_set(study=study, **context)
    return None


def study_context_set(
    *,
    study: Study,
    indication: str | None = None,
    technique: str | None = None,
    comparison: str | None = None,
) -> int:
    """Store a study's clinical context (the texts given; None leaves one as it is).

    Stored as imported, like report text: the reader-facing rendering removes names and
    dates (``studies.rendering.context_render``) for readers and prompts alike. Returns how
    many rows changed (0 or 1).
    """
    changes = {
        name: value.strip()
        for name, value in (
            ("indication", indication),
            ("technique", technique),
            ("comparison", comparison),
        )
        if value is not None
    }
    if not changes:
        return 0
    return Study.objects.filter(pk=study.pk).exclude(**changes).update(**changes)


def study_contexts_set_many(*, contexts: list[tuple[Study, dict[str, str | None]]]) -> int:
    """``study_context_set`` for many studies in one statement (a research dataset's
    contexts): each dict names indication / technique / comparison (None leaves one as it
    is). Returns how many studies changed."""
    changed: list[Study] = []
    for study, values in contexts:
        updates = {k: v.strip() for k, v in values.items() if v is not None}
        if any(getattr(study, k) != v for k, v in updates.items()):
            for name, value in updates.items():
                setattr(study, name, value)
            changed.append(study)
    if changed:
        Study.objects.bulk_update(
            changed, ["indication", "technique", "comparison"], batch_size=1000
        )
    return len(changed)


def _studies_holding(report_ids: list[int]) -> list[AffectedStudy]:
    """Reader studies with cases that pin any of these report versions, by name."""
    if not report_ids:
        return []
    cases = Case.objects.filter(
        models.Q(first_report_id__in=report_ids) | models.Q(second_report_id__in=report_ids)
    )
    rows = (
        cases.values("reader_study__public_id", "reader_study__name", "reader_study__status")
        .annotate(n=models.Count("id"))
        .order_by("reader_study__name", "reader_study__public_id")
    )
    return [
        AffectedStudy(
            public_id=str(row["reader_study__public_id"]),
            name=row["reader_study__name"],
            status=row["reader_study__status"],
            cases=row["n"],
        )
        for row in rows
    ]


_NO_DATASET_STUDY = "no study in the archive has this dataset study id"


def study_match_dataset_id(dataset_id: str) -> tuple[Study | None, str]:
    """The study a research dataset's own study id names (recorded at its import), or None
    and why."""
    matches = list(Study.objects.filter(dataset_study_id=dataset_id)[:2])
    if len(matches) > 1:
        return None, "more than one study has this dataset study id"
    if not matches:
        return None, _NO_DATASET_STUDY
    return matches[0], ""


def study_match(*, study_uid: str, accession: str, secret: bytes) -> tuple[Study | None, str]:
    """The archived study a hospital identifier names, or None and why (no identifiers)."""
    if not study_uid and not accession:
        return None, "has neither a StudyInstanceUID nor an AccessionNumber"
    if study_uid:
        candidates = {study_uid, pseudonymize_uid(study_uid, secret=secret)}
        mapped = PseudonymMapping.objects.filter(
            kind=PseudonymMapping.Kind.STUDY_UID, original=study_uid
        ).values_list("pseudonym", flat=True)
        candidates.update(mapped)
        study = Study.objects.filter(study_instance_uid__in=candidates).first()
        if study is not None:
            return study, ""
        if not accession:
            return None, "no study in the archive has this StudyInstanceUID"
    pseudonyms = set(
        PseudonymMapping.objects.filter(
            kind=PseudonymMapping.Kind.ACCESSION, original=accession
        ).values_list("pseudonym", flat=True)
    )
    if not settings.RADREVIEW_DEID_ENABLED:
        pseudonyms.add(accession)
    matches = (
        list(Study.objects.filter(accession_pseudonym__in=pseudonyms)[:2]) if pseudonyms else []
    )
    if len(matches) > 1:
        return None, "this AccessionNumber matches more than one study; use StudyInstanceUID"
    if not matches:
        return None, "no study in the archive has this AccessionNumber"
    return matches[0], ""


@dataclass(frozen=True)
class ReportImported:
    outcome: str  # "created", "versioned" or "unchanged"
    report: Report  # the latest version of the study-and-source line after the import
    previous: Report | None = None  # the version a changed text replaced


OriginalImported = ReportImported


@transaction.atomic
def report_original_upsert(
    *,
    study: Study,
    findings: str,
    impression: str,
    stratum: str | None = None,
    source_note: str = "",
    author: AbstractBaseUser | AnonymousUser | None = None,
    change_reason: str = "",
) -> OriginalImported:
    """Create the original report of ``study``, or store a changed text as its next version.

    An identical text changes nothing. Locks the study row so two imports of the same study
    cannot both create (or both version) its original.
    """
    if not findings.strip() and not impression.strip():
        raise ValueError("A report needs findings or an impression.")
    locked = Study.objects.select_for_update().get(pk=study.pk)
    if stratum is not None and locked.stratum != stratum:
        locked.stratum = stratum
        locked.save(update_fields=["stratum", "updated_at"])
    latest = Report.objects.filter(study=locked, kind=Report.Kind.ORIGINAL, is_latest=True).first()
    return _line_write(
        study=locked,
        latest=latest,
        kind=Report.Kind.ORIGINAL,
        source=report_source_original(),
        findings=findings,
        impression=impression,
        source_note=source_note,
        author=author,
        change_reason=change_reason,
    )


@dataclass(frozen=True)
class OriginalText:
    study: Study
    findings: str
    impression: str


def reports_original_upsert_many(
    *,
    texts: list[OriginalText],
    source_note: str,
    author: AbstractBaseUser | AnonymousUser | None = None,
    change_reason: str = "",
) -> dict[str, int]:
    """``report_original_upsert`` for many studies at once (a research dataset's reports):
    the studies without an original get theirs in one insert; a study that has one goes
    through ``report_original_upsert`` (identical text: nothing; changed: the next version).
    Returns how many were created, versioned and unchanged."""
    counts = {"created": 0, "versioned": 0, "unchanged": 0}
    if not texts:
        return counts
    for text in texts:
        if not text.findings.strip() and not text.impression.strip():
            raise ValueError("A report needs findings or an impression.")
    study_ids = [t.study.pk for t in texts]
    latest = {
        study_id: (findings, impression)
        for study_id, findings, impression in Report.objects.filter(
            study_id__in=study_ids, kind=Report.Kind.ORIGINAL, is_latest=True
        ).values_list("study_id", "findings", "impression")
    }
    # An identical text changes nothing (as in ``_line_write``): no lock needed to see that.
    same = [t for t in texts if latest.get(t.study.pk) == (t.findings, t.impression)]
    counts["unchanged"] = len(same)
    texts = [t for t in texts if latest.get(t.study.pk) != (t.findings, t.impression)]
    having = {t.study.pk for t in texts if t.study.pk in latest}
    new = [t for t in texts if t.study.pk not in having]
    source = report_source_original()
    person = acting_user(author)
    try:
        with transaction.atomic():
            # The same rows ``_line_write`` creates for a first version; the partial unique
            # constraint (one latest original per study) still guards against a racing import.
            Report.objects.bulk_create(
                [
                    Report(
                        study_id=t.study.pk,
                        kind=Report.Kind.ORIGINAL,
                        source=source,
                        findings=t.findings,
                        impression=t.impression,
                        author=person,
                        source_note=source_note[:256],
                    )
                    for t in new
                ],
                batch_size=1000,
            )
        counts["created"] = len(new)
        rest = [t for t in texts if t.study.pk in having]
    except IntegrityError:
        # Another import wrote some of these originals meanwhile: take them one by one.
        rest = texts
    for text in rest:
        imported = report_original_upsert(
            study=text.study,
            findings=text.findings,
            impression=text.impression,
            source_note=source_note,
            author=author,
            change_reason=change_reason,
        )
        counts[imported.outcome] += 1
    return counts


def _line_write(
    *,
    study: Study,
    latest: Report | None,
    kind: str,
    source: ReportSource,
    findings: str,
    impression: str,
    source_note: str,
    author: AbstractBaseUser | AnonymousUser | None,
    change_reason: str,
) -> ReportImported:
    # One study-and-source line: its first version, its next one when the text changed, or
    # nothing when it is the same. The caller holds the study row's lock.
    if latest is None:
        report = Report.objects.create(
            study=study,
            kind=kind,
            source=source,
            findings=findings,
            impression=impression,
            author=acting_user(author),
            source_note=source_note[:256],
        )
        return ReportImported("created", report)
    if latest.findings == findings and latest.impression == impression:
        return ReportImported("unchanged", latest)
    report = report_version_create(
        previous=latest,
        findings=findings,
        impression=impression,
        author=author,
        change_reason=change_reason,
        source_note=source_note,
    )
    return ReportImported("versioned", report, previous=latest)


@transaction.atomic
def report_version_create(
    *,
    previous: Report,
    findings: str,
    impression: str,
    change_reason: str,
    author: AbstractBaseUser | AnonymousUser | None = None,
    source_note: str = "",
) -> Report:
    """Store a changed text as the next version of ``previous``'s line; return the new row.

    ``previous`` must be the line's latest version (else code ``report_not_latest``); an
    identical text is refused (``report_unchanged``): callers treat that as a no-op first.
    The previous version stays as it is, apart from no longer being the latest.
    """
    # The row lock serialises two edits of the same line: the second sees it is no longer
    # the latest instead of failing on the one-latest constraint.
    locked = Report.objects.select_for_update().get(pk=previous.pk)
    if not locked.is_latest:
        raise ApplicationError(
            "This report has a newer version already; change the latest one.",
            code="report_not_latest",
        )
    if locked.findings == findings and locked.impression == impression:
        raise ApplicationError("The text is unchanged; nothing to store.", code="report_unchanged")
    if not findings.strip() and not impression.strip():
        raise ApplicationError("A report needs findings or an impression.", code="report_empty")
    history_context_set(user=getattr(acting_user(author), "pk", None), action="report_version")
    # The flag goes first: only one version of a line may be the latest at any moment.
    Report.objects.filter(pk=locked.pk).update(is_latest=False)
    return Report.objects.create(
        study_id=locked.study_id,
        kind=locked.kind,
        findings=findings,
        impression=impression,
        author=acting_user(author),
        derived_from=locked.derived_from,
        source_id=locked.source_id,
        source_note=(source_note or locked.source_note)[:256],
        lineage=locked.lineage,
        version=locked.version + 1,
        supersedes=locked,
        change_reason=change_reason[:200],
    )


# --- report sources ----------------------------------------------------------------------------

SOURCE_NAME_MAX = 100
SOURCE_DESCRIPTION_MAX = 2000


def report_source_original() -> ReportSource:
    """The one source of the radiologists' original reports (created on first use)."""
    source, _ = ReportSource.objects.get_or_create(kind=ReportSource.Kind.ORIGINAL)
    return source


def report_source_edited() -> ReportSource:
    """The one source of reports readers produced by correcting another (created on first use)."""
    source, _ = ReportSource.objects.get_or_create(kind=ReportSource.Kind.EDITED)
    return source


def report_source_for_model(*, model_config: ModelConfig) -> ReportSource:
    """The source of every report a configured model's generation runs write."""
    source, _ = ReportSource.objects.get_or_create(
        kind=ReportSource.Kind.MODEL, model_config=model_config
    )
    return source


@transaction.atomic
def report_source_external_save(
    *,
    name: str,
    version: str = "",
    description: str | None = None,
    provenance: dict | None = None,
) -> ReportSource:
    """The imported model named ``name`` at ``version``, created if new; a description or
    provenance given replaces the stored one. Bad values: ``ValidationError``."""
    name, version = name.strip(), version.strip()
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "Name the model whose reports these are."
    elif len(name) > SOURCE_NAME_MAX:
        errors["name"] = f"The name is longer than {SOURCE_NAME_MAX} characters."
    if len(version) > SOURCE_NAME_MAX:
        errors["version"] = f"The version is longer than {SOURCE_NAME_MAX} characters."
    if description is not None and len(description) > SOURCE_DESCRIPTION_MAX:
        errors["description"] = (
            f"The description is longer than {SOURCE_DESCRIPTION_MAX} characters."
        )
    if provenance is not None:
        try:
            source_provenance_validate(provenance)
        except ValidationError as exc:
            errors["provenance"] = exc.messages[0]
    if errors:
        raise ValidationError(errors)
    # The lock-free get_or_create is safe: the (name, version) constraint makes a racing
    # second create fail and get_or_create then fetches the winner's row.
    source, created = ReportSource.objects.get_or_create(
        kind=ReportSource.Kind.EXTERNAL,
        name=name,
        version=version,
        defaults={"description": description or "", "provenance": provenance or {}},
    )
    if not created:
        changed = []
        if description is not None and description != source.description:
            source.description = description
            changed.append("description")
        if provenance is not None and provenance != source.provenance:
            source.provenance = provenance
            changed.append("provenance")
        if changed:
            source.save(update_fields=[*changed, "updated_at"])
    return source


@transaction.atomic
def report_candidate_upsert(
    *,
    study: Study,
    source: ReportSource,
    findings: str,
    impression: str,
    source_note: str = "",
    author: AbstractBaseUser | AnonymousUser | None = None,
    change_reason: str = "",
) -> ReportImported:
    """Store ``source``'s report on ``study``: the first version of the study-and-source line,
    its next version when the text changed, or nothing when it is identical.

    Locks the study row so two imports of the same study cannot both create its line.
    """
    if source.kind != ReportSource.Kind.EXTERNAL:
        raise ApplicationError(
            "Only imported models' reports are imported as candidates.", code="not_external"
        )
    if not findings.strip() and not impression.strip():
        raise ApplicationError("A report needs findings or an impression.", code="report_empty")
    locked = Study.objects.select_for_update().get(pk=study.pk)
    latest = Report.objects.filter(study=locked, source=source, is_latest=True).first()
    return _line_write(
        study=locked,
        latest=latest,
        # Imported candidates are model output: kind ai, like a configured model's.
        kind=Report.Kind.AI,
        source=source,
        findings=findings,
        impression=impression,
        source_note=source_note,
        author=author,
        change_reason=change_reason,
    )


# --- candidate import --------------------------------------------------------------------------

MAX_CANDIDATES_BYTES = 50 * 1024 * 1024
MAX_CANDIDATE_ROWS = 50_000


@dataclass
class CandidatesImportResult(ReportsImportResult):
    source: ReportSource | None = None
    fmt: str = ""
    error_code: str = ""


def _study_for_candidate(
    record: candidate_formats.CandidateRow, *, secret: bytes
) -> tuple[Study | None, str]:
    """The study a record names by dataset study id, StudyInstanceUID or AccessionNumber."""
    if record.dataset_id:
        study, why = study_match_dataset_id(record.dataset_id)
        if study is not None or why != _NO_DATASET_STUDY:
            return study, why
        if not record.study_uid and not record.accession:
            if record.label:
                # A ReXrank key may be the StudyInstanceUID itself.
                study, _ = study_match(study_uid=record.dataset_id, accession="", secret=secret)
                if study is not None:
                    return study, ""
                return None, "no study in the archive has this dataset study id or StudyInstanceUID"
            return None, "no study in the archive has this dataset study id"
    return study_match(study_uid=record.study_uid, accession=record.accession, secret=secret)


def candidates_import(
    *,
    data: bytes,
    file_name: str,
    source_name: str,
    source_version: str = "",
    source_description: str | None = None,
    source_provenance: dict | None = None,
    fmt: str = "",
    author: AbstractBaseUser | AnonymousUser | None = None,
) -> CandidatesImportResult:
    """Import an external model's reports from a CSV, JSONL or ReXrank JSON file.

    Each record names its study by StudyInstanceUID or AccessionNumber (matched through the
    de-identification map) or by the dataset study id recorded at import; see
    ``candidate_formats`` for the layouts and how a single report string is split. Each record
    is the next version of the study-and-source line when its text changed, and nothing when
    identical. Bad records are named with the reason; the good ones import. The whole file is
    refused (``error``, ``error_code``) when it is too large, has too many records, is not the
    format, or the source is invalid; then nothing is stored, not even the source.
    """
    result = CandidatesImportResult()
    if len(data) > MAX_CANDIDATES_BYTES:
        result.error = f"The file is larger than {MAX_CANDIDATES_BYTES // (1024 * 1024)} MB."
        result.error_code = "too_large"
        return result
    if b"\x00" in data:
        result.error = "This is not a text file (it contains binary data)."
        result.error_code = "not_text"
        return result
    text = data.decode("utf-8-sig", errors="surrogateescape")
    fmt = fmt or candidate_formats.format_guess(file_name=file_name, text=text)
    result.fmt = fmt
    try:
        records = candidate_formats.rows_read(text=text, fmt=fmt, max_rows=MAX_CANDIDATE_ROWS)
    except candidate_formats.FileRefused as exc:
        result.error, result.error_code = str(exc), "bad_file"
        return result
    try:
        source = report_source_external_save(
            name=source_name,
            version=source_version,
            description=source_description,
            provenance=source_provenance,
        )
    except ValidationError as exc:
        result.error = " ".join(exc.messages)
        result.error_code = "bad_source"
        return result
    result.source = source
    secret = str(settings.RADREVIEW_DEID_SECRET).encode()
    seen: dict[int, int] = {}
    replaced: list[int] = []
    for record in records:
        problem = record.problem or _candidate_store(
            record=record,
            source=source,
            file_name=file_name,
            author=author,
            secret=secret,
            result=result,
            seen=seen,
            replaced=replaced,
        )
        if problem:
            result.problems.append(RowProblem(record.row, problem, record.label))
    result.affected_studies = _studies_holding(replaced)
    logger.info(
        "Candidate reports imported (%s, source %s): %d created, %d versioned, %d unchanged, "
        "%d records refused",
        fmt,
        source.public_id,
        result.created,
        result.versioned,
        result.unchanged,
        len(result.problems),
    )
    return result


def _candidate_store(
    *,
    record: candidate_formats.CandidateRow,
    source: ReportSource,
    file_name: str,
    author: AbstractBaseUser | AnonymousUser | None,
    secret: bytes,
    result: CandidatesImportResult,
    seen: dict[int, int],
    replaced: list[int],
) -> str:
    """Store one record; return why it was not stored ("" when it was)."""
    if not record.findings and not record.impression:
        return "findings and impression are both empty"
    if len(record.findings) > MAX_FIELD_CHARS or len(record.impression) > MAX_FIELD_CHARS:
        return f"the report text is longer than {MAX_FIELD_CHARS} characters"
    study, why = _study_for_candidate(record, secret=secret)
    if study is None:
        return why
    if study.pk in seen:
        return f"names the same study as record {seen[study.pk]}"
    seen[study.pk] = record.row
    imported = report_candidate_upsert(
        study=study,
        source=source,
        findings=record.findings,
        impression=record.impression,
        source_note=file_name,
        author=author,
        change_reason=f"re-imported from {file_name}"[:200],
    )
    setattr(result, imported.outcome, getattr(result, imported.outcome) + 1)
    if imported.previous is not None:
        replaced.append(imported.previous.pk)
    return ""
