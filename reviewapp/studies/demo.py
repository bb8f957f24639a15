"""The demo's rated reader studies (``manage.py seed_demo``), built only through the services a
coordinator's and a reader's clicks call, so the demo walks the same paths as real use.

Two "external models" are the demo's stand-ins for a research team's outputs: their reports
are written here from each study's original report by fixed edits (no model, no dataset text),
imported through the candidate import (model A as JSONL, model B in the ReXrank layout). Each
edit has a severity the seeded readers answer from, so the metrics have something to agree or
disagree with:

- model A restates the findings without the view line and keeps the impression's first
  sentence; on every third study it also leaves out the last finding (severity 1);
- model B reorders the findings; on abnormal studies it swaps right and left in the first
  sentence that names a side (severity 2), and on every third study it closes with a normal
  impression (severity 2 on an abnormal study, 0 on a normal one).

A reader's answer is the severity's answer, moved one step on about one read in four (a fixed
seed per reader and case), so readers disagree as people do. reader1 leaves their last reads
open, for a visitor to rate.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from reviewapp.imaging.models import Study
from reviewapp.reports.models import Report, ReportSource
from reviewapp.reports.services import candidates_import, report_source_original
from reviewapp.studies import protocols, services
from reviewapp.studies.models import Assignment, ReaderStudy

# Readers see a study's name: it says nothing of the design or of where reports come from.
PAIRWISE_NAME = "Demo chest radiographs: comparing reports"
SINGLE_NAME = "Demo chest studies: peer review"
DESCRIPTION = "Seeded by the demo; its ratings were written through the rating service."
MODEL_A = ("demo-model-a", "1.0")
MODEL_B = ("demo-model-b", "1.0")
PROVENANCE_NOTE = "Written by the demo seed from the original reports by fixed edits."
READING_SEED = 20261207
# reader1's last reads stay open: the tour's reader has cases to rate.
LEFT_OPEN = 4
# The Med-Gemini scale from best to worst for the candidate (the arm's second source).
SCALE = ["ai_much_better", "ai_better", "similar", "original_better", "original_much_better"]
RADPEER = {0: ("1", None), 1: ("2", "a"), 2: ("3", "b")}

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_SIDE = re.compile(r"\b(right|left)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Candidate:
    findings: str
    impression: str
    severity: int  # 0 faithful, 1 a finding left out, 2 a clinically significant error


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text.strip()) if s]


def _swap_sides(sentence: str) -> str:
    def swap(match: re.Match[str]) -> str:
        word = {"right": "left", "left": "right"}[match.group(1).lower()]
        return word.capitalize() if match.group(1)[0].isupper() else word

    return _SIDE.sub(swap, sentence)


def model_a_report(original: Report, index: int) -> Candidate:
    findings = [
        s for s in _sentences(original.findings) if not s.lower().startswith(("pa ", "axial"))
    ]
    severity = 0
    if index % 3 == 2 and len(findings) > 2:
        findings = findings[:-1]
        severity = 1
    impression = _sentences(original.impression)[:1]
    return Candidate(" ".join(findings), " ".join(impression), severity)


def model_b_report(original: Report, index: int, *, abnormal: bool) -> Candidate:
    findings = _sentences(original.findings)
    findings = findings[1:] + findings[:1]
    severity = 0
    if abnormal:
        sided = next((n for n, s in enumerate(findings) if _SIDE.search(s)), None)
        if sided is not None:
            findings[sided] = _swap_sides(findings[sided])
            severity = 2
    impression = original.impression
    if index % 3 == 0:
        impression = "No acute cardiopulmonary abnormality."
        if abnormal:
            severity = 2
    return Candidate(" ".join(findings), impression, severity)


@dataclass
class DemoSources:
    original: ReportSource
    model_a: ReportSource
    model_b: ReportSource
    # imaging study id -> source id -> severity of that source's report there
    severity: dict[int, dict[int, int]]


def _originals(studies: Sequence[Study]) -> list[tuple[Study, Report]]:
    """Each study's latest original report, with the study as stored now (its stratum is
    set by the original's import, after the caller may have loaded it)."""
    latest = {
        report.study_id: report
        for report in Report.objects.filter(
            study__in=studies, kind=Report.Kind.ORIGINAL, is_latest=True
        ).select_related("study")
    }
    return [(latest[s.pk].study, latest[s.pk]) for s in studies if s.pk in latest]


def sources_import(*, studies: Sequence[Study], author: AbstractBaseUser) -> DemoSources:
    """Import both models' reports of ``studies`` (unchanged texts are left as they are)."""
    rows_a: list[dict[str, str]] = []
    rows_b: dict[str, dict[str, str]] = {}
    severity: dict[int, dict[str, int]] = {}
    for index, (study, reference) in enumerate(_originals(studies)):
        a = model_a_report(reference, index)
        b = model_b_report(reference, index, abnormal=study.stratum == "abnormal")
        severity[study.pk] = {"a": a.severity, "b": b.severity}
        rows_a.append(
            {
                "StudyInstanceUID": study.study_instance_uid,
                "findings": a.findings,
                "impression": a.impression,
            }
        )
        rows_b[study.study_instance_uid] = {
            "model_prediction": f"FINDINGS: {b.findings}\nIMPRESSION: {b.impression}"
        }
    imported: dict[str, ReportSource] = {}
    for (name, version), fmt, data, file_name in (
        (MODEL_A, "jsonl", "\n".join(json.dumps(r) for r in rows_a), "model-a.jsonl"),
        (MODEL_B, "rexrank", json.dumps(rows_b), "model-b.json"),
    ):
        result = candidates_import(
            data=data.encode(),
            file_name=file_name,
            source_name=name,
            source_version=version,
            source_description=PROVENANCE_NOTE,
            fmt=fmt,
            author=author,
        )
        if result.error or result.problems or result.source is None:
            raise RuntimeError(f"demo candidates not imported: {result.error or result.problems}")
        imported[name] = result.source
    model_a, model_b = imported[MODEL_A[0]], imported[MODEL_B[0]]
    original = report_source_original()
    return DemoSources(
        original=original,
        model_a=model_a,
        model_b=model_b,
        severity={
            pk: {original.pk: 0, model_a.pk: s["a"], model_b.pk: s["b"]}
            for pk, s in severity.items()
        },
    )


def _answer_step(reader: str, case_key: str) -> int:
    """Most reads give the severity's answer; about one in four is a step off either way."""
    draw = random.Random(f"{READING_SEED}:{reader}:{case_key}").random()
    return -1 if draw < 0.12 else 1 if draw < 0.25 else 0


def _pairwise_answer(assignment: Assignment, sources: DemoSources) -> dict[str, Any]:
    case = assignment.case
    assert case.arm is not None
    assert case.arm.second_source_id is not None
    severities = sources.severity[case.imaging_study_id]
    # Positive: the candidate (the arm's second source) is worse than the first.
    gap = severities[case.arm.second_source_id] - severities[case.arm.first_source_id]
    step = _answer_step(assignment.reader.get_username(), str(case.public_id))
    value = SCALE[min(max(2 + gap + step, 0), len(SCALE) - 1)]
    return _coded(assignment, {"comparison": value})


def _single_answer(assignment: Assignment, sources: DemoSources) -> dict[str, Any]:
    case = assignment.case
    severity = sources.severity[case.imaging_study_id].get(case.first_report.source_id or 0, 0)
    step = _answer_step(assignment.reader.get_username(), str(case.public_id))
    score, modifier = RADPEER[min(max(severity + step, 0), 2)]
    values = {"score": score}
    if modifier:
        values["modifier"] = modifier
    return _coded(assignment, values)


def _coded(assignment: Assignment, values: dict[str, str]) -> dict[str, Any]:
    """The answers as the reading page submits them: each item's letter code."""
    protocol = assignment.reader_study.protocol
    sides = protocols.Sides(candidate_side=assignment.candidate_side)
    form = {item["id"]: item for item in protocols.form_build(protocol, sides)}
    answers: dict[str, Any] = {}
    for question in protocol["questions"]:
        value = values.get(question["id"])
        if value is None:
            continue
        option = next(o for o in question["options"] if o["value"] == value)
        label = protocols.text_render(option["label"], sides.placeholders())
        item = form[question["id"]]
        answers[item["id"]] = next(o["code"] for o in item["options"] if o["label"] == label)
    return answers


def _study_build(
    *,
    name: str,
    description: str,
    protocol_key: str,
    design: str,
    coordinator: AbstractBaseUser,
    readers: Sequence[AbstractBaseUser],
    imaging: Sequence[Study],
    sources: Sequence[ReportSource] = (),
    pairs: Sequence[tuple[ReportSource, ReportSource]] = (),
    reads_per_case: int | None = None,
) -> ReaderStudy:
    study = services.reader_study_create(
        user=coordinator, name=name, protocol_key=protocol_key, description=description
    )
    services.arms_set(reader_study=study, design=design, sources=sources, pairs=pairs)
    added = services.cases_add(reader_study=study, imaging_studies=imaging)
    if added.problems:
        raise RuntimeError(f"demo study cases: {added.problems}")
    services.panel_set(reader_study=study, readers=[(r, "") for r in readers])
    services.assignments_generate(
        reader_study=study, reads_per_case=reads_per_case, seed=READING_SEED
    )
    services.reader_study_open(reader_study=study, acknowledged_by=coordinator)
    return study


def _rate(study: ReaderStudy, sources: DemoSources, *, pairwise: bool, leave_open_for: str) -> int:
    assignments = list(
        Assignment.objects.filter(reader_study=study)
        .select_related("reader", "reader_study", "case__arm", "case__first_report")
        .order_by("reader__username", "position")
    )
    # In position order, so each reader's entry ends at their last position.
    last = {a.reader.get_username(): a.position for a in assignments}
    rated = 0
    for assignment in assignments:
        username = assignment.reader.get_username()
        if username == leave_open_for and assignment.position > last[username] - LEFT_OPEN:
            continue
        answer = _pairwise_answer if pairwise else _single_answer
        services.rating_submit(
            assignment=assignment,
            reader=assignment.reader,
            answers=answer(assignment, sources),
            idempotency_key=uuid.uuid5(
                uuid.NAMESPACE_URL, f"radreview-demo:{assignment.public_id}"
            ),
            active_seconds=45.0 + (assignment.position * 7) % 50,
        )
        rated += 1
    return rated


def demo_studies_seed(
    *,
    coordinator: AbstractBaseUser,
    readers: Sequence[AbstractBaseUser],
    radiographs: Sequence[Study],
    all_studies: Sequence[Study],
) -> list[str]:
    """Build, open and rate the demo's reader studies once; returns what was done, in words.

    Each study is built in one transaction: a run that fails leaves nothing half-built, and
    the next run builds it again. A study already there (by name) is left as it is.
    """
    done: list[str] = []
    existing = set(
        ReaderStudy.objects.filter(name__in=[PAIRWISE_NAME, SINGLE_NAME]).values_list(
            "name", flat=True
        )
    )
    if existing == {PAIRWISE_NAME, SINGLE_NAME}:
        return done
    sources = sources_import(studies=all_studies, author=coordinator)
    if PAIRWISE_NAME not in existing:
        with transaction.atomic():
            study = _study_build(
                name=PAIRWISE_NAME,
                description=DESCRIPTION,
                protocol_key="medgemini_cxr",
                design=ReaderStudy.Design.CHOSEN_PAIRS,
                coordinator=coordinator,
                readers=readers,
                imaging=radiographs,
                pairs=[
                    (sources.original, sources.model_a),
                    (sources.original, sources.model_b),
                    (sources.model_a, sources.model_b),
                ],
            )
            rated = _rate(study, sources, pairwise=True, leave_open_for=readers[0].get_username())
        done.append(f'"{PAIRWISE_NAME}": {study.cases.count()} cases, {rated} ratings')
    if SINGLE_NAME not in existing:
        with transaction.atomic():
            study = _study_build(
                name=SINGLE_NAME,
                description=DESCRIPTION,
                protocol_key="radpeer",
                design=ReaderStudy.Design.EACH_SOURCE,
                coordinator=coordinator,
                readers=readers,
                imaging=all_studies,
                sources=[sources.original, sources.model_a, sources.model_b],
                reads_per_case=1,
            )
            rated = _rate(study, sources, pairwise=False, leave_open_for="")
        done.append(f'"{SINGLE_NAME}": {study.cases.count()} cases, {rated} ratings')
    return done
