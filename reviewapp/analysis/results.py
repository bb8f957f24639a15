"""The numbers of a reader study's analysis page and API, computed from the tidy ratings.

``results_from_frames`` takes the same tables the exports write (a ratings frame with the
``RATING_COLUMNS`` plus outcome columns, and the error-span frame), so the page, the API, and an
analyst who loads the downloaded CSVs into pandas all start from identical data. The frames
are loaded from the exports' typed rows (``rows.frame``), never from CSV text.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Max, Sum

from reviewapp.analysis import planning, plots, rows, stats
from reviewapp.analysis.selectors import (
    SPAN_COLUMNS,
    TidyQuery,
    outcome_columns,
    question_options,
    ratings_query,
    reader_study_list_for_analyst,
    spans_query,
)
from reviewapp.studies.models import Case, Rating, ReaderStudy

DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 20240501
MAX_RESAMPLES = 20_000
DEFAULT_RULE: stats.CaseRule = "any"
FOREST_TITLE = "Rates with 95% CIs (case and reader variance components)"
NO_STRATUM = "(no stratum)"
_ANALYST_PLACEHOLDERS = {
    "cand_short": "Candidate",
    "orig_short": "Original",
    "Candidate": "Candidate report",
    "candidate": "candidate report",
    "Original": "Original report",
    "original": "original report",
}


# The columns analysis reads; the frame comes from the same query as the ratings export.
ANALYSIS_COLUMNS = [
    "rating",
    "case",
    "imaging_study",
    "stratum",
    "reader",
    "cohort",
    "question",
    "side",
    "source",
    "answer_value",
    "candidate_side",
    "candidate_source",
    # When the reader opened the case: the order of their readings (learning, fatigue).
    "opened_at",
]


# What agreement and the figures read: a worker loads these only (half the columns).
REST_COLUMNS = [
    "case",
    "stratum",
    "reader",
    "question",
    "source",
    "answer_value",
    "candidate_source",
]


def ratings_frame(*, reader_study: ReaderStudy, columns: list[str] | None = None) -> pd.DataFrame:
    """The tidy ratings of a study (the rows and values of the ratings export, submitted
    only): ``columns`` of them, else all that analysis reads."""
    columns = columns or ANALYSIS_COLUMNS + [c for c, _ in outcome_columns(reader_study.protocol)]
    query = ratings_query(reader_study=reader_study, columns=columns, submitted_only=True)
    return rows.frame(TidyQuery(query, columns))


def spans_frame(*, reader_study: ReaderStudy) -> pd.DataFrame:
    """The error spans of a study (the rows and values of the spans export)."""
    frame = rows.frame(TidyQuery(spans_query(reader_study=reader_study), SPAN_COLUMNS))
    frame["is_significant"] = frame["is_significant"].astype(bool)
    return frame


def analyst_label(option: dict[str, Any]) -> str:
    """An option's short label for people who know the sources (analysts, not readers)."""
    text = option.get("short") or option.get("label") or option["value"]
    for name, value in _ANALYST_PLACEHOLDERS.items():
        text = text.replace("{" + name + "}", value)
    return str(text)


def _ordered_options(question: dict[str, Any]) -> list[dict[str, Any]]:
    """Options in scale order: comparative ones from most to least favourable to the candidate."""
    options = question_options(question)
    if question.get("scope") == "comparative" and any(o.get("axis") is not None for o in options):
        axed = sorted((o for o in options if o.get("axis") is not None), key=lambda o: -o["axis"])
        return axed + [o for o in options if o.get("axis") is None]
    return options


def _scale(question: dict[str, Any]) -> tuple[bool, list[str], list[str]]:
    """(is ordinal, options in scale order, off-scale options) of a question.

    A Likert scale is ordered throughout; a comparative question is ordered by its options'
    axis, and options without an axis (Med-Gemini's "X: neither correct") sit outside the
    order. Any other question is nominal, every option a category.
    """
    options = _ordered_options(question)
    if question["type"] == "likert":
        return True, [o["value"] for o in options], []
    axed = [o["value"] for o in options if o.get("axis") is not None]
    if len(axed) >= 2:
        return True, axed, [o["value"] for o in options if o.get("axis") is None]
    return False, [o["value"] for o in options], []


def json_safe(value: Any) -> Any:
    """JSON-safe: NaN -> None, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _subject(frame: pd.DataFrame) -> pd.Series:
    """Which report an outcome is about: the row's report, or for a comparison the candidate."""
    return frame["source"].where(frame["source"].fillna("") != "", frame["candidate_source"])


def _per_rating(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """One row per rating and subject source with each outcome (NaN where it does not apply)."""
    ids = ["case", "imaging_study", "reader", "cohort", "stratum"]
    if "opened_at" in frame.columns:
        ids.append("opened_at")
    frame = frame[["rating", *ids, "source", "candidate_source", *columns]]
    frame = frame.assign(subject=_subject(frame), stratum=frame["stratum"].fillna(""))
    frame["stratum"] = frame["stratum"].where(frame["stratum"] != "", NO_STRATUM)
    keyed = frame["rating"].notna() & frame["subject"].notna()
    if not keyed.all():  # like groupby, leave out rows without a rating or subject
        frame = frame[keyed]
    values = frame[columns].apply(pd.to_numeric, errors="coerce")
    # Group on integer codes of (rating, subject), numbered in order of first appearance like
    # groupby(sort=False): grouping on the text ids themselves was most of this step's cost.
    ratings, _ = pd.factorize(frame["rating"])
    subjects, _ = pd.factorize(frame["subject"])
    group, _ = pd.factorize(ratings * (subjects.max(initial=0) + 1) + subjects)
    outcomes = values.groupby(group, sort=False).max()
    # Every row of a rating carries its ids: the first row of each group has them.
    _, first = np.unique(group, return_index=True)
    per = frame[["rating", "subject", *ids]].iloc[first].reset_index(drop=True)
    return pd.concat([per, outcomes.reset_index(drop=True)], axis=1)


def results_from_frames(
    *,
    protocol: dict[str, Any],
    ratings: pd.DataFrame,
    spans: pd.DataFrame,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    with_plots: bool = True,
    rule: stats.CaseRule = DEFAULT_RULE,
    min_reads: int = 1,
    min_pair_cases: int = stats.DEFAULT_MIN_PAIR_CASES,
    prevalences: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Every number (and figure) of the analysis page, from the two tidy tables.

    ``rule`` decides when a report meets an outcome in the paired comparison (any / half /
    all of the readers who read it); ``min_reads`` leaves out cases read by fewer readers from
    every case-level figure; ``min_pair_cases`` is the fewest shared cases a reader pair needs
    for its kappa; ``prevalences`` (stratum -> weight) adds an overall rate weighted by them.
    """
    headline = headline_from_frames(
        protocol=protocol,
        ratings=ratings,
        spans=spans,
        n_resamples=n_resamples,
        seed=seed,
        rule=rule,
        min_reads=min_reads,
        min_pair_cases=min_pair_cases,
        prevalences=prevalences,
    )
    rest = rest_from_frames(
        protocol=protocol,
        ratings=ratings,
        headline=headline,
        n_resamples=n_resamples,
        seed=seed,
        min_pair_cases=min_pair_cases,
        with_plots=with_plots,
    )
    return {**headline, **rest}


def headline_from_frames(
    *,
    protocol: dict[str, Any],
    ratings: pd.DataFrame,
    spans: pd.DataFrame,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    rule: stats.CaseRule = DEFAULT_RULE,
    min_reads: int = 1,
    min_pair_cases: int = stats.DEFAULT_MIN_PAIR_CASES,
    prevalences: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The page's headline: rates with their intervals, case-level rates, the paired
    comparisons, errors, per reader and cohort, position bias and reading position (every
    part but ``REST_PARTS``; parameters as ``results_from_frames``)."""
    outcome_cols = outcome_columns(protocol)
    columns = [c for c, _ in outcome_cols]
    labels = dict(outcome_cols)
    questions = list(protocol.get("questions", []))
    result: dict[str, Any] = {
        "n_ratings": int(ratings["rating"].nunique()) if len(ratings) else 0,
        "n_cases": int(ratings["case"].nunique()) if len(ratings) else 0,
        "n_readers": int(ratings["reader"].nunique()) if len(ratings) else 0,
        "bootstrap": {"n_resamples": n_resamples, "seed": seed, "level": 0.95},
        "rules": {
            "case_rule": rule,
            "case_rule_label": stats.CASE_RULES[rule],
            "min_reads": min_reads,
            "min_pair_cases": min_pair_cases,
            "prevalences": dict(prevalences or {}),
            "interval_methods": dict(stats.INTERVAL_METHODS),
        },
        "headline": [],
        "case_level": [],
        "comparisons": [],
        "errors": {},
        "per_reader": [],
        "by_cohort": [],
        "position_bias": [],
        "reading_position": [],
    }
    if ratings.empty:
        return result
    per = _per_rating(ratings, columns) if columns else pd.DataFrame()
    strata = sorted(per["stratum"].unique()) if len(per) else []
    use_strata = len(strata) > 1

    def intervals(frame: pd.DataFrame, stratum: str | None) -> dict[str, Any]:
        return stats.rate_intervals(
            frame, outcomes=columns, stratum=stratum, prevalences=prevalences
        )

    by_source = (
        {
            source: intervals(part, "stratum" if use_strata else None)
            for source, part in per.groupby("subject", sort=True)
        }
        if len(per)
        else {}
    )

    by_cohort: dict[tuple[str, str], dict[str, Any]] = {}
    for column in columns:
        for source, part in per.groupby("subject", sort=True):
            part = part[part[column].notna()]
            if part.empty:
                continue
            boot = by_source[source][column]
            level = stats.case_level_rates(
                part,
                outcome=column,
                stratum="stratum" if use_strata else None,
                min_reads=min_reads,
            )
            for stratum, rate in boot.items():
                row = {
                    "outcome": column.removeprefix("outcome_"),
                    "label": labels[column],
                    "source": source,
                    "stratum": stratum,
                    **rate.as_dict(),
                    "method_label": stats.INTERVAL_METHODS[rate.method],
                    "case_level": {name: r.as_dict() for name, r in level.get(stratum, {}).items()},
                }
                result["headline"].append(row)
            # Reader cohorts (e.g. US and Indian radiologists) split the panel, not the cases:
            # each cohort's rate resamples all cases and that cohort's readers.
            cohorts = sorted(c for c in part["cohort"].unique() if c)
            if len(cohorts) > 1:
                for cohort in cohorts:
                    key = (source, cohort)
                    if key not in by_cohort:
                        everyone = per[(per["subject"] == source) & (per["cohort"] == cohort)]
                        by_cohort[key] = intervals(everyone, None)
                    rate = by_cohort[key][column][stats.OVERALL]
                    result["by_cohort"].append(
                        {
                            "outcome": column.removeprefix("outcome_"),
                            "label": labels[column],
                            "source": source,
                            "cohort": cohort,
                            **rate.as_dict(),
                        }
                    )
            by_reader = (
                part.groupby(["reader", "cohort"])[column].agg(["mean", "count"]).reset_index()
            )
            for reader_row in by_reader.itertuples(index=False):
                result["per_reader"].append(
                    {
                        "outcome": column.removeprefix("outcome_"),
                        "label": labels[column],
                        "source": source,
                        "reader": reader_row.reader,
                        "cohort": reader_row.cohort,
                        "rate": float(reader_row.mean),
                        "n": int(reader_row.count),
                    }
                )

    if len(per) and "opened_at" in per.columns:
        result["reading_position"] = _reading_position(per, columns, labels)

    # AI against original on the same imaging studies (single-report protocols).
    if protocol.get("mode") != "pairwise" and len(per):
        sources = set(per["subject"])
        for candidate in sorted(sources - {"original"}):
            if "original" not in sources:
                break
            for column in columns:
                pair = per[per["subject"].isin([candidate, "original"]) & per[column].notna()]
                test = stats.mcnemar_paired(
                    pair,
                    outcome=column,
                    case="imaging_study",
                    source="subject",
                    ai=candidate,
                    original="original",
                    rule=rule,
                    min_reads=min_reads,
                )
                if test.n_pairs:
                    result["comparisons"].append(
                        {
                            "outcome": column.removeprefix("outcome_"),
                            "label": labels[column],
                            "candidate": candidate,
                            "rule_label": stats.CASE_RULES[test.rule],
                            **test.as_dict(),
                        }
                    )

    if len(spans):
        table = pd.crosstab(spans["category_label"], spans["report_source"])
        significant = pd.crosstab(
            spans["category_label"],
            spans["report_source"],
            values=spans["is_significant"].astype(int),
            aggfunc="sum",
        ).fillna(0)
        error_rows = ratings[
            ratings["question"].isin([q["id"] for q in questions if q["type"] == "error_spans"])
        ]
        reports = _subject(error_rows).value_counts()
        result["errors"] = {
            "by_category": [
                {
                    "category": category,
                    "source": source,
                    "count": int(table.loc[category, source]),
                    "significant": int(significant.loc[category, source]),
                }
                for category in table.index
                for source in table.columns
            ],
            "per_report": [
                {
                    "source": source,
                    "reports_rated": int(reports.get(source, 0)),
                    "errors": int(table[source].sum()),
                    "errors_per_report": float(table[source].sum() / reports[source])
                    if reports.get(source)
                    else math.nan,
                }
                for source in table.columns
            ],
        }

    if protocol.get("mode") == "pairwise":
        # Integer codes made once: selecting and mapping the Arrow-backed text columns per
        # question was most of this part's cost.
        question_codes, question_ids = pd.factorize(ratings["question"])
        answer_codes, answer_values = pd.factorize(ratings["answer_value"])
        side_codes, sides = pd.factorize(ratings["candidate_side"])
        side_a = side_codes == (list(sides).index("A") if "A" in list(sides) else -2)
        side_b = side_codes == (list(sides).index("B") if "B" in list(sides) else -2)
        reader_codes = pd.factorize(ratings["reader"])[0]
        case_codes = pd.factorize(ratings["case"])[0]
        for question in questions:
            axes = {o["value"]: o.get("axis") for o in question_options(question)}
            if question.get("scope") != "comparative" or all(a is None for a in axes.values()):
                continue
            found = np.flatnonzero(question_ids == question["id"])
            mask = question_codes == (found[0] if len(found) else -2)
            # An option favours the candidate (axis > 0) or the original (axis < 0); which
            # side won follows from where the candidate was shown. Code -1 (no answer): NaN.
            known = [axes.get(v) for v in answer_values]
            axis_of = np.array([math.nan if a is None else float(a) for a in known] + [math.nan])
            axis = axis_of[answer_codes[mask]]
            on_a, on_b = side_a[mask], side_b[mask]
            candidate_won = (on_a | on_b) & (axis > 0)
            original_won = (on_a | on_b) & (axis < 0)
            winners = np.full(int(mask.sum()), None, dtype=object)
            winners[(on_a & candidate_won) | (on_b & original_won)] = "A"
            winners[(on_b & candidate_won) | (on_a & original_won)] = "B"
            bias = stats.position_bias(winners, readers=reader_codes[mask], cases=case_codes[mask])
            result["position_bias"].append({"question": question["id"], **bias.as_dict()})

    return json_safe(result)


# The parts of the analysis that may come from a worker task: bootstrap CIs of every
# agreement coefficient, and the figures.
REST_PARTS = ("agreement", "plots")
PLOT_STEPS = 3

Progress = Callable[[int, int], None]
Headline = dict[str, Any] | Callable[[], dict[str, Any]]


def _agreement_questions(protocol: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        q
        for q in protocol.get("questions", [])
        if q["type"] in ("single_choice", "likert", "yes_no")
    ]


def rest_steps(protocol: dict[str, Any], *, with_plots: bool = True) -> int:
    """How many steps ``rest_from_frames`` reports progress in."""
    return len(_agreement_questions(protocol)) + (PLOT_STEPS if with_plots else 0)


def rest_from_frames(
    *,
    protocol: dict[str, Any],
    ratings: pd.DataFrame,
    headline: Headline,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    min_pair_cases: int = stats.DEFAULT_MIN_PAIR_CASES,
    with_plots: bool = True,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The ``REST_PARTS``: agreement between readers with bootstrap CIs, and the figures
    (drawn from ``headline``, the output of ``headline_from_frames`` on the same ratings, or
    a function giving it: asked for only when the figures are drawn, after the agreement).

    ``progress(done, total)`` is called after each question's agreement and each figure.
    """
    total = rest_steps(protocol, with_plots=with_plots)
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    result: dict[str, Any] = {"agreement": [], "plots": {}}
    # Agreement works on integer codes and categoricals made once for the whole frame:
    # filtering and factorising the Arrow-backed text columns per question cost seconds.
    coded = _coded(ratings) if len(ratings) else None
    for question in _agreement_questions(protocol):
        rows = (
            coded[(coded["question"] == question["id"]).to_numpy() & coded["answered"]]
            if coded is not None
            else None
        )
        if rows is not None and rows["reader"].nunique() >= 2:
            is_ordinal, categories, off_scale = _scale(question)
            agreement = stats.agreement(
                rows,
                question=question["id"],
                value="answer_value",
                categories=categories,
                off_scale=off_scale,
                is_ordinal=is_ordinal,
                case="unit",
                min_pair_cases=min_pair_cases,
                n_resamples=n_resamples,
                seed=seed,
            )
            result["agreement"].append(
                {"prompt": question.get("prompt", ""), **agreement.as_dict()}
            )
        step()
    if with_plots:
        if len(ratings):
            result["plots"] = _plots(
                protocol, ratings, headline() if callable(headline) else headline, step
            )
        while done < total:  # figures that did not apply
            step()
    return json_safe(result)


def _coded(ratings: pd.DataFrame) -> pd.DataFrame:
    """The ratings' question, answer and reader as categoricals and the unit (case and
    report) as an integer: cheap to filter per question."""
    case = pd.factorize(ratings["case"])[0]
    source = pd.factorize(ratings["source"].fillna(""))[0]
    answer = ratings["answer_value"].fillna("")
    return pd.DataFrame(
        {
            "question": _categorical(ratings["question"]),
            "answer_value": _categorical(answer),
            "answered": (answer != "").to_numpy(),
            "reader": _categorical(ratings["reader"]),
            "unit": case * (source.max(initial=0) + 1) + source,
        }
    )


def _categorical(column: pd.Series) -> pd.Categorical:
    """``pd.Categorical`` of a text column (categories sorted), from Arrow's hashing: making
    Python strings of every value first was most of the cost."""
    codes, categories = pd.factorize(column, sort=True)
    return pd.Categorical.from_codes(codes, categories=pd.Index(categories, dtype=object))


def _reading_position(
    per: pd.DataFrame, columns: list[str], labels: dict[str, str]
) -> list[dict[str, Any]]:
    """Each outcome along the readers' sequences (by quarter, within-reader trend)."""
    # A reader's sequence is all their ratings in the study, in the order they opened them.
    readings = per.drop_duplicates("rating")
    # Integer order codes: ranking the ISO time stamps as text was most of this step's cost.
    order = pd.Series(pd.factorize(readings["opened_at"], sort=True)[0])
    place = pd.Series(
        stats.relative_positions(order, readings["reader"]),
        index=readings["rating"].to_numpy(),
    )
    position = place.reindex(per["rating"].to_numpy()).to_numpy()
    # Plain numpy once: slicing Arrow-backed text columns per outcome was most of the cost.
    readers = per["reader"].to_numpy(dtype=object)
    cases = pd.factorize(per["case"])[0]
    values = {column: per[column].to_numpy(dtype=float) for column in columns}
    subjects = per["subject"].to_numpy(dtype=object)
    found = []
    for column in columns:
        for source in sorted(per["subject"].unique()):
            mask = (subjects == source) & ~np.isnan(values[column])
            if mask.sum() < 4:
                continue
            trend = stats.reading_position(
                values[column][mask], position[mask], readers[mask], cases[mask]
            )
            found.append(
                {
                    "outcome": column.removeprefix("outcome_"),
                    "label": labels[column],
                    "source": source,
                    **trend.as_dict(),
                    "method_label": stats.INTERVAL_METHODS[trend.method],
                }
            )
    return found


def _figure(name: str, inputs: Any, draw: Callable[[], str]) -> str:
    """A figure's SVG, drawn once for the numbers it shows: another seed, resample count or
    case rule leaves most figures' numbers alone, and drawing is a good part of the cost."""
    digest = hashlib.sha256(json.dumps([name, inputs], default=str).encode()).hexdigest()
    key = f"analysis:results:figure:{digest}"
    svg = cache.get(key)
    if svg is None:
        svg = draw()
        cache.set(key, svg, timeout=ANALYSIS_CACHE_SECONDS)
    return str(svg)


def _plots(
    protocol: dict[str, Any],
    ratings: pd.DataFrame,
    headline: dict[str, Any],
    step: Callable[[], None],
) -> dict[str, dict[str, str]]:
    forest_rows = [
        plots.ForestRow(
            f"{row['label']} · {row['source']} · {row['stratum']}",
            *(math.nan if row[k] is None else float(row[k]) for k in ("estimate", "low", "high")),
        )
        for row in headline.get("headline", [])
    ]
    per_reader = headline.get("per_reader", [])
    figures: dict[str, dict[str, str]] = {}
    scale_question = next(
        (q for q in protocol.get("questions", []) if q["type"] in ("single_choice", "likert")),
        None,
    )
    if scale_question is not None:
        options = _ordered_options(scale_question)
        rows = ratings.loc[
            ratings["question"] == scale_question["id"],
            ["stratum", "source", "candidate_source", "answer_value"],
        ]
        if len(rows):
            stratum = rows["stratum"].fillna("").replace("", NO_STRATUM)
            subject = _subject(rows)
            group = stratum if subject.nunique() < 2 else stratum + " · " + subject
            counts = pd.crosstab(group, rows["answer_value"])
            counts = counts.reindex(columns=[o["value"] for o in options], fill_value=0)
            counts.columns = [analyst_label(o) for o in options]
            title = scale_question.get("prompt", scale_question["id"])
            figures["scale"] = {
                "title": f"Answers by stratum: {title}",
                "svg": _figure(
                    "scale",
                    [title, counts.to_dict("split")],
                    lambda: plots.scale_by_stratum_svg(counts, title=title),
                ),
            }
            step()
    if forest_rows:
        figures["forest"] = {
            "title": FOREST_TITLE,
            "svg": _figure(
                "forest", forest_rows, lambda: plots.forest_svg(forest_rows, title=FOREST_TITLE)
            ),
        }
        step()
    if per_reader:
        first = (per_reader[0]["outcome"], per_reader[0]["source"])
        chosen = [r for r in per_reader if (r["outcome"], r["source"]) == first]
        title = f"{per_reader[0]['label']} ({first[1]}) per reader"
        figures["per_reader"] = {
            "title": title,
            "svg": _figure(
                "per_reader",
                [title, chosen],
                lambda: plots.per_reader_svg(pd.DataFrame(chosen), title=title),
            ),
        }
        step()
    return figures


PREVALENCE_PREFIX = "prevalence_"


def prevalences_from_query(params: Any) -> dict[str, float]:
    """Stratum prevalences from query parameters ``prevalence_<stratum>=<weight>``.

    Weights need not add up to 1 (they are normalised over the strata rated); blank,
    unparsable, negative or non-finite values are ignored, so a half-filled form still works.
    """
    found: dict[str, float] = {}
    for key in params:
        if not key.startswith(PREVALENCE_PREFIX):
            continue
        try:
            weight = float(params.get(key))
        except (TypeError, ValueError):
            continue
        if math.isfinite(weight) and weight >= 0:
            found[key.removeprefix(PREVALENCE_PREFIX)] = weight
    return found if any(found.values()) else {}


# --------------------------------------------------------------------------------------------
# The analysis of a study: cached per study version, the heavy parts on a worker
# --------------------------------------------------------------------------------------------
#
# Cached per study version and parameters, in two pieces: the headline and the
# ``REST_PARTS``. 100k ratings with 2,000 resamples take seconds, and an analyst who reloads
# or an API script that polls should not pay that again while no rating changed. The
# headline is computed in the request; the rest too for a small study, otherwise by one
# worker task per study version and parameters (``analysis_rest_start``), whose progress is
# kept beside the pieces. Keys: "<key>:headline", "<key>:rest" (with figures) or
# "<key>:rest-nofigures", "<key>:status".

ANALYSIS_CACHE_SECONDS = 24 * 3600
# A failed computation is retried by the next view after this long, not by every poll.
FAILED_RETRY_SECONDS = 60


@dataclass(frozen=True)
class AnalysisParams:
    """The parameters an analysis depends on besides the study's version (validated)."""

    n_resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED
    rule: stats.CaseRule = DEFAULT_RULE
    min_reads: int = 1
    min_pair_cases: int = stats.DEFAULT_MIN_PAIR_CASES
    prevalences: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.n_resamples <= MAX_RESAMPLES:
            raise ValueError(f"resamples must be between 1 and {MAX_RESAMPLES}")
        if self.rule not in stats.CASE_RULES:
            raise ValueError(f"rule must be one of {', '.join(stats.CASE_RULES)}")
        if self.min_reads < 1 or self.min_pair_cases < 1:
            raise ValueError("min_reads and min_pair_cases must be at least 1")

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe, for a task's arguments and the cache key."""
        return {**asdict(self), "prevalences": dict(sorted(self.prevalences.items()))}


@dataclass(frozen=True)
class AnalysisStatus:
    """How far the parts after the headline are: ``complete``, ``queued`` (waiting for a
    worker), ``running`` (``done`` of ``total`` steps) or ``failed`` (retried by a view after
    ``FAILED_RETRY_SECONDS``). ``key`` names the study version and parameters computed."""

    state: str
    key: str
    done: int = 0
    total: int = 0

    @property
    def is_complete(self) -> bool:
        return self.state == "complete"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Frames:
    """A study's two tidy tables, loaded on first use (a cached headline needs neither)."""

    def __init__(self, reader_study: ReaderStudy, columns: list[str] | None = None) -> None:
        self.reader_study = reader_study
        self.columns = columns
        self._ratings: pd.DataFrame | None = None
        self._spans: pd.DataFrame | None = None

    @property
    def ratings(self) -> pd.DataFrame:
        if self._ratings is None:
            self._ratings = ratings_frame(reader_study=self.reader_study, columns=self.columns)
        return self._ratings

    @property
    def spans(self) -> pd.DataFrame:
        if self._spans is None:
            self._spans = spans_frame(reader_study=self.reader_study)
        return self._spans


def _headline(
    reader_study: ReaderStudy, key: str, params: AnalysisParams, frames: _Frames
) -> dict[str, Any]:
    cached = cache.get(f"{key}:headline")
    if cached is not None:
        return dict(cached)
    headline = headline_from_frames(
        protocol=reader_study.protocol,
        ratings=frames.ratings,
        spans=frames.spans,
        n_resamples=params.n_resamples,
        seed=params.seed,
        rule=params.rule,
        min_reads=params.min_reads,
        min_pair_cases=params.min_pair_cases,
        prevalences=params.prevalences,
    )
    cache.set(f"{key}:headline", headline, timeout=ANALYSIS_CACHE_SECONDS)
    return headline


def _rest_cached(key: str, *, with_plots: bool) -> dict[str, Any] | None:
    # The rest with figures serves a request without them too (the figures left out).
    rest = cache.get(f"{key}:rest")
    if rest is not None:
        return dict(rest) if with_plots else {**rest, "plots": {}}
    return None if with_plots else cache.get(f"{key}:rest-nofigures")


def _rest_compute(
    reader_study: ReaderStudy,
    key: str,
    params: AnalysisParams,
    frames: _Frames,
    headline: Headline,
    *,
    with_plots: bool,
    progress: Progress | None = None,
) -> dict[str, Any]:
    rest = rest_from_frames(
        protocol=reader_study.protocol,
        ratings=frames.ratings,
        headline=headline,
        n_resamples=params.n_resamples,
        seed=params.seed,
        min_pair_cases=params.min_pair_cases,
        with_plots=with_plots,
        progress=progress,
    )
    name = f"{key}:rest" if with_plots else f"{key}:rest-nofigures"
    cache.set(name, rest, timeout=ANALYSIS_CACHE_SECONDS)
    return rest


def analysis_key(*, reader_study: ReaderStudy, params: AnalysisParams) -> str:
    """The cache key of a study's analysis at its current version with these parameters."""
    return _key_and_size(reader_study, params)[0]


def _key_and_size(reader_study: ReaderStudy, params: AnalysisParams) -> tuple[str, int]:
    """The cache key and the number of ratings of the study's current version."""
    version = study_version(reader_study)
    return _key_of(version, params.as_dict()), int(version["ratings"][0])


def analysis_results(
    *,
    reader_study: ReaderStudy,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    with_plots: bool = True,
    rule: stats.CaseRule = DEFAULT_RULE,
    min_reads: int = 1,
    min_pair_cases: int = stats.DEFAULT_MIN_PAIR_CASES,
    prevalences: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The complete analysis of one study, computed in this process where not cached
    (already authorised through reader_study_get_for_analyst)."""
    params = AnalysisParams(
        n_resamples, seed, rule, min_reads, min_pair_cases, dict(prevalences or {})
    )
    key = analysis_key(reader_study=reader_study, params=params)
    frames = _Frames(reader_study)
    headline = _headline(reader_study, key, params, frames)
    rest = _rest_cached(key, with_plots=with_plots)
    if rest is None:
        rest = _rest_compute(reader_study, key, params, frames, headline, with_plots=with_plots)
    return {**headline, **rest}


def analysis_headline(*, reader_study: ReaderStudy, params: AnalysisParams) -> dict[str, Any]:
    """The headline of a study's analysis (cached or computed now): rules, counts, rates."""
    key = analysis_key(reader_study=reader_study, params=params)
    return _headline(reader_study, key, params, _Frames(reader_study))


def _is_small(n_ratings: int, params: AnalysisParams) -> bool:
    limit = settings.ANALYSIS_INLINE_RATINGS
    return limit is None or n_ratings * params.n_resamples <= limit * DEFAULT_RESAMPLES


def analysis_get_or_start(
    *, reader_study: ReaderStudy, params: AnalysisParams, with_plots: bool = True
) -> tuple[dict[str, Any], AnalysisStatus]:
    """The analysis as far as it is ready, and how far that is: the headline always; the
    ``REST_PARTS`` when cached, or computed now for a small study
    (``settings.ANALYSIS_INLINE_RATINGS``), else started in a worker task (once per study
    version and parameters: a second viewer joins the first one's task) and left out.

    Precondition: ``reader_study`` came from ``reader_study_get_for_analyst``.
    """
    key, n_ratings = _key_and_size(reader_study, params)
    digest = key.rsplit(":", 1)[1]
    frames = _Frames(reader_study)
    rest = _rest_cached(key, with_plots=with_plots)
    status = AnalysisStatus("complete", digest)
    if rest is None and not _is_small(n_ratings, params):
        # Queued before the headline is computed, so that the worker loads its frame and
        # bootstraps the agreement while this request works on the headline.
        status = analysis_rest_start(reader_study=reader_study, params=params, key=key)
    headline = _headline(reader_study, key, params, frames)
    if rest is None and status.is_complete:
        rest = _rest_cached(key, with_plots=with_plots) or _rest_compute(
            reader_study, key, params, frames, headline, with_plots=with_plots
        )
    if rest is None:
        return headline, status
    return {**headline, **rest}, status


def analysis_rest_start(
    *, reader_study: ReaderStudy, params: AnalysisParams, key: str
) -> AnalysisStatus:
    """Queue the task computing the ``REST_PARTS`` of ``key`` unless one is queued or
    running already; return the status of the one that is."""
    digest = key.rsplit(":", 1)[1]
    total = rest_steps(reader_study.protocol)
    queued: dict[str, Any] = {"state": "queued", "done": 0, "total": total}
    # SET NX: of two requests at once only one queues the task. The marker outlives the
    # longest a task may run, so a task lost with its worker is queued again after that.
    if cache.add(f"{key}:status", queued, timeout=settings.CELERY_TASK_HARD_TIME_LIMIT):
        from reviewapp.analysis.tasks import analysis_rest_compute_task

        kwargs = {"reader_study_pk": reader_study.pk, "params": params.as_dict(), "key": key}
        transaction.on_commit(lambda: analysis_rest_compute_task.apply_async(kwargs=kwargs))
        return AnalysisStatus("queued", digest, 0, total)
    status = cache.get(f"{key}:status") or queued
    if _rest_cached(key, with_plots=True) is not None:  # finished since we looked
        return AnalysisStatus("complete", digest)
    return AnalysisStatus(status["state"], digest, status["done"], status["total"])


# How long a task waits for the request that queued it to cache the headline its figures
# are drawn from, before computing the headline itself.
HEADLINE_WAIT_SECONDS = 30.0


def _headline_awaited(
    reader_study: ReaderStudy, key: str, params: AnalysisParams, frames: _Frames
) -> dict[str, Any]:
    deadline = time.monotonic() + HEADLINE_WAIT_SECONDS
    while time.monotonic() < deadline:
        cached = cache.get(f"{key}:headline")
        if cached is not None:
            return dict(cached)
        time.sleep(0.1)
    return _headline(reader_study, key, params, frames)


def analysis_rest_compute(*, reader_study_pk: int, params: dict[str, Any], key: str) -> str:
    """Compute and cache the ``REST_PARTS`` (with figures) of ``key``, saving progress after
    each step. Idempotent: nothing to do when they are cached, or when the study has changed
    since ``key`` was taken (a view of the new version queues its own task). Returns what
    happened."""
    reader_study = ReaderStudy.objects.filter(pk=reader_study_pk).first()
    if reader_study is None:
        cache.delete(f"{key}:status")
        return "gone"
    analysis = AnalysisParams(**params)
    if analysis_key(reader_study=reader_study, params=analysis) != key:
        cache.delete(f"{key}:status")
        return "superseded"
    if _rest_cached(key, with_plots=True) is not None:
        cache.delete(f"{key}:status")
        return "cached"

    def progress(done: int, total: int) -> None:
        state = {"state": "running", "done": done, "total": total}
        cache.set(f"{key}:status", state, timeout=settings.CELERY_TASK_HARD_TIME_LIMIT)

    progress(0, rest_steps(reader_study.protocol))
    try:
        _rest_compute(
            reader_study,
            key,
            analysis,
            _Frames(reader_study, REST_COLUMNS),
            lambda: _headline_awaited(reader_study, key, analysis, _Frames(reader_study)),
            with_plots=True,
            progress=progress,
        )
    except Exception:
        cache.set(
            f"{key}:status",
            {"state": "failed", "done": 0, "total": 0},
            timeout=FAILED_RETRY_SECONDS,
        )
        raise
    cache.delete(f"{key}:status")
    return "computed"


def study_version(reader_study: ReaderStudy) -> dict[str, Any]:
    """What the analysis of a study depends on besides its parameters, in one query each.

    A submitted, revised or withdrawn rating changes the count, the sum of versions or the
    latest update; an edited case (stratum) or protocol changes their update times.
    """
    ratings = Rating.objects.filter(assignment__reader_study=reader_study).aggregate(
        n=Count("id"), versions=Sum("version"), updated=Max("updated_at")
    )
    cases = Case.objects.filter(reader_study=reader_study).aggregate(
        n=Count("id"), updated=Max("updated_at")
    )
    return {
        "study": str(reader_study.public_id),
        "study_updated": reader_study.updated_at.isoformat(),
        "protocol_version": reader_study.protocol_version,
        "ratings": [ratings["n"], ratings["versions"], str(ratings["updated"])],
        "cases": [cases["n"], str(cases["updated"])],
    }


def _cache_key(reader_study: ReaderStudy, **params: Any) -> str:
    return _key_of(study_version(reader_study), params)


def study_cache_key(reader_study: ReaderStudy, **params: Any) -> str:
    """A cache key for anything computed from the study's current version (its ratings, cases
    and protocol), these parameters and this analysis code; any change gives a new key."""
    return _cache_key(reader_study, **params)


def _analysis_code_version() -> str:
    """A digest of the analysis code itself: a release (or a fix) that changes how a figure is
    computed never serves the figures the previous code cached for the same ratings."""
    digest = hashlib.sha256()
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


ANALYSIS_CODE_VERSION = _analysis_code_version()


def _key_of(version: dict[str, Any], params: dict[str, Any]) -> str:
    payload = json.dumps(
        {"version": version, "params": params, "code": ANALYSIS_CODE_VERSION},
        sort_keys=True,
        default=str,
    )
    return "analysis:results:" + hashlib.sha256(payload.encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# Planning defaults from this installation's past studies
# --------------------------------------------------------------------------------------------


def study_spreads(*, reader_study: ReaderStudy) -> planning.Spreads | None:
    """The rate and spreads a past study shows, for the planner's defaults (cached per version).

    Its first outcome, on the original reports' ratings where there are any (the planner's
    rate is the originals' rate), else on all its ratings.
    """
    key = _cache_key(reader_study, purpose="planning_spreads")
    cached = cache.get(key)
    if cached is not None:
        return cached or None
    columns = [c for c, _ in outcome_columns(reader_study.protocol)]
    found: planning.Spreads | None = None
    frame = ratings_frame(reader_study=reader_study) if columns else pd.DataFrame()
    if len(frame):
        per = _per_rating(frame, columns[:1])
        per = per[per[columns[0]].notna()]
        if (per["subject"] == "original").any():
            per = per[per["subject"] == "original"]
        found = planning.spreads_from_ratings(
            per[columns[0]].to_numpy(dtype=float),
            pd.factorize(per["case"])[0],
            pd.factorize(per["reader"])[0],
        )
    cache.set(key, found or False, timeout=ANALYSIS_CACHE_SECONDS)
    return found


@dataclass(frozen=True)
class PlanDefaults:
    """The planner's defaults and where they came from."""

    rate: float
    reader_sd: float
    case_sd: float
    # Names of the past studies they were estimated from; empty: the built-in defaults.
    studies: list[str]
    n_ratings: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_defaults(*, user: Any, built_in: dict[str, float]) -> PlanDefaults:
    """Defaults for the planner from the past studies the user may analyse, else ``built_in``.

    Rates and spreads of every such study with enough ratings (``planning.spreads_from_ratings``)
    pooled by their numbers of ratings, rounded to what a form shows.
    """
    found: list[tuple[str, planning.Spreads]] = []
    for reader_study in reader_study_list_for_analyst(user=user).order_by("id"):
        spreads = study_spreads(reader_study=reader_study)
        if spreads is not None:
            found.append((reader_study.name, spreads))
    pooled = planning.pooled_spreads([s for _, s in found])
    if pooled is None:
        return PlanDefaults(built_in["rate"], built_in["reader_sd"], built_in["case_sd"], [], 0)
    return PlanDefaults(
        rate=round(min(max(pooled.rate, 0.001), 0.999), 3),
        reader_sd=round(pooled.reader_sd, 2),
        case_sd=round(pooled.case_sd, 2),
        studies=[name for name, _ in found],
        n_ratings=pooled.n_ratings,
    )
