"""Analysis across the arms of a multi-arm study (several report sources in one study).

Every number starts from the ratings frame the exports write (``results.ratings_frame``), with
each row's arm and sources added from the study's cases, so the outcome rules are the ones the
rest of the page uses and an analyst can redo everything from the arms export in pandas.

Definitions (stated on the page beside the figures):
- Rate per arm and source: the share of ratings meeting an outcome. Comparative outcomes
  (e.g. "equivalent or better") describe the arm's second source against its first; per-report
  outcomes describe the source whose report the row is about.
- Paired difference between two arms: over the imaging studies read in both, the mean of
  (study's rate in arm X - its rate in arm Y); 95% CI from a clustered bootstrap that
  resamples imaging studies (each with all its reads, in both arms), percentile method.
- Win / tie / loss: from the first comparative question whose options carry an axis; an
  answer favouring the second source is a win for it, the middle option a tie, options off
  the axis (e.g. "neither would result in correct management") are counted apart.
- Bradley-Terry: strengths fitted by the MM algorithm (Hunter 2004) with a tie counted as half
  a win each way and half a win each way added to every compared pair, so a source that wins
  every read still has a finite score; scores are log-strengths centred on their mean, 95% CIs
  from the same clustered bootstrap.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from django.core.cache import cache

from reviewapp.analysis import plots, stats
from reviewapp.analysis.results import ANALYSIS_CACHE_SECONDS, ratings_frame, study_cache_key
from reviewapp.analysis.selectors import outcome_columns, question_options
from reviewapp.studies.models import Case, ReaderStudy

ARM_COLUMNS = [
    "arm",
    "arm_label",
    "first_source_id",
    "first_source_name",
    "second_source_id",
    "second_source_name",
    "source_a_id",
    "source_a_name",
    "source_b_id",
    "source_b_name",
    "row_source_id",
    "row_source_name",
]
BT_PRIOR = 0.5
BT_ITERATIONS = 500


@dataclass(frozen=True)
class ArmInfo:
    position: int
    label: str
    first_id: str
    first_name: str
    second_id: str
    second_name: str


def arms_of_cases(*, reader_study: ReaderStudy) -> dict[str, ArmInfo]:
    """case public id -> its arm and sources (staff only: this is the unblinding key)."""
    cases = Case.objects.filter(reader_study=reader_study, arm__isnull=False).select_related(
        "arm__first_source__model_config", "arm__second_source__model_config"
    )
    found = {}
    for case in cases:
        arm = case.arm
        assert arm is not None
        second = arm.second_source
        found[str(case.public_id)] = ArmInfo(
            position=arm.position,
            label=arm.label,
            first_id=str(arm.first_source.public_id),
            first_name=arm.first_source.label,
            second_id=str(second.public_id) if second else "",
            second_name=second.label if second else "",
        )
    return found


def frame_with_arms(ratings: pd.DataFrame, arms: dict[str, ArmInfo]) -> pd.DataFrame:
    """The ratings frame with each row's arm and the sources of its sides (see ARM_COLUMNS)."""
    frame = ratings[ratings["case"].isin(arms)].copy()
    if frame.empty:
        return frame.assign(**{c: pd.Series(dtype=object) for c in ARM_COLUMNS})
    info = frame["case"].map(arms)
    frame["arm"] = info.map(lambda a: a.position)
    frame["arm_label"] = info.map(lambda a: a.label)
    for part in ("first", "second"):
        frame[f"{part}_source_id"] = info.map(lambda a, p=part: getattr(a, f"{p}_id"))
        frame[f"{part}_source_name"] = info.map(lambda a, p=part: getattr(a, f"{p}_name"))
    # The candidate side shows the arm's second source; the other side its first.
    cand = frame["candidate_side"].fillna("")
    for side, other in (("a", "B"), ("b", "A")):
        shows_second = cand == side.upper()
        shows_first = cand == other
        for key in ("id", "name"):
            frame[f"source_{side}_{key}"] = np.where(
                shows_second,
                frame[f"second_source_{key}"],
                np.where(shows_first, frame[f"first_source_{key}"], ""),
            )
    single = cand == ""
    frame.loc[single, "source_a_id"] = frame.loc[single, "first_source_id"]
    frame.loc[single, "source_a_name"] = frame.loc[single, "first_source_name"]
    row_side = frame["side"].fillna("")
    for key in ("id", "name"):
        # A comparative row is about the arm's second source (against its first); a per-report
        # row about the source of the side it rates.
        frame[f"row_source_{key}"] = np.where(
            row_side == "A",
            frame[f"source_a_{key}"],
            np.where(
                row_side == "B",
                frame[f"source_b_{key}"],
                np.where(single, frame[f"first_source_{key}"], frame[f"second_source_{key}"]),
            ),
        )
    return frame


def _cluster_draws(n_clusters: int, *, n_resamples: int, seed: int) -> np.ndarray:
    """(resamples x clusters) counts of how often each cluster is drawn in each resample."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n_clusters, size=(n_resamples, n_clusters))
    counts = np.zeros((n_resamples, n_clusters))
    for row in range(n_resamples):
        counts[row] = np.bincount(picks[row], minlength=n_clusters)
    return counts


def _interval(values: np.ndarray) -> tuple[float | None, float | None]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None, None
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def _rates(frame: pd.DataFrame, columns: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Each outcome's rate per arm and source, with the headline's interval (cases and
    readers; coverage in docs/statistics/coverage.md)."""
    rows = []
    for column, label in columns:
        known = frame[frame[column].notna()]
        for (arm, source_id), group in known.groupby(["arm", "row_source_id"], sort=True):
            rate = stats.rate_interval(
                group[column].to_numpy(float),
                group["imaging_study"].to_numpy(),
                group["reader"].to_numpy(),
            )
            rows.append(
                {
                    "outcome": column.removeprefix("outcome_"),
                    "outcome_label": label,
                    "arm": int(arm),
                    "arm_label": group["arm_label"].iloc[0],
                    "source_id": source_id,
                    "source_name": group["row_source_name"].iloc[0],
                    "n_ratings": rate.n_ratings,
                    "rate": rate.estimate,
                    "ci_low": rate.low,
                    "ci_high": rate.high,
                    "method": rate.method,
                }
            )
    return rows


def _differences(frame: pd.DataFrame, columns: list[tuple[str, str]], labels: dict[int, str],
                 rule: stats.CaseRule) -> list[dict[str, Any]]:  # fmt: skip
    """Arm y - arm x on the imaging studies read in both, with the AI - original interval
    (``stats.paired_difference``: cases and readers; a study's arm meets the outcome under
    ``rule`` over the readers who read it there)."""
    rows = []
    arms = sorted(labels)
    for column, label in columns:
        known = frame[frame[column].notna()]
        if known.empty:
            continue
        for x, y in itertools.combinations(arms, 2):
            both = known[known["arm"].isin([x, y])]
            difference = stats.paired_difference(
                both[column].to_numpy(float),
                both["imaging_study"].to_numpy(),
                both["reader"].to_numpy(),
                (both["arm"] == y).to_numpy(),
                rule=rule,
            )
            if difference.n_pairs == 0:
                continue
            rows.append(
                {
                    "outcome": column.removeprefix("outcome_"),
                    "outcome_label": label,
                    "arm_x": x,
                    "arm_y": y,
                    "label": f"arm {y} ({labels[y]}) - arm {x} ({labels[x]})",
                    "n_studies": difference.n_pairs,
                    "difference": difference.estimate,
                    "ci_low": difference.low,
                    "ci_high": difference.high,
                    "method": difference.method,
                }
            )
    return rows


def comparative_axis(protocol: dict[str, Any]) -> tuple[str, dict[str, int | None]] | None:
    """(question id, stored value -> axis) of the first comparative question on an axis."""
    for question in protocol.get("questions", []):
        if question.get("scope") != "comparative" or question["id"] == "ai_guess":
            continue
        options = question_options(question)
        if any(o.get("axis") is not None for o in options):
            return question["id"], {o["value"]: o.get("axis") for o in options}
    return None


def bradley_terry(wins: np.ndarray, *, prior: float = BT_PRIOR) -> np.ndarray:
    """Log-strengths (centred) from wins[..., i, j] = times i beat j (ties as halves); leading
    axes are independent fits (the bootstrap fits all its resamples at once)."""
    wins = np.asarray(wins, dtype=float)
    against = np.swapaxes(wins, -1, -2)
    w = wins + prior * ((wins + against) > 0)
    games = w + np.swapaxes(w, -1, -2)
    won = w.sum(axis=-1)
    strength = np.ones(wins.shape[:-1])
    for _ in range(BT_ITERATIONS):
        denom = (games / (strength[..., :, None] + strength[..., None, :])).sum(axis=-1)
        has_games = denom > 0
        updated = np.where(has_games, won / np.where(has_games, denom, 1.0), strength)
        updated /= np.exp(np.log(updated).mean(axis=-1, keepdims=True))
        done = np.allclose(updated, strength, rtol=1e-9, atol=1e-12)
        strength = updated
        if done:
            break
    logs = np.log(strength)
    return logs - logs.mean(axis=-1, keepdims=True)


def _head_to_head(frame: pd.DataFrame, protocol: dict[str, Any], draws: np.ndarray,
                  clusters: pd.Index) -> dict[str, Any] | None:  # fmt: skip
    axis_of = comparative_axis(protocol)
    if axis_of is None:
        return None
    question, axes = axis_of
    rows = frame[(frame["question"] == question) & (frame["second_source_id"] != "")]
    if rows.empty:
        return None
    axis = rows["answer_value"].map(axes)
    rows = rows.assign(_axis=axis)
    names = dict(zip(rows["first_source_id"], rows["first_source_name"], strict=False)) | dict(
        zip(rows["second_source_id"], rows["second_source_name"], strict=False)
    )
    ids = sorted(names, key=lambda i: names[i])
    index = {source: k for k, source in enumerate(ids)}
    matrix: dict[tuple[str, str], dict[str, int]] = {}
    cluster_of = {study: k for k, study in enumerate(clusters)}
    per_cluster = np.zeros((len(clusters), len(ids), len(ids)))
    for first, second, value, study in zip(
        rows["first_source_id"], rows["second_source_id"], rows["_axis"], rows["imaging_study"],
        strict=True,
    ):  # fmt: skip
        cell = matrix.setdefault((second, first), {"wins": 0, "ties": 0, "losses": 0, "off": 0})
        c, i, j = cluster_of[study], index[second], index[first]
        if value is None or pd.isna(value):
            cell["off"] += 1
        elif value > 0:
            cell["wins"] += 1
            per_cluster[c, i, j] += 1
        elif value < 0:
            cell["losses"] += 1
            per_cluster[c, j, i] += 1
        else:
            cell["ties"] += 1
            per_cluster[c, i, j] += 0.5
            per_cluster[c, j, i] += 0.5
    total = per_cluster.sum(axis=0)
    scores = bradley_terry(total)
    flat = per_cluster.reshape(len(clusters), -1)
    boot = bradley_terry((draws @ flat).reshape(len(draws), len(ids), len(ids)))
    return {
        "question": question,
        # wins[i][j]: times names[i] beat names[j] (ties half each way), for the heat map.
        "matrix": {"names": [names[i] for i in ids], "wins": total.tolist()},
        "pairs": [
            {
                "source": second,
                "source_name": names[second],
                "against": first,
                "against_name": names[first],
                **cell,
            }
            for (second, first), cell in sorted(
                matrix.items(), key=lambda kv: (names[kv[0][0]], names[kv[0][1]])
            )
        ],
        "bradley_terry": sorted(
            (
                {
                    "source_id": source,
                    "source_name": names[source],
                    "score": float(scores[k]),
                    "ci_low": _interval(boot[:, k])[0],
                    "ci_high": _interval(boot[:, k])[1],
                }
                for k, source in enumerate(ids)
            ),
            key=lambda row: -row["score"],
        ),
    }


def _ci(row: dict[str, Any], value: str, label: str) -> plots.ForestRow:
    def number(x: float | None) -> float:
        return float("nan") if x is None else float(x)

    return plots.ForestRow(
        label=label,
        estimate=number(row[value]),
        low=number(row["ci_low"]),
        high=number(row["ci_high"]),
    )


def _arms_plots(results: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The arms section's figures: rates per arm and source, the paired differences, and the
    head-to-head win matrix (each only where its table has rows)."""
    figures: dict[str, dict[str, str]] = {}
    if results["rates"]:
        title = "Rate per arm and source (95% CI)"
        rows = [
            _ci(r, "rate", f"{r['outcome_label']} · arm {r['arm']}: {r['source_name']}")
            for r in results["rates"]
        ]
        figures["arm-rates"] = {"title": title, "svg": plots.forest_svg(rows, title=title)}
    if results["differences"]:
        title = "Paired differences between arms (95% CI)"
        rows = [
            _ci(r, "difference", f"{r['outcome_label']} · {r['label']}")
            for r in results["differences"]
        ]
        figures["arm-differences"] = {
            "title": title,
            "svg": plots.difference_forest_svg(rows, title=title),
        }
    head = results["head_to_head"]
    if head and len(head["matrix"]["names"]) > 1:
        title = "Head to head: share of comparisons won, ties counting half (row against column)"
        figures["win-matrix"] = {
            "title": title,
            "svg": plots.win_matrix_svg(
                head["matrix"]["names"], head["matrix"]["wins"], title=title
            ),
        }
    return figures


def arms_results_from_frame(
    *,
    protocol: dict[str, Any],
    frame: pd.DataFrame,
    n_resamples: int = 1000,
    seed: int = 1,
    rule: stats.CaseRule = "any",
    with_plots: bool = False,
) -> dict[str, Any]:
    """The arms section's numbers from a ratings frame with arm columns (``frame_with_arms``),
    with its figures when ``with_plots``."""
    if frame.empty:
        return {"rates": [], "differences": [], "head_to_head": None, "n_ratings": 0}
    columns = [(c, label) for c, label in outcome_columns(protocol) if c in frame]
    clusters = pd.Index(sorted(frame["imaging_study"].unique()))
    draws = _cluster_draws(len(clusters), n_resamples=n_resamples, seed=seed)
    labels = dict(zip(frame["arm"].astype(int), frame["arm_label"], strict=False))
    results = {
        "n_ratings": int(frame["rating"].nunique()),
        "n_studies": len(clusters),
        "n_arms": int(frame["arm"].nunique()),
        "rates": _rates(frame, columns),
        "differences": _differences(frame, columns, labels, rule),
        "head_to_head": _head_to_head(frame, protocol, draws, clusters),
        "resamples": n_resamples,
        "seed": seed,
        "rule": rule,
        "rule_label": stats.CASE_RULES[rule],
    }
    results["plots"] = _arms_plots(results) if with_plots else {}
    return results


def arms_results(
    *,
    reader_study: ReaderStudy,
    n_resamples: int = 1000,
    seed: int = 1,
    rule: stats.CaseRule = "any",
) -> dict[str, Any] | None:
    """The arms section of a study's analysis, or None for a study without arms (already
    authorised through reader_study_get_for_analyst)."""
    arms = arms_of_cases(reader_study=reader_study)
    if not arms:
        return None
    # Cached like the rest of the analysis: per study version, parameters and analysis code.
    key = study_cache_key(
        reader_study, purpose="arms", n_resamples=n_resamples, seed=seed, rule=rule
    )
    cached = cache.get(key)
    if cached is not None:
        return dict(cached)
    frame = frame_with_arms(ratings_frame(reader_study=reader_study), arms)
    results = arms_results_from_frame(
        protocol=reader_study.protocol,
        frame=frame,
        n_resamples=n_resamples,
        seed=seed,
        rule=rule,
        with_plots=True,
    )
    cache.set(key, results, timeout=ANALYSIS_CACHE_SECONDS)
    return results


EXPORT_COLUMNS = [
    "rating",
    "case",
    "imaging_study",
    "stratum",
    "reader",
    "question",
    "side",
    "answer_value",
    "candidate_side",
]


def arms_export_frame(*, reader_study: ReaderStudy) -> pd.DataFrame:
    """The arms export: one row per answer (as the ratings export), its outcome columns, and
    its arm with the source id and name of each side (already authorised)."""
    arms = arms_of_cases(reader_study=reader_study)
    frame = frame_with_arms(ratings_frame(reader_study=reader_study), arms)
    outcomes = [c for c, _ in outcome_columns(reader_study.protocol) if c in frame]
    return frame.reindex(columns=[*EXPORT_COLUMNS, *outcomes, *ARM_COLUMNS])
