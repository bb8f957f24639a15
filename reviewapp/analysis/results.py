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
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from django.core.cache import cache
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


def ratings_frame(*, reader_study: ReaderStudy) -> pd.DataFrame:
    """The tidy ratings of a study (the rows and values of the ratings export, submitted only)."""
    columns = ANALYSIS_COLUMNS + [c for c, _ in outcome_columns(reader_study.protocol)]
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
        "agreement": [],
        "per_reader": [],
        "by_cohort": [],
        "position_bias": [],
        "reading_position": [],
        "plots": {},
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
    forest_rows: list[plots.ForestRow] = []
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
                forest_rows.append(
                    plots.ForestRow(
                        f"{labels[column]} · {source} · {stratum}",
                        rate.estimate,
                        rate.low,
                        rate.high,
                    )
                )
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

    # Agreement works on integer codes and categoricals made once for the whole frame:
    # filtering and factorising the Arrow-backed text columns per question cost seconds.
    coded = _coded(ratings) if len(ratings) else None
    for question in questions:
        if question["type"] not in ("single_choice", "likert", "yes_no") or coded is None:
            continue
        rows = coded[(coded["question"] == question["id"]).to_numpy() & coded["answered"]]
        if rows["reader"].nunique() < 2:
            continue
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
        result["agreement"].append({"prompt": question.get("prompt", ""), **agreement.as_dict()})

    if protocol.get("mode") == "pairwise":
        for question in questions:
            axes = {o["value"]: o.get("axis") for o in question_options(question)}
            if question.get("scope") != "comparative" or all(a is None for a in axes.values()):
                continue
            rows = ratings.loc[
                ratings["question"] == question["id"],
                ["answer_value", "candidate_side", "reader", "case"],
            ]
            # An option favours the candidate (axis > 0) or the original (axis < 0); which
            # side won follows from where the candidate was shown.
            axis = rows["answer_value"].map(axes).astype(float).to_numpy()
            side = rows["candidate_side"].to_numpy(dtype=object)
            shown = np.isin(side, ["A", "B"])
            candidate_won = shown & (axis > 0)
            original_won = shown & (axis < 0)
            winners = np.full(len(rows), None, dtype=object)
            winners[((side == "A") & candidate_won) | ((side == "B") & original_won)] = "A"
            winners[((side == "B") & candidate_won) | ((side == "A") & original_won)] = "B"
            bias = stats.position_bias(
                winners,
                readers=rows["reader"].to_numpy(dtype=object),
                cases=rows["case"].to_numpy(dtype=object),
            )
            result["position_bias"].append({"question": question["id"], **bias.as_dict()})

    if with_plots:
        result["plots"] = _plots(protocol, ratings, forest_rows, result["per_reader"])
    return json_safe(result)


def _coded(ratings: pd.DataFrame) -> pd.DataFrame:
    """The ratings' question, answer and reader as categoricals and the unit (case and
    report) as an integer: cheap to filter per question."""
    case = pd.factorize(ratings["case"])[0]
    source = pd.factorize(ratings["source"].fillna(""))[0]
    answer = ratings["answer_value"].fillna("")
    return pd.DataFrame(
        {
            "question": pd.Categorical(ratings["question"].to_numpy(dtype=object)),
            "answer_value": pd.Categorical(answer.to_numpy(dtype=object)),
            "answered": (answer != "").to_numpy(),
            "reader": pd.Categorical(ratings["reader"].to_numpy(dtype=object)),
            "unit": case * (source.max(initial=0) + 1) + source,
        }
    )


def _reading_position(
    per: pd.DataFrame, columns: list[str], labels: dict[str, str]
) -> list[dict[str, Any]]:
    """Each outcome along the readers' sequences (by quarter, within-reader trend)."""
    # A reader's sequence is all their ratings in the study, in the order they opened them.
    readings = per.drop_duplicates("rating")
    place = pd.Series(
        stats.relative_positions(readings["opened_at"], readings["reader"]),
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


def _plots(
    protocol: dict[str, Any],
    ratings: pd.DataFrame,
    forest_rows: list[plots.ForestRow],
    per_reader: list[dict[str, Any]],
) -> dict[str, dict[str, str]]:
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
                "svg": plots.scale_by_stratum_svg(counts, title=title),
            }
    if forest_rows:
        figures["forest"] = {
            "title": FOREST_TITLE,
            "svg": plots.forest_svg(forest_rows, title=FOREST_TITLE),
        }
    if per_reader:
        first = (per_reader[0]["outcome"], per_reader[0]["source"])
        chosen = [r for r in per_reader if (r["outcome"], r["source"]) == first]
        title = f"{per_reader[0]['label']} ({first[1]}) per reader"
        figures["per_reader"] = {
            "title": title,
            "svg": plots.per_reader_svg(pd.DataFrame(chosen), title=title),
        }
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
    """The analysis of one study (already authorised through reader_study_get_for_analyst)."""
    if not 1 <= n_resamples <= MAX_RESAMPLES:
        raise ValueError(f"resamples must be between 1 and {MAX_RESAMPLES}")
    if rule not in stats.CASE_RULES:
        raise ValueError(f"rule must be one of {', '.join(stats.CASE_RULES)}")
    if min_reads < 1 or min_pair_cases < 1:
        raise ValueError("min_reads and min_pair_cases must be at least 1")
    # Cached per study version and parameters: 100k ratings with 2,000 resamples take
    # seconds to compute, and an analyst who reloads or an API script that polls should not
    # pay that again while no rating changed.
    key = _cache_key(
        reader_study,
        n_resamples=n_resamples,
        seed=seed,
        with_plots=with_plots,
        rule=rule,
        min_reads=min_reads,
        min_pair_cases=min_pair_cases,
        prevalences=sorted((prevalences or {}).items()),
    )
    cached = cache.get(key)
    if cached is not None:
        return dict(cached)
    computed = results_from_frames(
        protocol=reader_study.protocol,
        ratings=ratings_frame(reader_study=reader_study),
        spans=spans_frame(reader_study=reader_study),
        n_resamples=n_resamples,
        seed=seed,
        with_plots=with_plots,
        rule=rule,
        min_reads=min_reads,
        min_pair_cases=min_pair_cases,
        prevalences=prevalences,
    )
    cache.set(key, computed, timeout=ANALYSIS_CACHE_SECONDS)
    return computed


ANALYSIS_CACHE_SECONDS = 24 * 3600


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
    payload = json.dumps(
        {"version": study_version(reader_study), "params": params}, sort_keys=True, default=str
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
