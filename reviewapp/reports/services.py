"""Writes of report texts: original reports from CSV files, one original per study.

A CSV row names its study by the StudyInstanceUID or AccessionNumber the hospital knows;
the archive only holds de-identified ones, so rows are matched through the keyed UID hash and
the pseudonym map. Report text is never logged or put into messages.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from reviewapp.imaging.deid import pseudonymize_uid
from reviewapp.imaging.models import PseudonymMapping, Study
from reviewapp.reports.models import Report

logger = logging.getLogger(__name__)

MAX_CSV_BYTES = 50 * 1024 * 1024
MAX_FIELD_CHARS = 100_000
STRATUM_MAX = 64

# Accepted spellings of each column (compared lower-cased, spaces and underscores removed).
_COLUMNS = {
    "study_uid": {"studyinstanceuid", "studyuid"},
    "accession": {"accessionnumber", "accession", "accessionno"},
    "findings": {"findings", "finding"},
    "impression": {"impression", "impressions", "conclusion"},
    "stratum": {"stratum", "strata", "label"},
}


@dataclass(frozen=True)
class RowProblem:
    """One CSV row that was not imported; ``row`` counts records, the header being row 1."""

    row: int
    reason: str


@dataclass
class ReportsImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    error: str = ""  # the whole file was refused (e.g. no key column)

    @property
    def imported(self) -> int:
        return self.created + self.updated + self.unchanged


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


def _has_undecodable(values: list[str]) -> bool:
    # Bytes that were not UTF-8 were decoded to lone surrogates (surrogateescape).
    return any(any("\udc80" <= ch <= "\udcff" for ch in value) for value in values)


def reports_import_csv(
    *, data: bytes, source_name: str, author: AbstractBaseUser | None = None
) -> ReportsImportResult:
    """Create or update the original report of each study a CSV row names.

    Columns: StudyInstanceUID or AccessionNumber (one is required), findings, impression, and
    an optional stratum (e.g. normal/abnormal) set on the study. Each bad row is reported by
    number with its reason and the good rows still import.
    """
    result = ReportsImportResult()
    if len(data) > MAX_CSV_BYTES:
        result.error = f"The file is larger than {MAX_CSV_BYTES // (1024 * 1024)} MB."
        return result
    if b"\x00" in data:
        result.error = "This is not a CSV text file (it contains binary data)."
        return result
    text = data.decode("utf-8-sig", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        headers = next(reader)
    except StopIteration:
        result.error = "The file is empty."
        return result
    except csv.Error as exc:
        result.error = f"The header row is not valid CSV ({exc})."
        return result
    columns = _column_map(headers)
    if "study_uid" not in columns and "accession" not in columns:
        result.error = (
            "The header row needs a StudyInstanceUID or an AccessionNumber column "
            "(and findings, impression; optionally stratum)."
        )
        return result
    if "findings" not in columns and "impression" not in columns:
        result.error = "The header row needs a findings and/or an impression column."
        return result

    secret = str(settings.RADREVIEW_DEID_SECRET).encode()
    seen: dict[int, int] = {}
    # Rows are numbered as a spreadsheet shows them (header = 1), not by physical line:
    # findings often hold quoted line breaks.
    row_number = 1
    while True:
        row_number += 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            # The reader starts afresh at the next line, so later rows still get their chance.
            result.problems.append(RowProblem(row_number, f"malformed CSV ({exc})"))
            continue
        if not any(v.strip() for v in values):
            continue
        problem = _row_import(
            values=values,
            headers=headers,
            columns=columns,
            row=row_number,
            secret=secret,
            source_name=source_name,
            author=author,
            result=result,
            seen=seen,
        )
        if problem is not None:
            result.problems.append(RowProblem(row_number, problem))
    logger.info(
        "Reports CSV imported: %d created, %d updated, %d unchanged, %d rows refused",
        result.created,
        result.updated,
        result.unchanged,
        len(result.problems),
    )
    return result


def _row_import(
    *,
    values: list[str],
    headers: list[str],
    columns: dict[str, int],
    row: int,
    secret: bytes,
    source_name: str,
    author: AbstractBaseUser | None,
    result: ReportsImportResult,
    seen: dict[int, int],
) -> str | None:
    if len(values) != len(headers):
        return f"has {len(values)} fields where the header has {len(headers)}"
    if _has_undecodable(values):
        return "is not valid UTF-8 text (save the file as CSV UTF-8)"

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
    study, why = study_match(study_uid=get("study_uid"), accession=get("accession"), secret=secret)
    if study is None:
        return why
    if study.pk in seen:
        return f"names the same study as row {seen[study.pk]}"
    seen[study.pk] = row
    outcome = report_original_upsert(
        study=study,
        findings=findings,
        impression=impression,
        stratum=stratum or None,
        source_note=source_name,
        author=author,
    )
    setattr(result, outcome, getattr(result, outcome) + 1)
    return None


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


@transaction.atomic
def report_original_upsert(
    *,
    study: Study,
    findings: str,
    impression: str,
    stratum: str | None = None,
    source_note: str = "",
    author: AbstractBaseUser | None = None,
) -> str:
    """Create or replace the original report of ``study``; returns created/updated/unchanged.

    Locks the study row so two imports of the same study cannot both create an original.
    """
    if not findings.strip() and not impression.strip():
        raise ValueError("A report needs findings or an impression.")
    locked = Study.objects.select_for_update().get(pk=study.pk)
    if stratum is not None and locked.stratum != stratum:
        locked.stratum = stratum
        locked.save(update_fields=["stratum", "updated_at"])
    report = Report.objects.filter(study=locked, kind=Report.Kind.ORIGINAL).first()
    if report is None:
        Report.objects.create(
            study=locked,
            kind=Report.Kind.ORIGINAL,
            findings=findings,
            impression=impression,
            author=author,
            source_note=source_note[:256],
        )
        return "created"
    if report.findings == findings and report.impression == impression:
        return "unchanged"
    report.findings = findings
    report.impression = impression
    report.source_note = source_note[:256]
    report.author = author  # type: ignore[assignment]
    report.save(update_fields=["findings", "impression", "source_note", "author", "updated_at"])
    return "updated"
