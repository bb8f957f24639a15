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
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import krippendorff
import numpy as np
import pandas as pd
from scipy.special import expit, logit
from scipy.stats import binomtest
from scipy.stats import t as student_t
from statsmodels.stats.contingency_tables import mcnemar
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
# Rating level: the interval the page shows (two-way variance components, validated coverage)
# --------------------------------------------------------------------------------------------

IntervalMethod = Literal["variance_components", "case_only", "wilson_cases"]
DifferenceMethod = Literal["paired_variance_components", "paired_case_only", "paired_no_spread"]
INTERVAL_METHODS: dict[str, str] = {
    "variance_components": (
        "case and reader variance components (two-way cluster-robust variance on the logit "
        "scale, Satterthwaite t)"
    ),
    "case_only": (
        "case variation only (cluster-robust variance over cases on the logit scale, t with "
        "cases - 1 df): with one or two readers the readers' own spread cannot be estimated"
    ),
    "wilson_cases": "Wilson score interval on cases (every rating agrees)",
    "paired_variance_components": (
        "AI - original on paired cases: case and reader variance components (two-way "
        "cluster-robust variance, each reader's part from leaving them out of the report's "
        "panel, Satterthwaite t)"
    ),
    "paired_case_only": (
        "AI - original on paired cases: case variation only (variance over paired cases, t "
        "with pairs - 1 df): with one or two readers the readers' own spread cannot be "
        "estimated"
    ),
    "paired_no_spread": (
        "AI - original on paired cases that all differ alike (e.g. no discordant pair): the "
        "estimate plus or minus the Wilson upper bound for no pair differing"
    ),
}
# Fewer readers than this and the reader variance is not estimated (item 2 of issue 24):
# with two readers its estimate has one degree of freedom and the simulated coverage fell
# to 88%, so the page says the interval reflects case variation only.
MIN_READERS_FOR_READER_VARIANCE = 3


@dataclass(frozen=True)
class RateInterval:
    """A rating-level rate with the interval whose coverage the simulation in docs/ shows."""

    estimate: float
    low: float
    high: float
    n_ratings: int
    n_events: int
    n_cases: int
    n_readers: int
    method: IntervalMethod
    df: float
    level: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cluster_variances(
    psi: np.ndarray, case_codes: np.ndarray, reader_codes: np.ndarray
) -> tuple[float, float, float, int, int]:
    """Cluster-robust pieces of var(sum psi): by case, by reader, by rating; cluster counts."""
    # Hashing (factorize) instead of sorting (np.unique): the page calls this dozens of times
    # on up to 100k ratings. Cluster numbering does not change the sums.
    case_idx, cases = pd.factorize(np.asarray(case_codes))
    reader_idx, readers = pd.factorize(np.asarray(reader_codes))
    n_c, n_r = len(cases), len(readers)
    by_case = np.bincount(case_idx, weights=psi, minlength=n_c)
    by_reader = np.bincount(reader_idx, weights=psi, minlength=n_r)
    v_case = float(by_case @ by_case) * (n_c / (n_c - 1) if n_c > 1 else math.inf)
    v_reader = float(by_reader @ by_reader) * (n_r / (n_r - 1) if n_r > 1 else math.inf)
    v_rating = float(psi @ psi)
    return v_case, v_reader, v_rating, n_c, n_r


def _t_quantile(level: float, df: float) -> float:
    return float(student_t.ppf(0.5 + level / 2, df))


def _variance_and_df(
    psi: np.ndarray, case_codes: np.ndarray, reader_codes: np.ndarray
) -> tuple[float, float, IntervalMethod, int, int]:
    """Variance of a linear statistic with influence values ``psi``, its df and method.

    Two-way cluster-robust variance (Cameron, Gelbach & Miller 2011): clustering by case plus
    clustering by reader minus the ratings counted in both. That estimates case variance /
    cases + reader variance / readers + residual / ratings without assuming a crossed design,
    so incomplete panels need no special case. Satterthwaite's df from the case and reader
    pieces gives the t quantile: with few readers and a large reader spread it approaches
    readers - 1, which is what the percentile bootstrap missed (88% with 2 readers). The
    moment estimate can come out below the case piece alone by chance; it is floored at half
    the case piece, the floor the coverage simulation (bench/coverage_sim.py) was run with.
    The df are never fewer than the smaller piece's own (readers - 1 or cases - 1): with the
    rating piece subtracted Satterthwaite's formula can fall below both, and gave 0.8 df
    (an interval from 0.4% to 99%) for a position bias read by 3 readers.
    """
    v_case, v_reader, v_rating, n_c, n_r = _cluster_variances(psi, case_codes, reader_codes)
    if n_r < MIN_READERS_FOR_READER_VARIANCE:
        return v_case, float(max(n_c - 1, 1)), "case_only", n_c, n_r
    variance = max(v_case + v_reader - v_rating, v_case / 2)
    denominator = v_case**2 / (n_c - 1) + v_reader**2 / (n_r - 1)
    df = variance**2 / denominator if denominator > 0 else math.inf
    return variance, float(max(df, min(n_c, n_r) - 1)), "variance_components", n_c, n_r


def _logit_interval(
    estimate: float, variance: float, df: float, level: float
) -> tuple[float, float]:
    q = _t_quantile(level, df)
    half = q * math.sqrt(variance) / (estimate * (1 - estimate))
    centre = float(logit(estimate))
    return float(expit(centre - half)), float(expit(centre + half))


def rate_interval(
    y: np.ndarray,
    case_codes: np.ndarray,
    reader_codes: np.ndarray,
    *,
    stratum_codes: np.ndarray | None = None,
    stratum_weights: dict[Any, float] | None = None,
    level: float = 0.95,
) -> RateInterval:
    """Rate of the 0/1 ratings ``y`` with its interval (see ``_variance_and_df``).

    With ``stratum_weights`` the estimate is the weighted mean of the stratum rates (weights
    normalised over the strata present), e.g. prevalences an analyst enters; each rating's
    influence is then weight x (y - its stratum's rate) / its stratum's ratings.
    An estimate of 0 or 1 (every rating agrees) has no variance to speak of: the interval is
    then Wilson's score interval on the number of cases, never a point.
    """
    y = np.asarray(y, dtype=float)
    n = y.size
    n_cases = len(pd.unique(np.asarray(case_codes)))
    n_readers = len(pd.unique(np.asarray(reader_codes)))
    events = float(y.sum())

    def made(
        estimate: float, low: float, high: float, method: IntervalMethod, df: float
    ) -> RateInterval:
        return RateInterval(
            estimate, low, high, int(n), round(events), n_cases, n_readers, method, df, level
        )

    if n == 0:
        return made(math.nan, math.nan, math.nan, "case_only", math.nan)
    if stratum_weights is not None and stratum_codes is not None:
        labels, idx = np.unique(stratum_codes, return_inverse=True)
        raw = np.array([float(stratum_weights.get(label, 0.0)) for label in labels])
        if raw.sum() <= 0:
            raise ValueError("stratum weights must give a positive weight to a stratum rated")
        w = raw / raw.sum()
        sizes = np.bincount(idx, minlength=len(labels)).astype(float)
        rates = np.bincount(idx, weights=y, minlength=len(labels)) / sizes
        estimate = float(w @ rates)
        psi = w[idx] * (y - rates[idx]) / sizes[idx]
    else:
        estimate = events / n
        psi = (y - estimate) / n
    variance, df, method, n_c, _ = _variance_and_df(psi, case_codes, reader_codes)
    if estimate <= 0 or estimate >= 1 or not variance > 0 or n_c < 2:
        score = wilson(round(estimate * n_cases), n_cases, level=level)
        return made(estimate, score.low, score.high, "wilson_cases", math.nan)
    low, high = _logit_interval(estimate, variance, df, level)
    return made(estimate, low, high, method, df)


WEIGHTED_OVERALL = "overall (prevalence-weighted)"


def rate_intervals(
    ratings: pd.DataFrame,
    *,
    outcomes: Sequence[str],
    stratum: str | None = "stratum",
    case: str = "case",
    reader: str = "reader",
    prevalences: dict[str, float] | None = None,
    level: float = 0.95,
) -> dict[str, dict[str, RateInterval]]:
    """Each outcome's rate per stratum, overall (the sample's stratum mix) and, given
    ``prevalences`` per stratum, overall weighted by them. Ratings where an outcome is NaN do
    not count for it.
    """
    has_strata = stratum is not None and stratum in ratings.columns
    case_codes = pd.factorize(ratings[case])[0]
    reader_codes = pd.factorize(ratings[reader])[0]
    strata = (
        ratings[stratum].astype(str).to_numpy()
        if has_strata
        else np.full(len(ratings), OVERALL, dtype=object)
    )
    labels = sorted(set(strata)) if has_strata else [OVERALL]
    result: dict[str, dict[str, RateInterval]] = {}
    for name in outcomes:
        values = ratings[name].to_numpy(dtype=float)
        applies = ~np.isnan(values)
        per: dict[str, RateInterval] = {}
        for label in labels:
            mask = applies & (strata == label)
            per[label] = rate_interval(
                values[mask], case_codes[mask], reader_codes[mask], level=level
            )
        if has_strata:
            per[OVERALL] = rate_interval(
                values[applies], case_codes[applies], reader_codes[applies], level=level
            )
            if prevalences:
                per[WEIGHTED_OVERALL] = rate_interval(
                    values[applies],
                    case_codes[applies],
                    reader_codes[applies],
                    stratum_codes=strata[applies],
                    stratum_weights=prevalences,
                    level=level,
                )
        result[name] = per
    return result


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
    ratings: pd.DataFrame,
    *,
    outcome: str,
    case: str = "case",
    stratum: str | None = "stratum",
    min_reads: int = 1,
) -> pd.DataFrame:
    """Collapse ratings to one row per case: readers meeting the outcome, panel size, rules.

    The panel of a case is the readers who rated it, not the study's whole panel: a case read
    once meets "all readers" when that one reader says so. ``min_reads`` leaves out cases
    read by fewer readers.
    """
    frame = ratings[~ratings[outcome].isna()]
    keys = [case] + ([stratum] if stratum and stratum in frame.columns else [])
    grouped = frame.groupby(keys, sort=True)[outcome].agg(["sum", "count"]).reset_index()
    grouped = grouped.rename(columns={"sum": "positive", "count": "panel"})
    if min_reads > 1:
        grouped = grouped[grouped["panel"] >= min_reads]
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
    min_reads: int = 1,
) -> dict[str, dict[CaseRule, WilsonRate]]:
    """Share of cases meeting the outcome under each panel rule, per stratum and overall."""
    per_case = case_outcomes(
        ratings, outcome=outcome, case=case, stratum=stratum, min_reads=min_reads
    )
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
    rule: CaseRule = "any"
    min_reads: int = 1
    # AI rate - original rate on the paired cases, with the interval of
    # ``paired_difference`` (cases and readers); its method and t df.
    difference: float = math.nan
    difference_low: float = math.nan
    difference_high: float = math.nan
    difference_method: DifferenceMethod = "paired_case_only"
    difference_df: float = math.nan
    n_readers: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cluster_pieces(
    parts: Sequence[tuple[np.ndarray, np.ndarray]],
    within: np.ndarray,
    cell_case: np.ndarray,
    cell_reader: np.ndarray,
) -> tuple[float, float, float, float, int, int]:
    """Case piece, reader piece and the reader piece's two noises of var(statistic); clusters.

    The statistic's deviation from its mean is split over cells (one reader's reading of
    one case). ``parts`` are the case-level parts, as (per case: this part of its deviation,
    summing to 0 over cases; per cell: the share of it that falls to the cell's reader,
    summing to 1 over the readers who read that part) pairs: one part for a rate, one per
    report side for a paired difference. ``within`` is, per cell, the reader's own part
    beyond the case's (summing to 0 over each case's cells).

    The case piece is the cluster-robust variance over cases, the reader piece the one over
    readers. The noises are what the reader piece holds when readers do not differ: the
    ratings' own noise, m/(m - 1) times the squares of ``within`` (m readers of the case),
    and the case variation, the case parts' (co)variances times what the design spreads of
    them over readers (nothing when every reader reads every case). Reader piece less both
    estimates the readers' own share without bias in the crossed random-effects model; the
    plain two-way formula (case + reader - rating; Cameron, Gelbach & Miller 2011) takes
    1/m of the case variance away as well.
    """
    n_c = parts[0][0].size
    n_r = int(cell_reader.max()) + 1 if cell_reader.size else 0
    case_part = np.sum([part for part, _ in parts], axis=0)
    if n_c < 2:
        return math.inf, 0.0, 0.0, 0.0, n_c, n_r
    v_case = float(case_part @ case_part) * n_c / (n_c - 1)
    if n_r < 2:
        return v_case, 0.0, 0.0, 0.0, n_c, n_r
    shared = np.sum([part[cell_case] * share for part, share in parts], axis=0)
    by_reader = np.bincount(cell_reader, weights=shared + within, minlength=n_r)
    v_reader = float(by_reader @ by_reader) * n_r / (n_r - 1)
    m = np.bincount(cell_case, minlength=n_c).astype(float)[cell_case]
    several = m > 1
    noise = float((within[several] ** 2 * m[several] / (m[several] - 1)).sum())
    reach = [np.bincount(cell_reader, weights=share, minlength=n_r) for _, share in parts]
    spread = 0.0
    for (x, a), q in zip(parts, reach, strict=True):
        for (z, b), r in zip(parts, reach, strict=True):
            design = float(a @ b - (q @ r) / n_c)
            spread += float(x @ z) / (n_c - 1) * design
    return v_case, v_reader, noise, max(spread, 0.0) * n_r / (n_r - 1), n_c, n_r


def _paired_variance(
    v_case: float,
    v_reader: float,
    rating_noise: float,
    case_noise: float,
    n_c: int,
    n_r: int,
) -> tuple[float, float, IntervalMethod]:
    """Variance, t df and method of a paired difference from ``_cluster_pieces``.

    With fewer than ``MIN_READERS_FOR_READER_VARIANCE`` readers only the case piece is used
    (t with cases - 1 df). Otherwise, when the reader piece exceeds its noises, the excess is
    added and Satterthwaite's df come from the case piece (cases - 1 df) and the reader
    piece less the case variation in it (readers - 1 df; the case variation is known from
    the cases): with a few readers their spread is itself uncertain, and a t on the excess
    alone covered 89-92% when readers differ in how they see the AI reports. When it does
    not exceed the noises, readers show no spread beyond the ratings' own and the case piece
    stands alone with cases - 1 df; Satterthwaite's df on the noise would have widened the
    interval for nothing (97-99% when readers do not differ).
    """
    if n_r < MIN_READERS_FOR_READER_VARIANCE:
        return v_case, float(max(n_c - 1, 1)), "case_only"
    excess = v_reader - rating_noise - case_noise
    if excess <= 0:
        return v_case, float(max(n_c - 1, 1)), "variance_components"
    variance = v_case + excess
    denominator = v_case**2 / (n_c - 1) + (v_reader - case_noise) ** 2 / (n_r - 1)
    return variance, float(variance**2 / denominator), "variance_components"


@dataclass(frozen=True)
class PairedDifference:
    """AI - original share of paired cases meeting the outcome under a rule, with its CI."""

    n_pairs: int
    both: int
    ai_only: int
    original_only: int
    neither: int
    estimate: float
    low: float
    high: float
    method: DifferenceMethod
    df: float
    n_readers: int
    level: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _meets(positive: np.ndarray, panel: np.ndarray, rule: CaseRule) -> np.ndarray:
    """Whether a report with ``positive`` of ``panel`` readers saying so meets ``rule``."""
    if rule == "any":
        return positive >= 1
    if rule == "half":
        # "At least half": 1 of 2 counts, 2 of 3 counts (without float rounding).
        return 2 * positive >= panel
    return positive == panel


def paired_difference(
    y: np.ndarray,
    case_codes: np.ndarray,
    reader_codes: np.ndarray,
    is_ai: np.ndarray,
    *,
    rule: CaseRule = "any",
    level: float = 0.95,
) -> PairedDifference:
    """AI - original share of cases meeting the outcome, on the cases where both reports
    were read, with an interval that accounts for cases and readers.

    ``y`` holds each rating's 0/1 outcome, ``is_ai`` whether it rates the case's AI report
    (else its original). A report meets the outcome when ``rule`` holds over the readers who
    read it. The difference is the mean over paired cases of d = met(AI) - met(original).

    Its variance has two pieces (``_cluster_pieces``): cases, and readers, since the same
    readers read many cases and a lenient or severe reader moves every case they read. d
    depends on a case's readers through the rule, so each reader's part in it comes from
    leaving that reader out of the report's panel (the jackknife influence: (m - 1) x (mean
    of the leave-one-out rule - leave-this-reader-out rule) / m with m readers of the
    report; exactly the reader's deviation from the panel mean when the rule is a mean).
    ``_paired_variance`` combines them into a t interval on the difference scale; with one
    or two readers only case variation is accounted for. Chosen by simulation over readers,
    cases and reader spread, with and without a reader x source interaction
    (docs/statistics/coverage.md): the bootstrap of pairs it replaced ignored readers and
    covered 84-95%.

    When every pair has the same difference (e.g. no discordant pair) and readers show no
    spread, the variance is 0; the interval is then the estimate plus or minus the Wilson
    upper bound for "no pair differs" among the pairs, within [-1, 1], never a point.
    """
    y = np.asarray(y, dtype=float)
    is_ai = np.asarray(is_ai, dtype=bool)
    case_idx, _ = pd.factorize(np.asarray(case_codes))
    reader_idx, _ = pd.factorize(np.asarray(reader_codes))
    case_idx = case_idx.astype(np.int64)
    n_all = int(case_idx.max()) + 1 if case_idx.size else 0
    report = 2 * case_idx + is_ai
    positive = np.bincount(report, weights=y, minlength=2 * n_all)
    panel = np.bincount(report, minlength=2 * n_all).astype(float)
    paired = (panel[0::2] > 0) & (panel[1::2] > 0)
    n = int(paired.sum())
    if n == 0:
        return PairedDifference(
            0, 0, 0, 0, 0, math.nan, math.nan, math.nan, "paired_case_only", math.nan, 0, level
        )
    met = _meets(positive, panel, rule)
    ai_met, original_met = met[1::2][paired], met[0::2][paired]
    d = ai_met.astype(float) - original_met
    estimate = float(d.mean())
    counts = (
        int((ai_met & original_met).sum()),
        int((ai_met & ~original_met).sum()),
        int((~ai_met & original_met).sum()),
        int((~ai_met & ~original_met).sum()),
    )
    keep = paired[case_idx]
    # Each rating's reader part of its report's outcome (0 when it is the report's only read).
    m = panel[report]
    leave_out = _meets(positive[report] - y, m - 1, rule).astype(float)
    mean_leave_out = np.bincount(report, weights=leave_out, minlength=2 * n_all) / np.maximum(
        panel, 1
    )
    influence = np.where(
        m > 1, (m - 1) / np.maximum(m, 1) * (mean_leave_out[report] - leave_out), 0.0
    )
    signed = np.where(is_ai, influence, -influence)[keep] / n
    # Renumber the paired cases 0..n-1 and the readers who read them.
    case_new = np.cumsum(paired) - 1
    rating_case = case_new[case_idx[keep]]
    rating_reader, readers = pd.factorize(reader_idx[keep])
    n_r = len(readers)
    cell_of, cells = pd.factorize(rating_case * n_r + rating_reader)
    cells = np.asarray(cells, dtype=np.int64)
    within = np.bincount(cell_of, weights=signed, minlength=cells.size)
    # Each report's deviation falls to its own readers, with its sign in the difference: a
    # reader who reads only AI reports of some cases and only originals of others moves
    # the difference by their leniency on the one less the other.
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    for side, side_met, sign in ((True, ai_met, 1.0), (False, original_met, -1.0)):
        share = np.bincount(
            cell_of,
            weights=(1.0 / panel[report])[keep] * (is_ai[keep] == side),
            minlength=cells.size,
        )
        parts.append((sign * (side_met - side_met.mean()) / n, share))
    pieces = _cluster_pieces(parts, within, cells // n_r, cells % n_r)
    variance, df, method = _paired_variance(*pieces)
    kind: DifferenceMethod = (
        "paired_variance_components" if method == "variance_components" else "paired_case_only"
    )
    if not variance > 0 or n < 2:
        half = wilson(0, n, level=level).high
        low, high = max(estimate - half, -1.0), min(estimate + half, 1.0)
        return PairedDifference(
            n, *counts, estimate, low, high, "paired_no_spread", math.nan, n_r, level
        )
    half = _t_quantile(level, df) * math.sqrt(variance)
    return PairedDifference(
        n,
        *counts,
        estimate,
        max(estimate - half, -1.0),
        min(estimate + half, 1.0),
        kind,
        df,
        n_r,
        level,
    )


def mcnemar_paired(
    ratings: pd.DataFrame,
    *,
    outcome: str,
    case: str = "case",
    source: str = "source",
    reader: str = "reader",
    ai: str = "ai",
    original: str = "original",
    rule: CaseRule = "any",
    min_reads: int = 1,
    level: float = 0.95,
) -> McNemarResult:
    """Compare AI against original on the cases where both reports were rated (McNemar).

    A report meets the outcome under ``rule`` applied to the readers who rated it: "any"
    (≥1 reader, e.g. "≥1 clinically significant error"), "half" (≥ half of them) or "all".
    The choice changes the answer (an audit saw p = 0.039 / 0.092 / 0.344 on one study), so
    it is a parameter the page states. Reports read by fewer than ``min_reads`` readers and
    their pairs are left out. The exact binomial test is used while there are fewer than 25
    discordant pairs, the chi-square with continuity correction from then on. The difference
    and its interval are ``paired_difference``'s.
    """
    if rule not in CASE_RULES:
        raise ValueError(f"rule must be one of {', '.join(CASE_RULES)}")
    frame = ratings[~ratings[outcome].isna() & ratings[source].isin([ai, original])]
    if min_reads > 1:
        reads = frame.groupby([case, source])[outcome].transform("count")
        frame = frame[reads >= min_reads]
    found = paired_difference(
        frame[outcome].to_numpy(dtype=float),
        frame[case].to_numpy(),
        frame[reader].to_numpy(),
        (frame[source] == ai).to_numpy(),
        rule=rule,
        level=level,
    )
    if not found.n_pairs:
        return McNemarResult(
            0, 0, 0, 0, 0, math.nan, math.nan, math.nan, math.nan, True, rule, min_reads
        )
    both, ai_only, original_only, neither = (
        found.both,
        found.ai_only,
        found.original_only,
        found.neither,
    )
    exact = (ai_only + original_only) < 25
    result = mcnemar([[both, ai_only], [original_only, neither]], exact=exact, correction=True)
    return McNemarResult(
        n_pairs=found.n_pairs,
        both=both,
        ai_only=ai_only,
        original_only=original_only,
        neither=neither,
        ai_rate=(both + ai_only) / found.n_pairs,
        original_rate=(both + original_only) / found.n_pairs,
        statistic=float(result.statistic),
        p_value=float(result.pvalue),
        exact=exact,
        rule=rule,
        min_reads=min_reads,
        difference=found.estimate,
        difference_low=found.low,
        difference_high=found.high,
        difference_method=found.method,
        difference_df=found.df,
        n_readers=found.n_readers,
    )


# --------------------------------------------------------------------------------------------
# Agreement
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Coefficient:
    """An agreement coefficient with the percentile CI of the bootstrap over cases."""

    estimate: float
    low: float = math.nan
    high: float = math.nan

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PairKappa:
    """Cohen's kappa of two readers on the cases both rated (weighted on ordinal scales)."""

    reader_a: str
    reader_b: str
    n_cases: int
    kappa: float
    low: float = math.nan
    high: float = math.nan
    # Ordinal scales: the quadratic-weighted kappa beside the linear one in ``kappa``.
    quadratic: float = math.nan
    quadratic_low: float = math.nan
    quadratic_high: float = math.nan
    # Fewer shared cases than the minimum: no kappa is shown, only that there are too few.
    too_few_cases: bool = False

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


Weights = Literal["linear", "quadratic"] | None


def _agreement_weights(q: int, weights: Weights) -> np.ndarray:
    """Agreement weights between scale positions (1 on the diagonal), as irrCAC defines them."""
    if weights is None or q < 2:
        return np.eye(q)
    distance = np.abs(np.subtract.outer(np.arange(q), np.arange(q))) / (q - 1)
    return 1 - (distance if weights == "linear" else distance**2)


def _cohen_from_tables(tables: np.ndarray, weights: Weights) -> np.ndarray:
    """Cohen's kappa of (..., q, q) confusion tables of counts; NaN where undefined."""
    q = tables.shape[-1]
    w = _agreement_weights(q, weights)
    total = tables.sum(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = tables / total[..., None, None]
        observed = (p * w).sum(axis=(-2, -1))
        rows, cols = p.sum(axis=-1), p.sum(axis=-2)
        expected = np.einsum("...i,ij,...j->...", rows, w, cols)
        kappa = (observed - expected) / (1 - expected)
    return np.where(np.isclose(expected, 1), np.nan, kappa)


def _percentile(values: np.ndarray, level: float) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan, math.nan
    alpha = 1 - level
    low, high = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def cohen_kappa_pairs(
    ratings: pd.DataFrame,
    *,
    value: str,
    categories: Sequence[Any],
    weights: Weights = None,
    case: str = "case",
    reader: str = "reader",
    min_cases: int = 2,
    n_resamples: int = 0,
    seed: int = 20240501,
    level: float = 0.95,
) -> list[PairKappa]:
    """Cohen's kappa (weighted for ordinal scales) for every pair of readers.

    ``categories`` in scale order: weights use the distance between positions in that order
    (with ``weights`` set, the quadratic-weighted kappa comes too). A pair sharing fewer than
    ``min_cases`` cases is listed as having too few. With ``n_resamples``, a percentile CI
    from resampling the pair's shared cases: a resample of cases is a multinomial draw over
    the pair's confusion table, the same distribution at the cost of q^2 numbers.
    """
    position = {c: i for i, c in enumerate(categories)}
    q = len(categories)
    coded = ratings.assign(__code=ratings[value].map(position))
    wide = _wide(coded, value="__code", case=case, reader=reader)
    columns = {name: wide[name].to_numpy() for name in wide.columns}
    rng = np.random.default_rng(seed)
    pairs: list[PairKappa] = []
    for ra, rb in itertools.combinations(sorted(wide.columns, key=str), 2):
        shared = ~(np.isnan(columns[ra]) | np.isnan(columns[rb]))
        both = np.stack([columns[ra][shared], columns[rb][shared]], axis=1).astype(int)
        n = len(both)
        if n < min_cases:
            pairs.append(PairKappa(str(ra), str(rb), n, math.nan, too_few_cases=True))
            continue
        table = np.bincount(both[:, 0] * q + both[:, 1], minlength=q * q).reshape(q, q)
        kappa = float(_cohen_from_tables(table.astype(float), weights))
        quadratic = (
            float(_cohen_from_tables(table.astype(float), "quadratic")) if weights else math.nan
        )
        low = high = q_low = q_high = math.nan
        if n_resamples:
            draws = rng.multinomial(n, table.ravel() / n, n_resamples).reshape(-1, q, q)
            low, high = _percentile(_cohen_from_tables(draws.astype(float), weights), level)
            if weights:
                q_low, q_high = _percentile(
                    _cohen_from_tables(draws.astype(float), "quadratic"), level
                )
        pairs.append(PairKappa(str(ra), str(rb), n, kappa, low, high, quadratic, q_low, q_high))
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


# Every coefficient below is a function of sums over cases of per-case statistics of the
# case's category counts. Cases with the same counts contribute the same, so the bootstrap
# over cases draws how often each distinct count vector is picked (a multinomial draw over a
# few hundred kinds of case instead of thousands of cases) and sums the kinds' statistics:
# the same resampling distribution, cheap enough for 2,000 resamples of 20,000 cases.


@dataclass(frozen=True)
class _CaseKinds:
    counts: np.ndarray  # kinds x q category counts
    freq: np.ndarray  # how many cases of each kind
    q: int


def _case_kinds(counts: np.ndarray) -> _CaseKinds:
    counts = np.asarray(counts, dtype=float)
    q = counts.shape[1] if counts.ndim == 2 else 0
    if counts.size == 0:
        return _CaseKinds(np.zeros((0, q)), np.zeros(0), q)
    # Each count vector as one integer in base (largest count + 1): a 1-D unique is ten times
    # faster than np.unique(axis=0) on 20,000 cases.
    base = int(counts.max()) + 1
    if q * math.log2(base) < 62:
        keys = counts.astype(np.int64) @ (base ** np.arange(q, dtype=np.int64))
        _, first, freq = np.unique(keys, return_index=True, return_counts=True)
        return _CaseKinds(counts[first], freq.astype(float), q)
    kinds, freq = np.unique(counts, axis=0, return_counts=True)
    return _CaseKinds(kinds, freq.astype(float), q)


def _kind_statistics(counts: np.ndarray, q: int) -> dict[str, np.ndarray]:
    r = counts.sum(axis=1)
    two, one = r >= 2, r >= 1
    with np.errstate(divide="ignore", invalid="ignore"):
        pairs = np.where(two, r * (r - 1), np.inf)
        agree = {
            w: np.where(two, (counts * (counts @ _agreement_weights(q, w) - 1)).sum(1) / pairs, 0)
            for w in (None, "linear", "quadratic")
        }
        share = np.where(one[:, None], counts / np.where(one, r, 1)[:, None], 0)
        coincidence = np.where(
            two[:, None, None],
            (counts[:, :, None] * counts[:, None, :] - np.eye(q) * counts[:, :, None])
            / np.where(two, r - 1, 1)[:, None, None],
            0,
        )
    return {
        "two": two.astype(float),
        "one": one.astype(float),
        "agree": np.stack([agree[None], agree["linear"], agree["quadratic"]], axis=1),
        "share": share,
        "coincidence": coincidence.reshape(len(counts), q * q),
    }


def _coefficients(sums: dict[str, np.ndarray], q: int, ordinal: bool) -> dict[str, np.ndarray]:
    """Fleiss (generalised, irrCAC), its weighted forms, AC1 and alpha from summed statistics."""
    with np.errstate(divide="ignore", invalid="ignore"):
        pa = sums["agree"] / sums["two"][:, None]
        pi = sums["share"] / sums["one"][:, None]
        out: dict[str, np.ndarray] = {}
        kinds: tuple[tuple[str, Weights], ...] = (
            ("fleiss", None),
            ("fleiss_linear", "linear"),
            ("fleiss_quadratic", "quadratic"),
        )
        for j, (name, w) in enumerate(kinds):
            pe = np.einsum("ri,ij,rj->r", pi, _agreement_weights(q, w), pi)
            out[name] = np.where(np.isclose(pe, 1), np.nan, (pa[:, j] - pe) / (1 - pe))
        pe_ac1 = (pi * (1 - pi)).sum(axis=1) / (q - 1)
        out["ac1"] = np.where(np.isclose(pe_ac1, 1), np.nan, (pa[:, 0] - pe_ac1) / (1 - pe_ac1))
        o = sums["coincidence"].reshape(-1, q, q)
        n_c = o.sum(axis=2)
        n = n_c.sum(axis=1)
        if ordinal:
            # Krippendorff's ordinal metric: (sum of n_g from c to k - (n_c + n_k) / 2)^2.
            cum = np.cumsum(n_c, axis=1)
            before = cum - n_c
            lo, hi = np.minimum.outer(range(q), range(q)), np.maximum.outer(range(q), range(q))
            between = cum[:, hi] - before[:, lo]
            delta = (between - (n_c[:, :, None] + n_c[:, None, :]) / 2) ** 2
        else:
            delta = np.broadcast_to(1 - np.eye(q), o.shape)
        observed = (o * delta).sum(axis=(1, 2))
        expected = (n_c[:, :, None] * n_c[:, None, :] * delta).sum(axis=(1, 2))
        out["alpha"] = np.where(expected > 0, 1 - (n - 1) * observed / expected, np.nan)
    return out


def agreement_coefficients(
    counts: np.ndarray,
    *,
    ordinal: bool = False,
    n_resamples: int = 0,
    seed: int = 20240501,
    level: float = 0.95,
) -> dict[str, Coefficient]:
    """Fleiss' kappa (irrCAC's generalisation to incomplete designs; with weights for ordinal
    scales), Gwet's AC1 and Krippendorff's alpha from subjects x categories counts, each with
    a percentile CI from ``n_resamples`` resamples of the cases (none when 0).

    Fleiss as irrCAC computes it with missing ratings: observed agreement over cases with at
    least two ratings, chance agreement from the mean classification shares of cases with at
    least one, so every case counts and no full panel is needed (0.76117 on Krippendorff's
    4-rater example). AC1 as Gwet (2008). Alpha from the coincidence matrix (Krippendorff
    2011), ordinal metric when ``ordinal``.
    """
    kinds = _case_kinds(counts)
    q = kinds.q
    names = ("fleiss", "fleiss_linear", "fleiss_quadratic", "ac1", "alpha")
    if q < 2 or kinds.freq.sum() == 0:
        return {name: Coefficient(math.nan) for name in names}
    stats_ = _kind_statistics(kinds.counts, q)
    point = _coefficients({k: kinds.freq[None, :] @ v for k, v in stats_.items()}, q, ordinal)
    draws: dict[str, np.ndarray] = {}
    if n_resamples:
        n = int(kinds.freq.sum())
        weights = (
            np.random.default_rng(seed).multinomial(n, kinds.freq / n, n_resamples).astype(float)
        )
        draws = _coefficients({k: weights @ v for k, v in stats_.items()}, q, ordinal)
    result = {}
    for name in names:
        estimate = float(point[name][0])
        low, high = _percentile(draws[name], level) if draws else (math.nan, math.nan)
        if math.isnan(estimate):
            low = high = math.nan
        result[name] = Coefficient(estimate, low, high)
    return result


def fleiss_kappa(counts: np.ndarray) -> tuple[float, int]:
    """Fleiss' kappa with irrCAC's generalisation to missing ratings; (kappa, cases used).

    Equal to Fleiss (1971) when every case has the same number of ratings; with an
    incomplete panel it uses every case with at least two ratings, whose number is returned.
    """
    counts = np.asarray(counts, dtype=float)
    if counts.size == 0:
        return math.nan, 0
    used = int((counts.sum(axis=1) >= 2).sum())
    if used < 2:
        return math.nan, used
    return agreement_coefficients(counts)["fleiss"].estimate, used


def gwet_ac1(counts: np.ndarray) -> float:
    """Gwet's AC1 for any number of raters and missing ratings, from subjects x categories counts.

    Gwet (2008), as in the irrCAC package: observed agreement over subjects with at least two
    ratings; chance agreement from the mean classification probabilities over subjects with at
    least one, pe = sum_k pi_k (1 - pi_k) / (q - 1) for q categories.
    """
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2 or counts.shape[1] < 2 or not (counts.sum(axis=1) >= 2).any():
        return math.nan
    return agreement_coefficients(counts)["ac1"].estimate


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
class OffScale:
    """Options outside the scale's order (Med-Gemini's "X: neither correct"), reported apart:
    how often they were chosen, and agreement on choosing them (nominal, chosen or not)."""

    options: list[str]
    rate: RateInterval
    fleiss_kappa: Coefficient
    krippendorff_alpha: Coefficient
    gwet_ac1: Coefficient

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    # Which options entered the coefficients above, in scale order, and how alpha and the
    # weighted kappas treat them ("ordinal": by position in that order; "nominal": as labels).
    scale: str = "nominal"
    options: list[str] = field(default_factory=list)
    ci: dict[str, Coefficient] = field(default_factory=dict)
    fleiss_linear: float = math.nan
    fleiss_quadratic: float = math.nan
    # Nominal alpha on every option, off-scale ones included: what the page used to show.
    nominal_alpha_all_options: float = math.nan
    off_scale: OffScale | None = None
    min_pair_cases: int = 10
    n_resamples: int = 0
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_MIN_PAIR_CASES = 10


def agreement(
    ratings: pd.DataFrame,
    *,
    question: str,
    value: str,
    categories: Sequence[Any],
    is_ordinal: bool,
    off_scale: Sequence[Any] = (),
    case: str = "case",
    reader: str = "reader",
    min_pair_cases: int = DEFAULT_MIN_PAIR_CASES,
    n_resamples: int = 0,
    seed: int = 20240501,
    level: float = 0.95,
) -> Agreement:
    """Every agreement coefficient the analysis page shows for one question.

    ``categories`` are the options in scale order; ``off_scale`` the options outside that
    order. On an ordinal scale the coefficients use the ordered options only (a rating of an
    off-scale option counts as no rating of the scale) and the off-scale options are reported
    apart: their rate and nominal agreement on choosing them.
    """
    everything = [*categories, *off_scale]
    frame = ratings.loc[ratings[value].isin(everything), [case, reader, value]]
    values = np.asarray(frame[value], dtype=object)
    codes = pd.Categorical(values, categories=everything).codes.astype(np.int64)
    frame = frame.assign(**{value: codes})
    on_scale = frame[frame[value] < len(categories)]
    positions = list(range(len(categories)))
    counts = category_counts(on_scale, value=value, categories=positions, case=case)
    coefficients = agreement_coefficients(
        counts, ordinal=is_ordinal, n_resamples=n_resamples, seed=seed, level=level
    )
    all_counts = category_counts(frame, value=value, categories=range(len(everything)), case=case)
    nominal_all = agreement_coefficients(all_counts)["alpha"].estimate
    off: OffScale | None = None
    if off_scale:
        chosen = (frame[value] >= len(categories)).astype(float).to_numpy()
        binary = category_counts(
            frame.assign(__off=chosen.astype(int)), value="__off", categories=[0, 1], case=case
        )
        if 0 < chosen.sum() < len(chosen):
            apart = agreement_coefficients(binary, n_resamples=n_resamples, seed=seed, level=level)
        else:
            # Chosen never (or always): every reader "agrees" by default. Kappa and alpha are
            # undefined there, and AC1's 1.0 would read as a finding; none is reported.
            apart = dict.fromkeys(("fleiss", "alpha", "ac1"), Coefficient(math.nan))
        off = OffScale(
            options=[str(o) for o in off_scale],
            rate=rate_interval(
                chosen, pd.factorize(frame[case])[0], pd.factorize(frame[reader])[0], level=level
            ),
            fleiss_kappa=apart["fleiss"],
            krippendorff_alpha=apart["alpha"],
            gwet_ac1=apart["ac1"],
        )
    used = int((counts.sum(axis=1) >= 2).sum()) if counts.size else 0
    weights: Weights = "linear" if is_ordinal else None
    return Agreement(
        question=question,
        n_cases=int(on_scale[case].nunique()),
        n_readers=int(on_scale[reader].nunique()),
        fleiss_kappa=coefficients["fleiss"].estimate if used >= 2 else math.nan,
        fleiss_cases=used,
        krippendorff_alpha=coefficients["alpha"].estimate,
        gwet_ac1=coefficients["ac1"].estimate,
        weighting="linear and quadratic" if is_ordinal else "none",
        pairs=cohen_kappa_pairs(
            on_scale,
            value=value,
            categories=positions,
            weights=weights,
            case=case,
            reader=reader,
            min_cases=min_pair_cases,
            n_resamples=n_resamples,
            seed=seed,
            level=level,
        ),
        scale="ordinal" if is_ordinal else "nominal",
        options=[str(c) for c in categories],
        ci=coefficients,
        fleiss_linear=coefficients["fleiss_linear"].estimate if is_ordinal else math.nan,
        fleiss_quadratic=coefficients["fleiss_quadratic"].estimate if is_ordinal else math.nan,
        nominal_alpha_all_options=nominal_all,
        off_scale=off,
        min_pair_cases=min_pair_cases,
        n_resamples=n_resamples,
        seed=seed,
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
    # "readers": the two-way cluster-robust t test (readers and cases); "binomial": the exact
    # binomial test that treats every rating as independent (only without reader ids).
    method: str = "binomial"
    df: float = math.nan
    n_readers: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def position_bias(
    winners: Iterable[str | None],
    *,
    readers: Sequence[Any] | np.ndarray | None = None,
    cases: Sequence[Any] | np.ndarray | None = None,
    level: float = 0.95,
) -> PositionBias:
    """Test whether side A wins more often than side B.

    ``winners`` holds "A", "B" or None (tie, neither, not a comparison) per rating; ties carry
    no information about position and are counted but left out of the test. Given each
    rating's reader and case, the test accounts for readers: individual readers may lean to a
    side while the panel as a whole does not, and a binomial test over ratings then rejected
    37% of the time at the 5% level. The share of A wins gets the same two-way variance as
    the rates (cases and readers), and t = (share - 1/2) / SE with Satterthwaite df; with one
    or two readers only case variation is accounted for. Without readers: the exact binomial
    test against 1/2.
    """
    values = np.asarray(list(winners), dtype=object)
    is_a, is_b = values == "A", values == "B"
    a, b = int(is_a.sum()), int(is_b.sum())
    none = len(values) - a - b
    if a + b == 0:
        return PositionBias(a, b, none, math.nan, math.nan, math.nan, math.nan)
    if readers is None or cases is None:
        test = binomtest(a, a + b, 0.5)
        ci = wilson(a, a + b, level=level)
        return PositionBias(a, b, none, a / (a + b), ci.low, ci.high, float(test.pvalue))
    decisive = is_a | is_b
    y = is_a[decisive].astype(float)
    reader_codes = pd.factorize(np.asarray(readers)[decisive])[0]
    case_codes = pd.factorize(np.asarray(cases)[decisive])[0]
    share = float(y.mean())
    interval = rate_interval(y, case_codes, reader_codes, level=level)
    variance, df, method, _, n_readers = _variance_and_df(
        (y - share) / y.size, case_codes, reader_codes
    )
    if variance > 0:
        p_value = float(2 * student_t.sf(abs(share - 0.5) / math.sqrt(variance), df))
    else:
        p_value = float(binomtest(a, a + b, 0.5).pvalue)
    return PositionBias(
        a,
        b,
        none,
        share,
        interval.low,
        interval.high,
        p_value,
        method="readers" if method == "variance_components" else "case_only",
        df=df,
        n_readers=n_readers,
    )


# --------------------------------------------------------------------------------------------
# Reading position: learning or fatigue along each reader's sequence (issue 24, item 9)
# --------------------------------------------------------------------------------------------

POSITION_BINS = ("1st quarter", "2nd quarter", "3rd quarter", "4th quarter")


@dataclass(frozen=True)
class ReadingPosition:
    """An outcome along the readers' sequences: by quarter, and its within-reader trend."""

    quarters: dict[str, RateInterval]
    # Change in the rate from a reader's first reading to their last (percentage points as a
    # share), from the within-reader linear trend; CI and p from the two-way variance.
    trend: float
    low: float
    high: float
    p_value: float
    df: float
    method: IntervalMethod
    n_ratings: int
    n_readers: int
    # reader -> (ratings, rate in the first half of their sequence, in the second half)
    per_reader: dict[str, tuple[int, float, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def relative_positions(order: pd.Series, readers: pd.Series) -> np.ndarray:
    """Each rating's place in its reader's sequence as 0 (first) .. 1 (last).

    ``order`` sorts a reader's ratings in the order they were read (e.g. when each was
    opened); ties keep the frame's order. Relative places let readers with different numbers
    of readings share one axis; a reader with one reading sits at 0.
    """
    frame = pd.DataFrame({"order": order.to_numpy(), "reader": readers.to_numpy()})
    rank = frame.groupby("reader", sort=False)["order"].rank(method="first").to_numpy()
    count = frame.groupby("reader", sort=False)["order"].transform("size").to_numpy()
    return np.where(count > 1, (rank - 1) / np.maximum(count - 1, 1), 0.0)


def reading_position(
    y: np.ndarray,
    position: np.ndarray,
    readers: Sequence[Any] | np.ndarray,
    cases: Sequence[Any] | np.ndarray,
    *,
    level: float = 0.95,
) -> ReadingPosition:
    """Does the outcome drift along the readers' sequences (learning, fatigue)?

    ``position`` is each rating's relative place in its reader's sequence (0 first, 1 last;
    see ``relative_positions``). Two views: the rate in each quarter of the sequences, with
    the page's rate interval; and the within-reader linear trend, the slope of the outcome on
    position after removing each reader's own mean (reader fixed effects, so readers who read
    more or rate higher do not create a trend), read as the change from first to last
    reading. Its variance is the two-way (case and reader) cluster-robust one with
    Satterthwaite df, so readers whose own trends differ widen the interval rather than
    count as evidence; with one or two readers it reflects case variation only.
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(position, dtype=float)
    reader_codes, reader_labels = pd.factorize(np.asarray(readers))
    case_codes = pd.factorize(np.asarray(cases))[0]
    n_readers = len(reader_labels)
    bins = np.minimum((x * 4).astype(int), 3)
    quarters = {
        label: rate_interval(
            y[bins == i], case_codes[bins == i], reader_codes[bins == i], level=level
        )
        for i, label in enumerate(POSITION_BINS)
    }
    per_reader: dict[str, tuple[int, float, float]] = {}
    for code, label in enumerate(reader_labels):
        mine = reader_codes == code
        first, second = mine & (x < 0.5), mine & (x >= 0.5)
        per_reader[str(label)] = (
            int(mine.sum()),
            float(y[first].mean()) if first.any() else math.nan,
            float(y[second].mean()) if second.any() else math.nan,
        )
    sizes = np.bincount(reader_codes, minlength=n_readers).astype(float) if y.size else np.ones(1)
    x_within = x - (np.bincount(reader_codes, weights=x, minlength=n_readers) / sizes)[reader_codes]
    y_within = y - (np.bincount(reader_codes, weights=y, minlength=n_readers) / sizes)[reader_codes]
    sxx = float(x_within @ x_within)
    nan_result = ReadingPosition(
        quarters,
        math.nan,
        math.nan,
        math.nan,
        math.nan,
        math.nan,
        "case_only",
        int(y.size),
        n_readers,
        per_reader,
    )
    if sxx <= 0 or y.size < 3:
        return nan_result
    slope = float(x_within @ y_within) / sxx
    psi = x_within * (y_within - slope * x_within) / sxx
    variance, df, method, n_c, _ = _variance_and_df(psi, case_codes, reader_codes)
    if not variance > 0 or n_c < 2:
        return replace(nan_result, trend=slope)
    half = _t_quantile(level, df) * math.sqrt(variance)
    p_value = float(2 * student_t.sf(abs(slope) / math.sqrt(variance), df))
    return ReadingPosition(
        quarters,
        slope,
        slope - half,
        slope + half,
        p_value,
        df,
        method,
        int(y.size),
        n_readers,
        per_reader,
    )
