"""Reads of automated metrics and of the expert outcomes they are compared with.

Who may see any of this is analysis's rule (``reader_study_get_for_analyst``: analysts, the
study's coordinators, admins): metric pages name sources, so never a reader. Every function
below takes the study that check returned.

Which reports are scored: every *candidate* report a case of the study shows (any report that
is not an original), against the study's original report as the reference: the original the
case itself shows where it shows one (the version the readers compared against), else the
imaging study's latest original. A candidate without any original has no reference: it is
listed as skipped, never scored.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.core.cache import cache

from inference.metrics import REFERENCE_MISSING
from inference.metrics.agreement import (
    ALGORITHM_VERSION,
    DEFAULT_RESAMPLES,
    agreement_table,
    source_ranking_table,
)
from reviewapp.analysis.selectors import protocol_outcomes, reader_pseudonyms, span_questions
from reviewapp.core.access import public_id_get_or_404
from reviewapp.imaging.models import Study
from reviewapp.metrics.models import MetricJob, MetricResult
from reviewapp.reports.models import Report, ReportSource
from reviewapp.studies.models import Case, ErrorSpan, Rating, ReaderStudy

# The values the agreement table and the source table show, in this order, where present.
# BLEU-2 beside BLEU-4: unsmoothed BLEU-4 of one short report is often 0, a tie that tells
# nothing; BLEU-2 is the order RadCliQ combines.
TABLE_VALUES = (
    "bleu_2",
    "bleu_4",
    "rouge_l",
    "chexpert_micro_f1_pos",
    "chexpert_micro_f1_pos_unc",
    "chexpert_macro_f1_pos",
    "bertscore_f1",
    "chexbert_micro_f1_14",
    "chexbert_micro_f1_5",
    "radgraph_partial",
    "green",
)
SIGNIFICANT_ERRORS = "significant_errors"
ALL_ERRORS = "all_errors"
NO_SOURCE = "none"


def report_text(report: Report | None) -> str | None:
    """The text a metric compares: findings, then impression (None without a report)."""
    if report is None:
        return None
    return "\n".join(part for part in (report.findings.strip(), report.impression.strip()) if part)


def source_key(source_id: int | None) -> str:
    return NO_SOURCE if source_id is None else str(source_id)


@dataclass(frozen=True)
class MetricPair:
    """One candidate report version and the reference it is scored against."""

    candidate: Report
    reference: Report | None
    imaging_study: Study

    @property
    def key(self) -> tuple[int, int | None]:
        return (self.candidate.id, self.reference.id if self.reference else None)


def metric_pairs(*, reader_study: ReaderStudy) -> list[MetricPair]:
    """Every (candidate, reference) pair the study's real cases show (never a practice
    case's: no expert outcome of those is analysed), once each, in case order."""
    cases = list(
        Case.objects.filter(reader_study=reader_study, is_practice=False)
        .select_related(
            "imaging_study",
            "first_report__source__model_config",
            "second_report__source__model_config",
        )
        .order_by("id")
    )
    latest_originals = {
        r.study_id: r
        for r in Report.objects.filter(
            study_id__in={c.imaging_study_id for c in cases},
            kind=Report.Kind.ORIGINAL,
            is_latest=True,
        )
    }
    pairs: dict[tuple[int, int | None], MetricPair] = {}
    for case in cases:
        shown = [r for r in (case.first_report, case.second_report) if r is not None]
        pinned = next((r for r in shown if r.kind == Report.Kind.ORIGINAL), None)
        reference = pinned or latest_originals.get(case.imaging_study_id)
        for report in shown:
            if report.kind == Report.Kind.ORIGINAL:
                continue
            pair = MetricPair(
                candidate=report, reference=reference, imaging_study=case.imaging_study
            )
            pairs.setdefault(pair.key, pair)
    return list(pairs.values())


def source_label(source: ReportSource | None) -> str:
    return source.label if source is not None else "Candidate reports with no recorded source"


@dataclass
class SourceGroup:
    key: str
    source: ReportSource | None
    pairs: list[MetricPair] = field(default_factory=list)

    @property
    def label(self) -> str:
        return source_label(self.source)


def metric_sources(*, reader_study: ReaderStudy) -> list[SourceGroup]:
    """The study's candidate pairs grouped by the source of the candidate, by label."""
    groups: dict[str, SourceGroup] = {}
    for pair in metric_pairs(reader_study=reader_study):
        key = source_key(pair.candidate.source_id)
        group = groups.setdefault(key, SourceGroup(key=key, source=pair.candidate.source))
        group.pairs.append(pair)
    return sorted(groups.values(), key=lambda g: g.label)


def metric_job_list(*, reader_study: ReaderStudy) -> list[MetricJob]:
    return list(
        MetricJob.objects.filter(reader_study=reader_study)
        .select_related("source__model_config")
        .order_by("-created_at")
    )


def metric_job_get(*, reader_study_ids: Iterable[int], public_id: Any) -> MetricJob:
    """A job of one of the given studies (those the caller may analyse), else 404."""
    return public_id_get_or_404(
        MetricJob.objects.filter(reader_study_id__in=list(reader_study_ids)).select_related(
            "source__model_config", "reader_study"
        ),
        public_id,
        what="metric job",
    )


def metric_job_counts(job: MetricJob) -> dict[str, Any]:
    """The websocket/API view of one job's progress: ids, counts and our own error text."""
    return {
        "job": str(job.public_id),
        "status": job.status,
        "total": job.total,
        "done": job.done,
        "scored": job.scored,
        "skipped": job.skipped,
        "failed": job.failed,
        "error": job.error_message,
        "finished": job.is_finished,
    }


# --------------------------------------------------------------------------------------------
# Stored results
# --------------------------------------------------------------------------------------------


def results_for_pairs(
    pairs: list[MetricPair],
) -> dict[tuple[int, int | None], dict[str, MetricResult]]:
    """pair key -> metric name -> the most recently computed result of that metric."""
    found: dict[tuple[int, int | None], dict[str, MetricResult]] = defaultdict(dict)
    keys = {p.key for p in pairs}
    rows = MetricResult.objects.filter(report_id__in={p.candidate.id for p in pairs}).order_by(
        "computed_at", "id"
    )
    for row in rows:
        key = (row.report_id, row.reference_id)
        if key in keys:
            found[key][row.metric] = row  # later rows replace earlier ones
    return found


def _pair_values(results: dict[str, MetricResult]) -> dict[str, float]:
    values: dict[str, float] = {}
    for result in results.values():
        if result.status == MetricResult.Status.SCORED:
            values.update({k: float(v) for k, v in result.values.items()})
    return values


def _skip_reason(pair: MetricPair, results: dict[str, MetricResult]) -> str | None:
    for result in results.values():
        if result.status == MetricResult.Status.SKIPPED:
            return result.reason
    return REFERENCE_MISSING if pair.reference is None and results else None


# --------------------------------------------------------------------------------------------
# Expert outcomes per candidate report
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpertColumn:
    id: str
    label: str
    # True when more means a worse report (error counts, levels ordered best first): a metric
    # that agrees with the experts then has a negative tau.
    higher_is_worse: bool


@dataclass
class ExpertData:
    columns: list[ExpertColumn]
    # candidate report id -> column id -> one value per reader who gave one
    per_report: dict[int, dict[str, list[float]]]
    # candidate report id -> reader pseudonym -> (category, significant) -> count
    errors: dict[int, dict[str, dict[tuple[str, bool], int]]]
    categories: list[tuple[str, str]]
    readers: list[str]


def _ordinal_questions(protocol: dict[str, Any]) -> list[dict[str, Any]]:
    """Questions whose answers are levels: Likert scales (options ordered best first) and
    single choices scored with digits (RADPEER 1-3)."""
    found = []
    for question in protocol.get("questions", []):
        options = [str(o["value"]) for o in question.get("options", [])]
        digits = bool(options) and all(o.isdigit() for o in options)
        if (question["type"] == "likert" and options) or (
            question["type"] == "single_choice" and digits
        ):
            found.append(question)
    return found


def _answer(answers: dict[str, Any], question: str, candidate_side: str) -> str | None:
    """The stored value of ``question`` about the candidate: a comparative answer (side "")
    or the per-report answer given on the candidate's side."""
    for item in answers.values():
        if not isinstance(item, dict) or item.get("question") != question:
            continue
        if item.get("side", "") in ("", candidate_side):
            value = item.get("value")
            return None if value in (None, "") else str(value)
    return None


def _candidate_of(case: Case) -> int | None:
    """The candidate report a case's ratings speak about against the original, if any.

    A single-report case: its report, unless it is an original. A pairwise case: its second
    report, when the first is an original (one model against the original). A case comparing
    two models (an arm "A vs B") says nothing about either against the original that the
    metrics are scored against, so its answers are no expert outcome of either report.
    """
    if case.second_report_id is not None:
        if case.first_report.kind == Report.Kind.ORIGINAL:
            return case.second_report_id
        return None
    if case.first_report.kind != Report.Kind.ORIGINAL:
        return case.first_report_id
    return None


def expert_outcomes(*, reader_study: ReaderStudy) -> ExpertData:
    """Each candidate report's expert outcomes, one value per reader: the protocol's derived
    outcomes (1 met, 0 not), answer levels, and errors marked in it (all, and clinically
    significant), with error counts per reader, category and significance for the export."""
    protocol = reader_study.protocol
    outcomes = protocol_outcomes(protocol)
    ordinals = _ordinal_questions(protocol)
    spans = span_questions(protocol)
    columns = [ExpertColumn(f"outcome_{o.id}", o.label, False) for o in outcomes]
    columns += [
        ExpertColumn(f"level_{q['id']}", f"{q['id'].replace('_', ' ')} level", True)
        for q in ordinals
    ]
    if spans:
        columns += [
            ExpertColumn(SIGNIFICANT_ERRORS, "clinically significant errors", True),
            ExpertColumn(ALL_ERRORS, "errors marked", True),
        ]
    categories = [(c["value"], c.get("label", c["value"])) for q in spans for c in q["categories"]]
    pseudonyms = reader_pseudonyms(reader_study=reader_study)
    ratings = list(
        Rating.objects.filter(
            assignment__reader_study=reader_study, assignment__case__is_practice=False
        )
        .select_related("assignment__case__first_report")
        .order_by("id")
    )
    spans_by_rating: dict[int, list[ErrorSpan]] = defaultdict(list)
    if spans:
        for span in ErrorSpan.objects.filter(rating__in=ratings).only(
            "rating_id", "report_id", "category", "is_significant"
        ):
            spans_by_rating[span.rating_id].append(span)
    per_report: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    errors: dict[int, dict[str, dict[tuple[str, bool], int]]] = defaultdict(dict)
    for rating in ratings:
        assignment = rating.assignment
        candidate = _candidate_of(assignment.case)
        if candidate is None:
            continue
        side = assignment.candidate_side
        values = per_report[candidate]
        for outcome in outcomes:
            answer = _answer(rating.answers, outcome.question, side)
            if answer is not None:
                values[f"outcome_{outcome.id}"].append(float(answer in outcome.values))
        for question in ordinals:
            answer = _answer(rating.answers, question["id"], side)
            options = [str(o["value"]) for o in question["options"]]
            if answer in options:
                level = (
                    int(answer)
                    if question["type"] == "single_choice"
                    else 1 + options.index(answer)
                )
                values[f"level_{question['id']}"].append(float(level))
        for question in spans:
            condition = question.get("show_if")
            if (
                condition
                and _answer(rating.answers, condition["question"], side) not in condition["in"]
            ):
                continue
            marked = [s for s in spans_by_rating[rating.id] if s.report_id == candidate]
            values[SIGNIFICANT_ERRORS].append(float(sum(s.is_significant for s in marked)))
            values[ALL_ERRORS].append(float(len(marked)))
            reader = pseudonyms.get(assignment.reader_id, ("R??", ""))[0]
            counts = errors[candidate].setdefault(reader, defaultdict(int))
            for span in marked:
                counts[(span.category, span.is_significant)] += 1
    readers = sorted({name for name, _ in pseudonyms.values()})
    return ExpertData(
        columns=columns,
        per_report=per_report,
        errors=errors,
        categories=categories,
        readers=readers,
    )


# --------------------------------------------------------------------------------------------
# The page: per-source means, agreement, scatter data
# --------------------------------------------------------------------------------------------


def _mean(values: Iterable[float | None]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


@dataclass
class MetricsOverview:
    sources: list[SourceGroup]
    pairs: list[MetricPair]
    results: dict[tuple[int, int | None], dict[str, MetricResult]]
    expert: ExpertData
    values: list[str]  # the TABLE_VALUES some pair has
    source_rows: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    agreement: list[dict[str, Any]]
    source_agreement: list[dict[str, Any]]
    # metric value -> outcome column -> [(x, y, source label)] for the scatter plots
    points: dict[str, dict[str, list[tuple[float, float, str]]]]
    resamples: int
    # Results one metric could not compute for one report (a judge's unparseable answer):
    # named, and left out of that metric's means and correlations.
    failures: list[dict[str, Any]] = field(default_factory=list)


def metrics_overview(
    *,
    reader_study: ReaderStudy,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    with_agreement: bool = True,
) -> MetricsOverview:
    """Everything the metrics page shows for one study, from stored results and ratings
    (``with_agreement=False``: without the bootstrap, for the export)."""
    sources = metric_sources(reader_study=reader_study)
    pairs = [p for g in sources for p in g.pairs]
    results = results_for_pairs(pairs)
    expert = expert_outcomes(reader_study=reader_study)
    pair_values = {p.key: _pair_values(results.get(p.key, {})) for p in pairs}
    present = {name for values in pair_values.values() for name in values}
    shown = [name for name in TABLE_VALUES if name in present]
    expert_means = {
        p.key: {
            c.id: _mean(expert.per_report.get(p.candidate.id, {}).get(c.id, []))
            for c in expert.columns
        }
        for p in pairs
    }
    labels = {p.key: source_label(p.candidate.source) for p in pairs}

    source_rows = []
    for group in sources:
        keys = [p.key for p in group.pairs]
        source_rows.append(
            {
                "label": group.label,
                "key": group.key,
                "reports": len(keys),
                "scored": sum(1 for k in keys if pair_values[k]),
                "metrics": [
                    _mean(pair_values[k].get(name, math.nan) for k in keys) for name in shown
                ],
                "expert": [
                    _mean(expert_means[k][c.id] for k in keys if expert_means[k][c.id] is not None)
                    for c in expert.columns
                ],
            }
        )
    skipped = []
    for pair in pairs:
        reason = _skip_reason(pair, results.get(pair.key, {}))
        if reason:
            skipped.append(
                {
                    "study": pair.imaging_study,
                    "source": labels[pair.key],
                    "reason": reason,
                    "report": pair.candidate,
                }
            )

    failures = [
        {
            "study": pair.imaging_study,
            "source": labels[pair.key],
            "metric": result.metric,
            "reason": result.reason,
            "report": pair.candidate,
        }
        for pair in pairs
        for result in results.get(pair.key, {}).values()
        if result.status == MetricResult.Status.FAILED
    ]

    def column(get: Any) -> np.ndarray:
        return np.array([np.nan if (v := get(p)) is None else v for p in pairs], dtype=float)

    metric_columns = {n: column(lambda p, n=n: pair_values[p.key].get(n)) for n in shown}
    outcome_columns = {
        c.id: column(lambda p, c=c: expert_means[p.key][c.id]) for c in expert.columns
    }
    agreement: list[dict[str, Any]] = []
    source_agreement: list[dict[str, Any]] = []
    if with_agreement and pairs and metric_columns and outcome_columns:
        agreement, source_agreement = metric_agreement(
            reader_study=reader_study,
            metrics=metric_columns,
            outcomes=outcome_columns,
            case_ids=[p.imaging_study.id for p in pairs],
            source_ids=[source_key(p.candidate.source_id) for p in pairs],
            resamples=resamples,
            seed=seed,
        )
    points = {
        name: {
            c.id: [
                (float(x), float(y), labels[p.key])
                for p, x, y in zip(pairs, metric_columns[name], outcome_columns[c.id], strict=True)
                if math.isfinite(x) and math.isfinite(y)
            ]
            for c in expert.columns
        }
        for name in shown
    }
    return MetricsOverview(
        sources=sources,
        pairs=pairs,
        results=results,
        expert=expert,
        values=shown,
        source_rows=source_rows,
        skipped=skipped,
        agreement=agreement,
        source_agreement=source_agreement,
        points=points,
        resamples=resamples,
        failures=failures,
    )


AGREEMENT_CACHE_SECONDS = 24 * 3600


def metric_agreement(
    *,
    reader_study: ReaderStudy,
    metrics: dict[str, np.ndarray],
    outcomes: dict[str, np.ndarray],
    case_ids: list[int],
    source_ids: list[str],
    resamples: int,
    seed: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The report-level agreement table and, for several sources, the source-ranking one.

    Cached per study under a digest of everything they are computed from: every metric value
    and readers' mean per candidate report, each report's case and source, the resamples, the
    seed and the method's version. So a new, revised or withdrawn rating, a metric rerun with
    new values, a case moved to another report version, or a new method is a new key, never a
    stale table; a reload or an API poll while nothing changed is not 2,000 resamples again.
    """
    digest = hashlib.sha256()
    header = {
        "study": str(reader_study.public_id),
        "method": ALGORITHM_VERSION,
        "resamples": resamples,
        "seed": seed,
        "metrics": list(metrics),
        "outcomes": list(outcomes),
        "cases": case_ids,
        "sources": source_ids,
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    for column in (*metrics.values(), *outcomes.values()):
        digest.update(np.ascontiguousarray(column, dtype="<f8").tobytes())
    key = "metrics:agreement:" + digest.hexdigest()
    cached = cache.get(key)
    if cached is not None:
        return cached
    agreement = agreement_table(metrics, outcomes, case_ids, resamples=resamples, seed=seed)
    source_agreement: list[dict[str, Any]] = []
    if len(set(source_ids)) >= 2:
        source_agreement = source_ranking_table(
            metrics, outcomes, case_ids, source_ids, resamples=resamples, seed=seed
        )
    cache.set(key, (agreement, source_agreement), timeout=AGREEMENT_CACHE_SECONDS)
    return agreement, source_agreement
