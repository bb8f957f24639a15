"""The statistics of a reader study, as pure functions on pandas frames and numpy arrays.

Nothing here touches the database, so the same functions run on the page, in the API, in the
benchmark and on a frame an analyst rebuilt from the exported CSV.

Conventions. A *ratings frame* has one row per reader x case (one rating) with columns
``case``, ``reader``, ``stratum`` and one column per derived outcome holding 1.0, 0.0 or NaN
(NaN: the outcome does not apply to that rating, e.g. the question was not answered).

Libraries do the statistics (statsmodels, scipy, scikit-learn, krippendorff) except two things
no well-kept library offers: the bootstrap that resamples cases and readers together, and
Gwet's AC1 (formula from Gwet 2008 / the irrCAC package, checked against its published values).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import krippendorff
import numpy as np
import pandas as pd
from scipy.stats import binomtest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss
from statsmodels.stats.proportion import proportion_confint

OVERALL = "overall"
CaseRule = Literal["any", "half", "all"]
CASE_RULES: dict[CaseRule, str] = {
    "any": "≥1 reader",
    "half": "≥ half of the panel",
    "all": "all readers",
}


@dataclass(frozen=True)
class BootstrapRate:
    """A rating-level rate with its percentile CI from the case x reader bootstrap."""

    estimate: float
    low: float
    high: float
    n_ratings: int
    n_events: int
    n_cases: int
    n_readers: int
    n_resamples: int
    seed: int
    level: float
    # Resamples in which no rating of this stratum was drawn (all its readers left out);
    # they are left out of the percentiles and reported so nobody is surprised.
    n_degenerate: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class WilsonRate:
    """A proportion of cases with its Wilson score interval."""

    k: int
    n: int
    estimate: float
    low: float
    high: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# Rating level: the bootstrap that resamples cases and readers
# --------------------------------------------------------------------------------------------


def _counts(rng: np.random.Generator, *, size: int, draws: int) -> np.ndarray:
    """How often each of ``size`` units is drawn in each of ``draws`` resamples of ``size``."""
    # int32 draws counted row by row stay in cache: three times faster than one flat bincount.
    picks = rng.integers(0, size, size=(draws, size), dtype=np.int32)
    counts = np.empty((draws, size))
    for row in range(draws):
        counts[row] = np.bincount(picks[row], minlength=size)
    return counts


# Bytes of counts to hold at once while summing drawn cases: small enough to stay in cache.
_COUNTS_BYTES = 1 << 20


def _drawn_sums(picks: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per resample (row of ``picks``), the sum of the ``values`` rows it drew.

    The same as ``counts @ values`` with ``counts[d] = bincount(picks[d])``, but counted a few
    resamples at a time so the counts are still in cache when multiplied: about 40% less CPU
    than counting a whole chunk first (2,000 resamples of 20,000 cases). The counts are whole
    numbers and so is every cell of the design (sums of 0/1 outcomes and of ratings), so the
    products are exact however they are grouped.
    """
    draws, size = picks.shape
    rows = max(1, min(draws, _COUNTS_BYTES // (8 * size)))
    counts = np.empty((rows, size))
    out = np.empty((draws, values.shape[1]))
    for lo in range(0, draws, rows):
        n = min(rows, draws - lo)
        for i in range(n):
            counts[i] = np.bincount(picks[lo + i], minlength=size)
        out[lo : lo + n] = counts[:n] @ values
    return out


@dataclass(frozen=True)
class _Design:
    """Ratings laid out for resampling: per (case, reader) cell sums and counts."""

    cells: np.ndarray  # (cases, 2 * outcomes, readers): outcome sum, ratings it applies to
    blocks: dict[str, slice]  # stratum -> its cases' rows (cases are sorted by stratum)
    case_index: np.ndarray  # per rating: row of its case
    has_strata: bool


def _design(
    frame: pd.DataFrame, *, outcomes: Sequence[str], stratum: str | None, case: str, reader: str
) -> _Design:
    has_strata = stratum is not None and stratum in frame.columns
    strata = frame[stratum] if has_strata else pd.Series(OVERALL, index=frame.index)
    strata_of_case = strata.groupby(frame[case], sort=True).first().astype(str)
    order = strata_of_case.sort_values(kind="stable")
    case_codes = pd.Index(order.index)
    reader_codes = pd.Index(sorted(frame[reader].unique(), key=str))
    ci = case_codes.get_indexer(frame[case])
    ri = reader_codes.get_indexer(frame[reader])
    k = len(outcomes)
    cells = np.zeros((len(case_codes), 2 * k, len(reader_codes)))
    for j, name in enumerate(outcomes):
        values = frame[name].to_numpy(dtype=float)
        applies = ~np.isnan(values)
        np.add.at(cells[:, 2 * j, :], (ci[applies], ri[applies]), values[applies])
        np.add.at(cells[:, 2 * j + 1, :], (ci[applies], ri[applies]), 1.0)
    blocks: dict[str, slice] = {}
    start = 0
    for label, size in order.value_counts(sort=False).sort_index().items():
        blocks[str(label)] = slice(start, start + int(size))
        start += int(size)
    return _Design(cells=cells, blocks=blocks, case_index=ci, has_strata=has_strata)


def _resampled_sums(design: _Design, *, n_resamples: int, seed: int, chunk: int) -> np.ndarray:
    """(resample, stratum, 2 * outcomes) sums of the resampled ratings' outcomes and counts."""
    cells, blocks = design.cells, design.blocks
    n_readers, width = cells.shape[2], cells.shape[1]
    rng = np.random.default_rng(seed)
    sums = np.empty((n_resamples, len(blocks), width))
    for lo in range(0, n_resamples, chunk):
        draws = min(chunk, n_resamples - lo)
        reader_w = _counts(rng, size=n_readers, draws=draws)
        for s, block in enumerate(blocks.values()):
            size = block.stop - block.start
            picks = rng.integers(0, size, size=(draws, size), dtype=np.int32)
            per_reader = _drawn_sums(picks, cells[block].reshape(size, -1)).reshape(
                draws, width, n_readers
            )
            sums[lo : lo + draws, s, :] = np.einsum("dor,dr->do", per_reader, reader_w)
    return sums


def _targets(design: _Design) -> list[tuple[str, list[int]]]:
    targets = [(label, [s]) for s, label in enumerate(design.blocks)]
    if design.has_strata:
        targets.append((OVERALL, list(range(len(design.blocks)))))
    return targets


def bootstrap_replicates(
    ratings: pd.DataFrame,
    *,
    outcomes: Sequence[str],
    stratum: str | None = "stratum",
    case: str = "case",
    reader: str = "reader",
    n_resamples: int = 2000,
    seed: int = 20240501,
    chunk: int = 250,
) -> dict[str, dict[str, np.ndarray]]:
    """Return each outcome's resampled rates per stratum and overall (NaN: nothing drawn).

    Each resample draws cases with replacement within their stratum (strata are fixed by the
    design) and, independently, readers with replacement from the whole panel; a rating counts
    as often as its case times its reader was drawn (the two-way "pigeonhole" bootstrap, Owen
    2007). The arithmetic is matrix products over per-cell sums, so 2,000 resamples of 100k
    ratings take about a second and memory does not grow with the number of resamples.
    """
    if n_resamples < 1:
        raise ValueError("n_resamples must be at least 1")
    design = _design(ratings, outcomes=outcomes, stratum=stratum, case=case, reader=reader)
    sums = _resampled_sums(design, n_resamples=n_resamples, seed=seed, chunk=chunk)
    result: dict[str, dict[str, np.ndarray]] = {}
    for j, name in enumerate(outcomes):
        result[name] = {}
        for label, idx in _targets(design):
            num = sums[:, idx, 2 * j].sum(axis=1)
            den = sums[:, idx, 2 * j + 1].sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                result[name][label] = np.where(den > 0, num / den, np.nan)
    return result


def bootstrap_rates(
    ratings: pd.DataFrame,
    *,
    outcomes: Sequence[str],
    stratum: str | None = "stratum",
    case: str = "case",
    reader: str = "reader",
    n_resamples: int = 2000,
    seed: int = 20240501,
    level: float = 0.95,
    chunk: int = 250,
) -> dict[str, dict[str, BootstrapRate]]:
    """Estimate each outcome's rate per stratum and overall with a case x reader bootstrap CI.

    Percentile intervals from ``bootstrap_replicates``. Returns
    ``{outcome: {stratum or "overall": BootstrapRate}}``.
    """
    replicates = bootstrap_replicates(
        ratings,
        outcomes=outcomes,
        stratum=stratum,
        case=case,
        reader=reader,
        n_resamples=n_resamples,
        seed=seed,
        chunk=chunk,
    )
    design_strata = (
        ratings[stratum].astype(str)
        if stratum is not None and stratum in ratings.columns
        else pd.Series(OVERALL, index=ratings.index)
    )
    alpha = 1.0 - level
    results: dict[str, dict[str, BootstrapRate]] = {}
    for name in outcomes:
        applies = ~ratings[name].isna()
        per: dict[str, BootstrapRate] = {}
        for label, draws in replicates[name].items():
            mask = applies if label == OVERALL else applies & (design_strata == label)
            sub = ratings.loc[mask, [name, case, reader]]
            total = len(sub)
            events = float(sub[name].sum())
            finite = draws[~np.isnan(draws)]
            if finite.size:
                low, high = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
            else:
                low = high = math.nan
            per[label] = BootstrapRate(
                estimate=events / total if total else math.nan,
                low=float(low),
                high=float(high),
                n_ratings=total,
                n_events=round(events),
                n_cases=int(sub[case].nunique()),
                n_readers=int(sub[reader].nunique()),
                n_resamples=n_resamples,
                seed=seed,
                level=level,
                n_degenerate=int(draws.size - finite.size),
            )
        results[name] = per
    return results


# --------------------------------------------------------------------------------------------
# Case level: "≥1 reader", "≥ half of the panel", "all" (Flamingo-CXR), Wilson CIs
# --------------------------------------------------------------------------------------------


def wilson(k: int, n: int, *, level: float = 0.95) -> WilsonRate:
    """Return k/n with its Wilson score interval (statsmodels)."""
    if n == 0:
        return WilsonRate(k=0, n=0, estimate=math.nan, low=math.nan, high=math.nan)
    low, high = proportion_confint(k, n, alpha=1 - level, method="wilson")
    return WilsonRate(k=int(k), n=int(n), estimate=k / n, low=float(low), high=float(high))


def case_outcomes(
    ratings: pd.DataFrame, *, outcome: str, case: str = "case", stratum: str | None = "stratum"
) -> pd.DataFrame:
    """Collapse ratings to one row per case: readers meeting the outcome, panel size, rules."""
    frame = ratings[~ratings[outcome].isna()]
    keys = [case] + ([stratum] if stratum and stratum in frame.columns else [])
    grouped = frame.groupby(keys, sort=True)[outcome].agg(["sum", "count"]).reset_index()
    grouped = grouped.rename(columns={"sum": "positive", "count": "panel"})
    grouped["any"] = grouped["positive"] >= 1
    # "At least half": 1 of 2 counts, 2 of 3 counts (k / n >= 1/2 without float rounding).
    grouped["half"] = 2 * grouped["positive"] >= grouped["panel"]
    grouped["all"] = grouped["positive"] == grouped["panel"]
    return grouped


def case_level_rates(
    ratings: pd.DataFrame,
    *,
    outcome: str,
    case: str = "case",
    stratum: str | None = "stratum",
    level: float = 0.95,
) -> dict[str, dict[CaseRule, WilsonRate]]:
    """Share of cases meeting the outcome under each panel rule, per stratum and overall."""
    per_case = case_outcomes(ratings, outcome=outcome, case=case, stratum=stratum)
    groups: list[tuple[str, pd.DataFrame]] = []
    if stratum and stratum in per_case.columns:
        groups = [(str(label), part) for label, part in per_case.groupby(stratum, sort=True)]
    groups.append((OVERALL, per_case))
    return {
        label: {rule: wilson(int(part[rule].sum()), len(part), level=level) for rule in CASE_RULES}
        for label, part in groups
    }


# --------------------------------------------------------------------------------------------
# Comparisons for single-report protocols
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class McNemarResult:
    """Paired comparison of a binary case outcome between AI and original reports."""

    n_pairs: int
    both: int
    ai_only: int
    original_only: int
    neither: int
    ai_rate: float
    original_rate: float
    statistic: float
    p_value: float
    exact: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def mcnemar_paired(
    ratings: pd.DataFrame,
    *,
    outcome: str,
    case: str = "case",
    source: str = "source",
    ai: str = "ai",
    original: str = "original",
) -> McNemarResult:
    """Compare AI against original on the cases where both reports were rated (McNemar).

    A report meets the outcome when at least one of its readers found it (e.g. "≥1 clinically
    significant error"). The exact binomial test is used while there are fewer than 25
    discordant pairs, the chi-square with continuity correction from then on.
    """
    frame = ratings[~ratings[outcome].isna() & ratings[source].isin([ai, original])]
    per = frame.groupby([case, source])[outcome].max().unstack(source).dropna()
    if ai not in per.columns or original not in per.columns or per.empty:
        return McNemarResult(0, 0, 0, 0, 0, math.nan, math.nan, math.nan, math.nan, True)
    a = per[ai].astype(bool)
    o = per[original].astype(bool)
    both, ai_only = int((a & o).sum()), int((a & ~o).sum())
    original_only, neither = int((~a & o).sum()), int((~a & ~o).sum())
    exact = (ai_only + original_only) < 25
    result = mcnemar([[both, ai_only], [original_only, neither]], exact=exact, correction=True)
    return McNemarResult(
        n_pairs=len(per),
        both=both,
        ai_only=ai_only,
        original_only=original_only,
        neither=neither,
        ai_rate=float(a.mean()),
        original_rate=float(o.mean()),
        statistic=float(result.statistic),
        p_value=float(result.pvalue),
        exact=exact,
    )


# --------------------------------------------------------------------------------------------
# Agreement
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairKappa:
    reader_a: str
    reader_b: str
    n_cases: int
    kappa: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _wide(
    ratings: pd.DataFrame, *, value: str, case: str = "case", reader: str = "reader"
) -> pd.DataFrame:
    """Cases x readers matrix of numeric answers (NaN where a reader did not rate a case).

    Rows and columns sorted; a reader's first answer on a case counts. Built with numpy from
    factorized ids: pandas' pivot of string ids was most of the agreement's cost.
    """
    frame = ratings[~ratings[value].isna()]
    cases, case_ids = pd.factorize(frame[case], sort=True)
    readers, reader_ids = pd.factorize(frame[reader], sort=True)
    cell = cases * len(reader_ids) + readers
    _, first = np.unique(cell, return_index=True)
    wide = np.full((len(case_ids), len(reader_ids)), np.nan)
    wide.flat[cell[first]] = frame[value].to_numpy(dtype=float)[first]
    return pd.DataFrame(wide, index=case_ids, columns=reader_ids)


def cohen_kappa_pairs(
    ratings: pd.DataFrame,
    *,
    value: str,
    categories: Sequence[Any],
    weights: Literal["linear", "quadratic"] | None = None,
    case: str = "case",
    reader: str = "reader",
    min_cases: int = 2,
) -> list[PairKappa]:
    """Cohen's kappa (weighted for ordinal scales) for every pair of readers (scikit-learn).

    ``categories`` in scale order: weights use the distance between positions in that order.
    Pairs that share fewer than ``min_cases`` cases are left out.
    """
    position = {c: i for i, c in enumerate(categories)}
    coded = ratings.assign(__code=ratings[value].map(position))
    wide = _wide(coded, value="__code", case=case, reader=reader)
    pairs: list[PairKappa] = []
    for ra, rb in itertools.combinations(sorted(wide.columns, key=str), 2):
        both = wide[[ra, rb]].dropna()
        if len(both) < min_cases:
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            kappa = cohen_kappa_score(
                both[ra].astype(int),
                both[rb].astype(int),
                labels=list(range(len(categories))),
                weights=weights,
            )
        pairs.append(PairKappa(str(ra), str(rb), len(both), float(kappa)))
    return pairs


def category_counts(
    ratings: pd.DataFrame,
    *,
    value: str,
    categories: Sequence[Any],
    case: str = "case",
) -> np.ndarray:
    """Subjects x categories matrix: how many readers put each case in each category."""
    position = {c: i for i, c in enumerate(categories)}
    codes = ratings[value].map(position)
    frame = ratings[codes.notna()]
    cases, _ = pd.factorize(frame[case], sort=True)
    k = len(categories)
    flat = cases * k + codes[codes.notna()].to_numpy(dtype=int)
    return (
        np.bincount(flat, minlength=(cases.max() + 1 if len(cases) else 0) * k)
        .reshape(-1, k)
        .astype(float)
    )


def fleiss_kappa(counts: np.ndarray) -> tuple[float, int]:
    """Fleiss' kappa over the cases rated by the full panel (statsmodels); (kappa, cases used).

    Fleiss' kappa needs the same number of raters on every subject, so cases with fewer
    ratings than the largest panel are left out, and the number used is reported.
    """
    if counts.size == 0:
        return math.nan, 0
    raters = counts.sum(axis=1)
    full = counts[raters == raters.max()]
    if raters.max() < 2 or len(full) < 2:
        return math.nan, len(full)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(sm_fleiss(full, method="fleiss")), len(full)


def gwet_ac1(counts: np.ndarray) -> float:
    """Gwet's AC1 for any number of raters and missing ratings, from subjects x categories counts.

    Gwet (2008), as in the irrCAC package: observed agreement over subjects with at least two
    ratings; chance agreement from the mean classification probabilities over subjects with at
    least one, pe = sum_k pi_k (1 - pi_k) / (q - 1) for q categories.
    """
    counts = np.asarray(counts, dtype=float)
    q = counts.shape[1] if counts.ndim == 2 else 0
    if q < 2:
        return math.nan
    r = counts.sum(axis=1)
    rated = counts[r >= 1]
    paired = counts[r >= 2]
    if len(paired) == 0:
        return math.nan
    rp = paired.sum(axis=1)
    pa = float(np.mean((paired * (paired - 1)).sum(axis=1) / (rp * (rp - 1))))
    pi = (rated / rated.sum(axis=1, keepdims=True)).mean(axis=0)
    pe = float((pi * (1 - pi)).sum() / (q - 1))
    if pe == 1:
        return math.nan
    return (pa - pe) / (1 - pe)


def krippendorff_alpha(
    ratings: pd.DataFrame,
    *,
    value: str,
    categories: Sequence[Any],
    level: Literal["nominal", "ordinal"] = "nominal",
    case: str = "case",
    reader: str = "reader",
) -> float:
    """Krippendorff's alpha (the ``krippendorff`` package); NaN when it is undefined."""
    position = {c: i for i, c in enumerate(categories)}
    coded = ratings.assign(__code=ratings[value].map(position))
    wide = _wide(coded, value="__code", case=case, reader=reader)
    data = wide.to_numpy(dtype=float).T  # readers x cases
    if data.size == 0 or np.unique(data[~np.isnan(data)]).size < 2:
        return math.nan
    return float(
        krippendorff.alpha(
            reliability_data=data,
            value_domain=list(range(len(categories))),
            level_of_measurement=level,
        )
    )


@dataclass(frozen=True)
class Agreement:
    """Agreement between readers on one question."""

    question: str
    n_cases: int
    n_readers: int
    fleiss_kappa: float
    fleiss_cases: int
    krippendorff_alpha: float
    gwet_ac1: float
    weighting: str
    pairs: list[PairKappa] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def agreement(
    ratings: pd.DataFrame,
    *,
    question: str,
    value: str,
    categories: Sequence[Any],
    is_ordinal: bool,
    case: str = "case",
    reader: str = "reader",
) -> Agreement:
    """Every agreement coefficient the analysis page shows for one question."""
    frame = ratings.loc[ratings[value].isin(categories), [case, reader, value]]
    # Code the answers by scale position once; each coefficient then maps positions to
    # themselves (numbers, not strings: mapping text was a third of the cost).
    positions = list(range(len(categories)))
    codes = pd.Categorical(frame[value], categories=list(categories)).codes
    frame = frame.assign(**{value: codes.astype(np.int64)})
    categories = positions
    counts = category_counts(frame, value=value, categories=categories, case=case)
    kappa, used = fleiss_kappa(counts)
    return Agreement(
        question=question,
        n_cases=int(frame[case].nunique()),
        n_readers=int(frame[reader].nunique()),
        fleiss_kappa=kappa,
        fleiss_cases=used,
        krippendorff_alpha=krippendorff_alpha(
            frame,
            value=value,
            categories=categories,
            level="ordinal" if is_ordinal else "nominal",
            case=case,
            reader=reader,
        ),
        gwet_ac1=gwet_ac1(counts),
        weighting="linear" if is_ordinal else "none",
        pairs=cohen_kappa_pairs(
            frame,
            value=value,
            categories=categories,
            weights="linear" if is_ordinal else None,
            case=case,
            reader=reader,
        ),
    )


# --------------------------------------------------------------------------------------------
# Position bias
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PositionBias:
    """Does the report shown as A win more often than the one shown as B?"""

    a_wins: int
    b_wins: int
    no_preference: int
    share_a: float
    low: float
    high: float
    p_value: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def position_bias(winners: Iterable[str | None], *, level: float = 0.95) -> PositionBias:
    """Test whether side A wins more often than side B (exact binomial test against 1/2).

    ``winners`` holds "A", "B" or None (tie, neither, not a comparison) per rating; ties carry
    no information about position and are counted but left out of the test.
    """
    values = list(winners)
    a = sum(1 for w in values if w == "A")
    b = sum(1 for w in values if w == "B")
    none = len(values) - a - b
    if a + b == 0:
        return PositionBias(a, b, none, math.nan, math.nan, math.nan, math.nan)
    test = binomtest(a, a + b, 0.5)
    ci = wilson(a, a + b, level=level)
    return PositionBias(a, b, none, a / (a + b), ci.low, ci.high, float(test.pvalue))
