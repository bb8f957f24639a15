"""Reading research datasets' layouts: which images make each study, and what came with it.

Pure reading, no database: each layout yields ``DatasetStudy`` records (images with their view,
the original report and clinical context where the layout carries them) and ``LayoutProblem``
entries naming what could not be used and why. ``dataset_import`` in ``dataset_services``
turns them into DICOM objects and reports.

Layouts
- ``manifest``: a folder and a CSV with one row per image: ``study_id``, ``image`` (a path
  inside the folder), optional ``view``, ``patient_id``, ``study_date``, ``study_time``,
  ``laterality``, ``sex``, and per study (on any of its rows, the same wherever repeated)
  ``findings`` / ``impression`` or one ``report`` string, ``indication``, ``technique``,
  ``comparison``.
- ``rexrank``: the ReXrank test-set JSON: an object keyed by the dataset's study id, each with
  ``image_path`` (a list, relative to the images folder), ``frontal_lateral`` (the view of each
  image), ``section_findings`` / ``section_impression`` (or one ``report``), ``context``
  ("Age:...Gender:...Indication: ... Comparison: ...") and optionally ``subject_id``.
- ``mimic-cxr-jpg``: MIMIC-CXR-JPG's ``files/pXX/pSUBJECT/sSTUDY/DICOM_ID.jpg`` with its
  metadata CSV (``dicom_id``, ``subject_id``, ``study_id``, ``ViewPosition``, ``StudyDate``,
  ``StudyTime``); a free-text report ``files/pXX/pSUBJECT/sSTUDY.txt`` beside the study's folder
  (MIMIC-CXR's report layout, extracted into the same folder) is read when present.

Paths named by a table must stay inside the dataset's folder (no ``..``, no absolute paths
outside it, no links leading out), whatever the table says.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from reviewapp.core.csv_input import CsvRefused, csv_rows
from reviewapp.reports.candidate_formats import report_text_split

LAYOUTS = ("manifest", "rexrank", "mimic-cxr-jpg")
MAX_TABLE_BYTES = 512 * 1024**2  # MIMIC-CXR-JPG's metadata CSV is about 60 MB
MAX_STUDIES = 100_000
MAX_IMAGES_PER_STUDY = 32
MAX_ID_CHARS = 128
MAX_TEXT_CHARS = 100_000
MIMIC_METADATA = "mimic-cxr-2.0.0-metadata.csv"


class LayoutRefused(Exception):
    """The whole dataset cannot be read (no table, wrong format); the message is safe to show."""


@dataclass(frozen=True)
class DatasetImage:
    file_key: str  # the path as the table names it, shown in messages
    path: Path
    view: str = ""
    laterality: str = ""


@dataclass
class DatasetStudy:
    study_id: str
    label: str  # where the study was named ("row 3", the ReXrank key), for messages
    images: list[DatasetImage] = field(default_factory=list)
    patient_id: str = ""
    study_date: date | None = None
    study_time: str = ""
    patient_sex: str = ""
    findings: str = ""
    impression: str = ""
    indication: str = ""
    technique: str = ""
    comparison: str = ""

    @property
    def has_report(self) -> bool:
        return bool(self.findings or self.impression)


@dataclass(frozen=True)
class LayoutProblem:
    where: str  # "row 12", "study 50051329", a file's path
    reason: str


@dataclass
class LayoutRead:
    studies: list[DatasetStudy] = field(default_factory=list)
    problems: list[LayoutProblem] = field(default_factory=list)

    @property
    def images(self) -> int:
        return sum(len(s.images) for s in self.studies)


# --- shared helpers ---------------------------------------------------------------------------


def _normalise(name: str) -> str:
    return name.strip().lower().replace(" ", "").replace("_", "").replace("-", "")


def _inside(root: Path, name: str) -> Path | None:
    """The file ``name`` names under ``root``, or None when it would lead outside."""
    relative = name.strip().replace("\\", "/").lstrip("/")
    if not relative or any(part == ".." for part in relative.split("/")):
        return None
    path = root / relative
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):
        return None
    return path if resolved.is_relative_to(root.resolve()) else None


def _date(raw: str) -> date | None:
    digits = re.sub(r"[-/.]", "", raw.strip())
    if len(digits) != 8 or not digits.isdigit():
        raise ValueError(raw)
    return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))


def _time(raw: str) -> str:
    """A DICOM TM value from ``HHMMSS[.ffffff]`` or ``HH:MM[:SS]`` ("" when not a time)."""
    value = raw.strip().replace(":", "")
    match = re.fullmatch(r"(\d{2})(\d{2})?(\d{2})?(\.\d{1,6})?", value)
    if not match or int(match.group(1)) > 23:
        return ""
    return value


def _text(value: Any) -> str:
    """A text field: strings as they are, missing and NaN (ReXrank files carry NaN) empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _read_table(path: Path) -> str:
    try:
        size = path.stat().st_size
    except OSError:
        raise LayoutRefused(f"{path.name} was not found.") from None
    if size > MAX_TABLE_BYTES:
        raise LayoutRefused(f"{path.name} is larger than {MAX_TABLE_BYTES // 1024**2} MB.")
    data = path.read_bytes()
    if b"\x00" in data:
        raise LayoutRefused(f"{path.name} is not a text file (it contains binary data).")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LayoutRefused(f"{path.name} is not UTF-8 text.") from None


_SECTION = re.compile(
    r"(?:^|(?<=[\s.]))(age|gender|sex|indications?|clinical history|history|reason for exam"
    r"|comparisons?|technique|examination|exam|findings|impressions?|conclusions?)\s*:",
    re.IGNORECASE,
)
_SECTION_FIELD = {
    "indication": "indication",
    "indications": "indication",
    "clinical history": "indication",
    "history": "indication",
    "reason for exam": "indication",
    "comparison": "comparison",
    "comparisons": "comparison",
    "technique": "technique",
    "gender": "sex",
    "sex": "sex",
    "findings": "findings",
    "impression": "impression",
    "impressions": "impression",
    "conclusion": "impression",
    "conclusions": "impression",
}


def sections_split(text: str) -> dict[str, str]:
    """Labelled sections of a report or context string: indication, comparison, technique,
    sex, findings, impression (each "" when absent). Text before the first label counts as
    the indication only in a string that has no findings or impression (a context string);
    in a report it is a header (exam name, "FINAL REPORT") and dropped. Age is dropped: the
    datasets give ranges, not a DICOM age."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    marks = list(_SECTION.finditer(text))
    found: dict[str, list[str]] = {}
    for index, mark in enumerate(marks):
        end = marks[index + 1].start() if index + 1 < len(marks) else len(text)
        name = _SECTION_FIELD.get(" ".join(mark.group(1).lower().split()))
        if name is not None:
            found.setdefault(name, []).append(text[mark.end() : end].strip())
    sections = {name: "\n".join(v for v in values if v) for name, values in found.items()}
    lead = text[: marks[0].start()].strip() if marks else text.strip()
    if lead and "findings" not in sections and "impression" not in sections:
        sections["indication"] = "\n".join(v for v in (lead, sections.get("indication", "")) if v)
    sex = sections.get("sex", "").strip().upper()[:1]
    sections["sex"] = sex if sex in ("M", "F", "O") else ""
    return {
        name: sections.get(name, "")
        for name in ("indication", "comparison", "technique", "sex", "findings", "impression")
    }


def _check_study(study: DatasetStudy, problems: list[LayoutProblem]) -> bool:
    where = f"study {study.study_id}"
    if len(study.images) > MAX_IMAGES_PER_STUDY:
        problems.append(
            LayoutProblem(where, f"has more than {MAX_IMAGES_PER_STUDY} images; not imported")
        )
        return False
    texts = (
        study.findings,
        study.impression,
        study.indication,
        study.technique,
        study.comparison,
    )
    if any(len(t) > MAX_TEXT_CHARS for t in texts):
        problems.append(
            LayoutProblem(where, f"a report or context text is over {MAX_TEXT_CHARS} characters")
        )
        return False
    return True


def _finish(
    studies: Iterable[DatasetStudy], problems: list[LayoutProblem], wanted: set[str] | None
) -> LayoutRead:
    result = LayoutRead(problems=problems)
    for study in studies:
        if wanted is not None and study.study_id not in wanted:
            continue
        if not study.images:
            problems.append(LayoutProblem(f"study {study.study_id}", "has no usable image"))
            continue
        if _check_study(study, problems):
            result.studies.append(study)
        if len(result.studies) > MAX_STUDIES:
            raise LayoutRefused(f"The dataset has more than {MAX_STUDIES:,} studies; split it.")
    return result


def layout_read(
    *,
    layout: str,
    root: Path,
    table: Path | None = None,
    study_ids: set[str] | None = None,
) -> LayoutRead:
    """Read a dataset in ``layout`` under the folder ``root`` (``table``: its manifest, JSON or
    metadata CSV when not at the usual place); ``study_ids`` keeps only those studies."""
    if not root.is_dir():
        raise LayoutRefused("The dataset folder was not found.")
    if layout == "manifest":
        return _manifest_read(root=root, table=table or root / "manifest.csv", wanted=study_ids)
    if layout == "rexrank":
        if table is None:
            candidates = sorted(root.glob("*.json"))
            if len(candidates) != 1:
                raise LayoutRefused(
                    "Name the ReXrank JSON file (the folder holds none or several)."
                )
            table = candidates[0]
        return _rexrank_read(root=root, table=table, wanted=study_ids)
    if layout == "mimic-cxr-jpg":
        return _mimic_read(root=root, table=table or root / MIMIC_METADATA, wanted=study_ids)
    raise LayoutRefused(f"Unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}.")


# --- manifest ---------------------------------------------------------------------------------

_MANIFEST_COLUMNS = {
    "study_id": {"studyid", "datasetstudyid", "study"},
    "image": {"image", "imagefile", "file", "filename", "path", "imagepath"},
    "view": {"view", "viewposition", "projection", "frontallateral"},
    "patient_id": {"patientid", "subjectid", "patient"},
    "study_date": {"studydate", "date"},
    "study_time": {"studytime", "time"},
    "laterality": {"laterality", "imagelaterality"},
    "sex": {"sex", "patientsex", "gender"},
    "findings": {"findings", "finding"},
    "impression": {"impression", "impressions", "conclusion"},
    "report": {"report", "reporttext", "text"},
    "indication": {
        "indication",
        "indications",
        "history",
        "clinicalhistory",
        "clinicalindication",
        "reasonforexam",
    },
    "technique": {"technique"},
    "comparison": {"comparison", "comparisons"},
}
_PER_STUDY = ("patient_id", "study_date", "sex", "findings", "impression", "report")
_CONTEXT = ("indication", "technique", "comparison")


def _manifest_read(*, root: Path, table: Path, wanted: set[str] | None) -> LayoutRead:
    try:
        headers, rows = csv_rows(_read_table(table))
    except CsvRefused as exc:
        raise LayoutRefused(f"{table.name}: {exc}") from None
    columns: dict[str, int] = {}
    for index, header in enumerate(headers):
        for name, spellings in _MANIFEST_COLUMNS.items():
            if _normalise(header) in spellings and name not in columns:
                columns[name] = index
    if "study_id" not in columns or "image" not in columns:
        raise LayoutRefused(
            f"{table.name}: the header row needs study_id and image columns (and optionally view, "
            "patient_id, study_date, laterality, findings, impression, indication, technique, "
            "comparison)."
        )
    problems: list[LayoutProblem] = []
    studies: dict[str, DatasetStudy] = {}
    seen_files: set[str] = set()
    for csv_row in rows:
        row = csv_row.number
        if csv_row.problem:
            problems.append(LayoutProblem(f"row {row}", csv_row.problem))
            continue
        values = csv_row.values

        def get(name: str, values: list[str] = values) -> str:
            index = columns.get(name)
            return values[index].strip() if index is not None else ""

        problem = _manifest_row(
            get=get, row=row, root=root, studies=studies, seen_files=seen_files, wanted=wanted
        )
        if problem:
            problems.append(LayoutProblem(f"row {row}", problem))
    return _finish(studies.values(), problems, wanted)


def _manifest_row(
    *,
    get: Any,
    row: int,
    root: Path,
    studies: dict[str, DatasetStudy],
    seen_files: set[str],
    wanted: set[str] | None,
) -> str:
    study_id, image = get("study_id"), get("image")
    if not study_id:
        return "the study id is empty"
    if len(study_id) > MAX_ID_CHARS:
        return f"the study id is longer than {MAX_ID_CHARS} characters"
    if wanted is not None and study_id not in wanted:
        return ""
    if not image:
        return "the image path is empty"
    path = _inside(root, image)
    if path is None:
        return "the image path leads outside the dataset folder"
    if image in seen_files:
        return "names an image already listed on an earlier row"
    seen_files.add(image)
    if not path.is_file():
        return f"image {image} was not found"
    try:
        study_date = _date(get("study_date")) if get("study_date") else None
    except ValueError:
        return "the study date is not a date (use YYYY-MM-DD or YYYYMMDD)"
    findings, impression = get("findings"), get("impression")
    if not findings and not impression and get("report"):
        findings, impression = report_text_split(get("report"))
    fields = {
        "patient_id": get("patient_id")[:MAX_ID_CHARS],
        "study_date": study_date,
        "patient_sex": get("sex").upper()[:1] if get("sex") else "",
        "findings": findings,
        "impression": impression,
        "indication": get("indication"),
        "technique": get("technique"),
        "comparison": get("comparison"),
    }
    study = studies.get(study_id)
    if study is None:
        study = DatasetStudy(study_id=study_id, label=f"row {row}", **fields)
        studies[study_id] = study
    else:
        # A study's own values may sit on one row only, or be repeated: never two different.
        for name, value in fields.items():
            current = getattr(study, name)
            if value and current and value != current:
                shown = name.replace("_", " ")
                return f"gives another {shown} for study {study_id} than an earlier row"
            if value and not current:
                setattr(study, name, value)
    study.images.append(
        DatasetImage(file_key=image, path=path, view=get("view"), laterality=get("laterality"))
    )
    if get("study_time") and not study.study_time:
        study.study_time = _time(get("study_time"))
    return ""


# --- ReXrank ----------------------------------------------------------------------------------


def _rexrank_read(*, root: Path, table: Path, wanted: set[str] | None) -> LayoutRead:
    text = _read_table(table)
    try:
        # ReXrank's files write missing sections as NaN, which Python's json accepts.
        document = json.loads(text)
    except ValueError:
        raise LayoutRefused(f"{table.name} is not valid JSON.") from None
    if not isinstance(document, dict):
        raise LayoutRefused(f"{table.name} must be a JSON object keyed by study id.")
    problems: list[LayoutProblem] = []
    studies: list[DatasetStudy] = []
    for key, entry in document.items():
        study_id = str(key).strip()
        where = f"study {study_id}"
        if wanted is not None and study_id not in wanted:
            continue
        if not study_id or len(study_id) > MAX_ID_CHARS:
            problems.append(LayoutProblem(where, "the study id is empty or too long"))
            continue
        if not isinstance(entry, dict):
            problems.append(LayoutProblem(where, "is not a JSON object"))
            continue
        paths = entry.get("image_path")
        if isinstance(paths, str):
            paths = [paths]
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            problems.append(LayoutProblem(where, "image_path must be a list of paths"))
            continue
        views = entry.get("frontal_lateral") or []
        if not isinstance(views, list) or (views and len(views) != len(paths)):
            problems.append(
                LayoutProblem(where, "frontal_lateral must give one view per image_path")
            )
            continue
        findings = _text(entry.get("section_findings"))
        impression = _text(entry.get("section_impression"))
        if not findings and not impression and _text(entry.get("report")):
            findings, impression = report_text_split(_text(entry.get("report")))
        context = entry.get("context")
        sections = (
            sections_split(_text(context))
            if not isinstance(context, dict)
            else {_normalise(k): _text(v) for k, v in context.items()}
        )
        study = DatasetStudy(
            study_id=study_id,
            label=study_id,
            patient_id=_text(entry.get("subject_id"))[:MAX_ID_CHARS],
            patient_sex=(sections.get("sex") or sections.get("gender") or "").upper()[:1],
            findings=findings,
            impression=impression,
            indication=sections.get("indication", ""),
            technique=sections.get("technique", ""),
            comparison=sections.get("comparison", ""),
        )
        for index, name in enumerate(paths):
            path = _inside(root, name)
            if path is None:
                problems.append(LayoutProblem(name, "the image path leads outside the folder"))
                continue
            if not path.is_file():
                problems.append(LayoutProblem(name, "image was not found"))
                continue
            view = _text(views[index]) if views else ""
            study.images.append(DatasetImage(file_key=name.lstrip("/"), path=path, view=view))
        studies.append(study)
    return _finish(studies, problems, wanted)


# --- MIMIC-CXR-JPG ----------------------------------------------------------------------------


def _mimic_read(*, root: Path, table: Path, wanted: set[str] | None) -> LayoutRead:
    text = _read_table(table)
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    required = {"dicom_id", "subject_id", "study_id"}
    if not required.issubset(set(reader.fieldnames or [])):
        raise LayoutRefused(f"{table.name} needs the columns dicom_id, subject_id and study_id.")
    problems: list[LayoutProblem] = []
    studies: dict[str, DatasetStudy] = {}
    row = 1
    for values in reader:
        row += 1
        dicom_id = (values.get("dicom_id") or "").strip()
        subject = (values.get("subject_id") or "").strip()
        study_id = (values.get("study_id") or "").strip()
        if wanted is not None and study_id not in wanted:
            continue
        if not (dicom_id.replace("-", "").isalnum() and subject.isdigit() and study_id.isdigit()):
            problems.append(
                LayoutProblem(f"row {row}", "dicom_id, subject_id or study_id is malformed")
            )
            continue
        folder = f"files/p{subject[:2]}/p{subject}/s{study_id}"
        key = f"{folder}/{dicom_id}.jpg"
        path = root / key
        if not path.is_file():
            problems.append(LayoutProblem(key, "image was not found"))
            continue
        study = studies.get(study_id)
        if study is None:
            try:
                raw_date = (values.get("StudyDate") or "").strip()
                study_date = _date(raw_date) if raw_date else None
            except ValueError:
                study_date = None
            study = DatasetStudy(
                study_id=study_id,
                label=f"row {row}",
                patient_id=subject,
                study_date=study_date,
                study_time=_time((values.get("StudyTime") or "").split(".")[0].zfill(6)),
            )
            report = root / f"{folder}.txt"
            if report.is_file() and report.stat().st_size <= MAX_TEXT_CHARS * 4:
                sections = sections_split(report.read_text(encoding="utf-8", errors="replace"))
                study.findings = sections["findings"]
                study.impression = sections["impression"]
                study.indication = sections["indication"]
                study.technique = sections["technique"]
                study.comparison = sections["comparison"]
            studies[study_id] = study
        view = (values.get("ViewPosition") or "").strip()
        study.images.append(DatasetImage(file_key=key, path=path, view=view))
    return _finish(studies.values(), problems, wanted)
