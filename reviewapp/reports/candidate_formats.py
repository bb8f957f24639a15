"""Reading candidate-report files: CSV, JSONL and the ReXrank prediction layout.

Pure parsing, no database: each format yields ``CandidateRow`` records (or the reason a record
is unusable), and ``candidates_import`` in services matches and stores them.

Formats
- CSV: a header row; one study key column (StudyInstanceUID, AccessionNumber or the dataset's
  study id: ``study_id`` / ``dataset_study_id``) and either ``findings`` / ``impression`` or one
  ``report`` column (also spelled ``model_prediction``, ``prediction``, ``generated_report``).
- JSONL: one JSON object per line with the same keys.
- ReXrank: one JSON object keyed by the dataset's study id; each value an object with
  ``model_prediction`` or ``report`` (a single string), or ``findings`` / ``impression``; a bare
  string value is taken as the report.

Which text is the candidate: a ``model_prediction`` / ``report`` field, when the record has one
at all, is the candidate even if other fields are present, because ReXrank files that merge
predictions with the test set carry the *reference* findings and impression beside the
prediction; an empty prediction is a bad record, never a fall-back to the reference.

Splitting a single report string (``report_text_split``):
1. Headings: ``FINDINGS:`` and ``IMPRESSION:`` (also ``IMPRESSIONS:``, ``CONCLUSION:``), any
   case, at the start of a line or after a sentence's end. The impression is what follows its
   heading; the findings are what lies between the findings heading (or the start) and the
   impression heading. Text before a findings heading (indication, comparison) is dropped:
   readers are shown findings and impression only.
2. No headings, several paragraphs (blank-line separated): the last paragraph is the impression.
3. One paragraph: all of it is findings. Cutting a last sentence off as the "impression" would
   put a finding where readers expect the conclusion, and many models write findings only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from reviewapp.core.csv_input import CsvRefused, csv_rows

FORMATS = ("csv", "jsonl", "rexrank")

# Accepted spellings of each field (compared lower-cased, spaces, dashes and underscores removed).
FIELDS = {
    "study_uid": {"studyinstanceuid", "studyuid"},
    "accession": {"accessionnumber", "accession", "accessionno"},
    "dataset_id": {"studyid", "datasetstudyid", "study", "datasetid"},
    "findings": {"findings", "finding"},
    "impression": {"impression", "impressions", "conclusion"},
    "report": {"report", "modelprediction", "prediction", "generatedreport", "text"},
}
KEY_FIELDS = ("study_uid", "accession", "dataset_id")


class FileRefused(Exception):
    """The whole file is unusable; the message says why and is safe to show."""


@dataclass
class CandidateRow:
    row: int  # CSV: the spreadsheet row (header = 1); JSONL: the line; ReXrank: the position
    study_uid: str = ""
    accession: str = ""
    dataset_id: str = ""
    findings: str = ""
    impression: str = ""
    label: str = ""  # what names the record to the coordinator (the ReXrank key), if anything
    problem: str = ""  # set when the record itself is unusable


def normalise(name: str) -> str:
    return name.strip().lower().replace(" ", "").replace("_", "").replace("-", "")


def _field_of(name: str) -> str | None:
    key = normalise(name)
    for field_name, spellings in FIELDS.items():
        if key in spellings:
            return field_name
    return None


_HEADING = re.compile(
    r"(?:^|(?<=[.!?]))[ \t]*(findings|impressions?|conclusions?)[ \t]*:", re.IGNORECASE | re.M
)


def report_text_split(text: str) -> tuple[str, str]:
    """Split one report string into (findings, impression) by the rule in the module doc."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    headings = list(_HEADING.finditer(text))
    impression_at = next(
        (h for h in headings if not h.group(1).lower().startswith("finding")), None
    )
    findings_at = next((h for h in headings if h.group(1).lower().startswith("finding")), None)
    if impression_at is not None:
        start = (
            findings_at.end() if findings_at and findings_at.start() < impression_at.start() else 0
        )
        return text[start : impression_at.start()].strip(), text[impression_at.end() :].strip()
    if findings_at is not None:
        return text[findings_at.end() :].strip(), ""
    paragraphs = [p.strip() for p in re.split(r"\n[ \t]*\n", text) if p.strip()]
    if len(paragraphs) > 1:
        return "\n\n".join(paragraphs[:-1]), paragraphs[-1]
    return text, ""


def _text(value: Any, name: str) -> tuple[str, str]:
    """(text, problem): report fields must be strings (or null for empty)."""
    if value is None:
        return "", ""
    if not isinstance(value, str):
        return "", f"{name} is not a text string"
    return value.strip(), ""


def _row_from_mapping(row: int, values: dict[str, Any], *, label: str = "") -> CandidateRow:
    """Build a row from a mapping of field name (any accepted spelling) to value."""
    record = CandidateRow(row=row, label=label)
    fields: dict[str, Any] = {}
    for name, value in values.items():
        field_name = _field_of(str(name))
        if field_name is not None and field_name not in fields:
            fields[field_name] = value
    for key in KEY_FIELDS:
        value = fields.get(key)
        if value is None:
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # dataset ids are often numbers in JSON
        if not isinstance(value, str):
            record.problem = f"the {key.replace('_', ' ')} is not a text string"
            return record
        setattr(record, key, value.strip())
    if "report" in fields:
        report, problem = _text(fields["report"], "the report")
        if problem:
            record.problem = problem
            return record
        record.findings, record.impression = report_text_split(report)
    else:
        for name in ("findings", "impression"):
            text, problem = _text(fields.get(name), name)
            if problem:
                record.problem = problem
                return record
            setattr(record, name, text)
    return record


def _undecodable(value: str) -> bool:
    # Bytes that were not UTF-8 were decoded to lone surrogates (surrogateescape).
    return any("\udc80" <= ch <= "\udcff" for ch in value)


def format_guess(*, file_name: str, text: str) -> str:
    """The format a file name (or, failing that, its first character) says it is."""
    lower = file_name.lower()
    if lower.endswith(".csv"):
        return "csv"
    if lower.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if lower.endswith(".json"):
        return "rexrank"
    stripped = text.lstrip()
    if stripped.startswith("{"):
        first_line = stripped.split("\n", 1)[0]
        try:
            json.loads(first_line)
        except ValueError:
            return "rexrank"  # an object spread over lines: one JSON document
        return "jsonl" if "\n" in stripped.strip() else "rexrank"
    return "csv"


def rows_read(*, text: str, fmt: str, max_rows: int) -> list[CandidateRow]:
    """Every record of the file, in order; raise FileRefused when the file as a whole is not
    usable (no key column, not the format, more than ``max_rows`` records)."""
    reader = {"csv": _csv_rows, "jsonl": _jsonl_rows, "rexrank": _rexrank_rows}.get(fmt)
    if reader is None:
        raise FileRefused(f"Unknown format {fmt!r}: choose csv, jsonl or rexrank.")
    rows: list[CandidateRow] = []
    for record in reader(text):
        rows.append(record)
        if len(rows) > max_rows:
            raise FileRefused(f"The file has more than {max_rows} records; split it.")
    if not rows:
        raise FileRefused("The file holds no records.")
    return rows


def _csv_rows(text: str) -> Iterator[CandidateRow]:
    try:
        headers, rows = csv_rows(text)
    except CsvRefused as exc:
        raise FileRefused(str(exc)) from None
    fields = {_field_of(h) for h in headers}
    if not fields & set(KEY_FIELDS):
        raise FileRefused(
            "The header row needs a StudyInstanceUID, AccessionNumber or study_id column."
        )
    if not fields & {"findings", "impression", "report"}:
        raise FileRefused("The header row needs findings and/or impression, or a report column.")
    for row in rows:
        if row.problem:
            yield CandidateRow(row=row.number, problem=row.problem)
        else:
            yield _row_from_mapping(row.number, dict(zip(headers, row.values, strict=True)))


def _jsonl_rows(text: str) -> Iterator[CandidateRow]:
    for line_number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        if _undecodable(line):
            yield CandidateRow(row=line_number, problem="is not valid UTF-8 text")
            continue
        try:
            value = json.loads(line)
        except ValueError:
            yield CandidateRow(row=line_number, problem="is not valid JSON")
            continue
        if not isinstance(value, dict):
            yield CandidateRow(row=line_number, problem="is not a JSON object")
            continue
        yield _row_from_mapping(line_number, value)


def _rexrank_rows(text: str) -> Iterator[CandidateRow]:
    if _undecodable(text):
        raise FileRefused("The file is not valid UTF-8 text.")
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise FileRefused(f"The file is not valid JSON ({exc.args[0][:80]}).") from None
    if not isinstance(document, dict):
        raise FileRefused("A ReXrank file is one JSON object keyed by study id.")
    for position, (key, value) in enumerate(document.items(), start=1):
        label = str(key)[:128]
        if isinstance(value, str):
            value = {"report": value}
        if not isinstance(value, dict):
            yield CandidateRow(row=position, label=label, problem="is not a JSON object")
            continue
        record = _row_from_mapping(position, value, label=label)
        # The key names the study unless the record names it itself.
        if not (record.study_uid or record.accession or record.dataset_id):
            record.dataset_id = str(key).strip()
        yield record
