"""How well an automated metric agrees with this study's experts (ReXVal-style).

Report level: Kendall tau-b and Spearman rho between a metric's value and an expert outcome per
candidate report, the outcome first averaged over the readers of that report. Source level:
tau-b between the sources' mean metric and their mean expert outcome (does the metric rank the
models as the experts do?). Each with a percentile bootstrap 95% CI that resamples *cases*, not
reports: the candidate reports of one case share an image and a reference, so they are not
independent, and resampling cases keeps them together.

Vectorised over resamples; a resample is a vector w of case multiplicities.

- Ranks. The reports are sorted once per column; a resample only reweights them. A report's
  midrank is the weight of the values below it plus half the weight of its tie group (a
  constant shift of every rank, which no correlation sees), so one cumulative sum over the
  sorted tie groups gives every resample's ranks: O(resamples x reports), no sort per resample.
  Spearman is then the weighted Pearson correlation of the ranks.
- tau-b denominators. The weight of the ordered pairs not tied in x is (sum w)^2 minus the
  sum over tie groups of (group weight)^2, from the same group sums.
- tau-b numerator. It is ``w'(Sx*Sy)w`` with S the pairwise sign matrices (zero where a report
  has no value, so a cell keeps only the reports valid on both sides; copies of one report are
  tied in both and drop out, as tau-b wants). Summing Sx*Sy into case-by-case blocks makes it a
  quadratic form in the case weights, and one matrix product per metric serves every outcome.
  Every term is an integer, so the sums are exact (in float32 while they fit its 24 bits).
- Source ranking. A resample's source means are sums over cases: every cell's (cases x
  sources) sums side by side make one matrix product for the whole table.

One set of case resamples (fixed seed) serves a whole table, so its CIs are comparable and
reproducible. numpy only (and threadpoolctl: the table's matrix products are small, and on a
busy machine a second BLAS thread spends more time waiting than multiplying).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

Values = Sequence[float] | np.ndarray  # one per candidate report; NaN where missing
Ids = Sequence[Any] | np.ndarray
DEFAULT_RESAMPLES = 2000
CONFIDENCE = 0.95
# Part of every cached table's key: a change to how the statistics are computed (not merely
# how fast) must bump it, so that no page shows numbers of the previous method.
ALGORITHM_VERSION = 2


@dataclass(frozen=True)
class Estimate:
    """A statistic with its bootstrap CI; None where it is undefined (fewer than two distinct
    values on a side)."""

    value: float | None
    low: float | None
    high: float | None


def _none_if_nan(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def _estimate(point: float, samples: np.ndarray) -> Estimate:
    finite = samples[np.isfinite(samples)]
    if not np.isfinite(point) or finite.size == 0:
        return Estimate(_none_if_nan(point), None, None)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return Estimate(float(point), float(low), float(high))


def reader_mean(per_reader: Sequence[Sequence[float | None]]) -> np.ndarray:
    """The report-level expert outcome: the mean over the readers who gave one (NaN if none)."""
    out = np.full(len(per_reader), np.nan)
    for i, values in enumerate(per_reader):
        given = [float(v) for v in values if v is not None and np.isfinite(v)]
        if given:
            out[i] = sum(given) / len(given)
    return out


def case_resamples(
    n_cases: int, *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> np.ndarray:
    """(resamples, n_cases) multiplicities of each case in each bootstrap resample."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_cases, size=(resamples, n_cases))
    offsets = (np.arange(resamples) * n_cases)[:, None]
    counts = np.bincount((draws + offsets).ravel(), minlength=resamples * n_cases)
    return counts.reshape(resamples, n_cases).astype(np.float64)


def _case_index(case_ids: Ids) -> tuple[np.ndarray, int]:
    _, index = np.unique(np.asarray(list(case_ids), dtype=object).astype(str), return_inverse=True)
    return index, int(index.max()) + 1 if len(index) else 0


class _Grid:
    """The reports in case order and one shared set of case resamples (row 0: the data)."""

    def __init__(self, case_ids: Ids, resamples: int, seed: int) -> None:
        index, self.n_cases = _case_index(case_ids)
        self.index = index
        # Reports are kept sorted by case, so a case's block is a contiguous slice.
        self.order = np.argsort(index, kind="stable")
        sorted_index = index[self.order]
        self.starts = np.flatnonzero(np.r_[True, sorted_index[1:] != sorted_index[:-1]])
        self.weights = np.vstack(
            [
                np.ones((1, self.n_cases)),
                case_resamples(self.n_cases, resamples=resamples, seed=seed),
            ]
        )
        # (reports, resamples): the rank steps gather and scatter whole rows of it.
        self.report_weights = np.ascontiguousarray(self.weights.T[sorted_index])
        # Every term of the tau-b numerator is an integer no larger in size than the square of
        # a resample's report count: below 2**24, float32 products and sums are exact, and the
        # one large matrix product of the table costs half as much.
        reports_per_case = np.bincount(sorted_index, minlength=self.n_cases)
        largest = float((self.weights @ reports_per_case).max(initial=0.0))
        self.exact_dtype = np.float32 if largest**2 < 2**24 else np.float64

    def blocks(self, matrix: np.ndarray) -> np.ndarray:
        """Sum a (reports x reports) matrix, in case order, into (cases x cases) blocks."""
        columns = np.add.reduceat(matrix, self.starts, axis=1, dtype=np.float64)
        return np.add.reduceat(columns, self.starts, axis=0)


@dataclass
class _Ranks:
    """One column's weighted midranks on a set of reports, for every resample."""

    ranks: np.ndarray  # (reports, resamples); 0 off the set
    weighted: np.ndarray  # ranks times the report weights
    total: np.ndarray  # (resamples,) the weight of the set
    sum_r: np.ndarray
    sum_rr: np.ndarray
    untied: np.ndarray  # the weight of the ordered pairs not tied on this column


def _running_sum(rows: np.ndarray) -> np.ndarray:
    """Cumulative sums down the rows, in place. numpy's cumsum adds one element at a time;
    adding each row to the next adds all the resamples at once, and is several times faster."""
    for i in range(1, len(rows)):
        np.add(rows[i - 1], rows[i], out=rows[i])
    return rows


def _ranks(values: np.ndarray, used: np.ndarray, grid: _Grid) -> _Ranks:
    """Midranks of ``values`` (case order) over the ``used`` reports, in every resample."""
    n_reports, n_resamples = grid.report_weights.shape
    members = np.flatnonzero(used)
    members = members[np.argsort(values[members], kind="stable")]
    ordered = values[members]
    last_of_group = np.flatnonzero(np.r_[ordered[1:] != ordered[:-1], True])
    n_groups = len(last_of_group) if members.size else 0
    # Row g: the midrank of tie group g (groups in value order); a last row of zeros for the
    # reports not used.
    table = np.zeros((n_groups + 1, n_resamples))
    group_of = np.full(n_reports, n_groups)
    total = untied = np.zeros(n_resamples)
    if n_groups:
        # The weight of every report up to and including each group's last, in value order.
        through = _running_sum(grid.report_weights[members])
        if n_groups < members.size:
            through = through[last_of_group]
        total = through[-1].copy()
        table[1:n_groups] = through[:-1]  # the weight below each group
        table[:n_groups] += through
        # A group's own weight is through - below = 2 * through - (below + through).
        group_weight = through
        group_weight *= 2
        group_weight -= table[:n_groups]
        table[:n_groups] *= 0.5  # the midrank: the weight below plus half the group's own
        group_of[members] = np.searchsorted(last_of_group, np.arange(members.size))
        untied = total**2 - np.einsum("gb,gb->b", group_weight, group_weight)
    ranks = table[group_of]
    weighted = ranks * grid.report_weights
    return _Ranks(
        ranks=ranks,
        weighted=weighted,
        total=total,
        sum_r=weighted.sum(axis=0),
        sum_rr=np.einsum("rb,rb->b", weighted, ranks),
        untied=untied,
    )


class _Column:
    """A metric or an outcome in case order: its sign matrix and its ranks where valid."""

    def __init__(self, values: Values, grid: _Grid) -> None:
        self.values = np.asarray(values, dtype=float)[grid.order]
        self.valid = np.isfinite(self.values)
        filled = np.where(self.valid, self.values, 0.0)
        # int8, from byte-sized comparisons: the matrix is reports^2, its entries -1, 0 and 1,
        # and a float difference matrix in between would take eight times the memory.
        above = np.greater(filled[:, None], filled[None, :]).view(np.int8)
        self.sign = above - np.less(filled[:, None], filled[None, :]).view(np.int8)
        self.sign[~self.valid, :] = 0
        self.sign[:, ~self.valid] = 0
        self.full = _ranks(self.values, self.valid, grid)

    def on(self, used: np.ndarray, grid: _Grid) -> _Ranks:
        """The ranks over ``used`` (itself, or a subset where the other side lacks values)."""
        return self.full if (used == self.valid).all() else _ranks(self.values, used, grid)


def _correlations(concordant: np.ndarray, x: _Ranks, y: _Ranks) -> tuple[np.ndarray, np.ndarray]:
    """tau-b and Spearman of every resample, from the tau-b numerator and both sides' ranks."""
    sum_xy = np.einsum("rb,rb->b", x.weighted, y.ranks)
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = concordant / np.sqrt(x.untied * y.untied)
        cov = sum_xy - x.sum_r * y.sum_r / x.total
        var_x = x.sum_rr - x.sum_r**2 / x.total
        var_y = y.sum_rr - y.sum_r**2 / y.total
        rho = cov / np.sqrt(var_x * var_y)
    return tau, rho


def agreement_table(
    metrics: Mapping[str, Values],
    outcomes: Mapping[str, Values],
    case_ids: Ids,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Report-level tau-b and Spearman, with case-bootstrap CIs, for each metric x outcome.

    Every column has one value per candidate report, in the order of ``case_ids``; NaN marks a
    report without a value (a skipped pair, a report no reader rated), left out of that cell.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _agreement_rows(metrics, outcomes, _Grid(case_ids, resamples, seed))


def _agreement_rows(
    metrics: Mapping[str, Values], outcomes: Mapping[str, Values], grid: _Grid
) -> list[dict[str, Any]]:
    outcome_columns = {name: _Column(v, grid) for name, v in outcomes.items()}
    rows = []
    for metric_name, metric_values in metrics.items():
        x = _Column(metric_values, grid)
        # Every outcome's case blocks side by side: one product with the resample weights.
        blocks = np.hstack([grid.blocks(x.sign * y.sign) for y in outcome_columns.values()])
        weights: np.ndarray = grid.weights.astype(grid.exact_dtype)
        weighted: np.ndarray = (weights @ blocks.astype(grid.exact_dtype)).reshape(
            len(weights), -1, grid.n_cases
        )
        concordant = np.einsum("byc,bc->by", weighted, weights).astype(np.float64)
        for k, (outcome_name, y) in enumerate(outcome_columns.items()):
            used = x.valid & y.valid
            tau, rho = _correlations(concordant[:, k], x.on(used, grid), y.on(used, grid))
            rows.append(
                {
                    "metric": metric_name,
                    "outcome": outcome_name,
                    "n_reports": int(used.sum()),
                    "n_cases": int(np.count_nonzero(np.add.reduceat(used, grid.starts))),
                    "kendall_tau_b": asdict(_estimate(tau[0], tau[1:])),
                    "spearman": asdict(_estimate(rho[0], rho[1:])),
                }
            )
    return rows


def report_agreement(
    metric_values: Values,
    expert_values: Values,
    case_ids: Ids,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """Report-level agreement of one metric with one outcome (one row of the table)."""
    return agreement_table(
        {"metric": metric_values},
        {"outcome": expert_values},
        case_ids,
        resamples=resamples,
        seed=seed,
    )[0]


def source_ranking_table(
    metrics: Mapping[str, Values],
    outcomes: Mapping[str, Values],
    case_ids: Ids,
    source_ids: Ids,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """For each metric x outcome, tau-b between the sources' mean metric and mean expert
    outcome, with a case-bootstrap CI (one set of resamples for the whole table).

    Each report counts toward its source's means where both its values are present.
    """
    index, n_cases = _case_index(case_ids)
    sources, source_index = np.unique(
        np.asarray(list(source_ids), dtype=object).astype(str), return_inverse=True
    )
    n_sources = len(sources)
    weights = np.vstack(
        [np.ones((1, n_cases)), case_resamples(n_cases, resamples=resamples, seed=seed)]
    )
    place = index * n_sources + source_index

    def case_source_sums(values: np.ndarray) -> np.ndarray:
        return np.bincount(place, weights=values, minlength=n_cases * n_sources).reshape(
            n_cases, n_sources
        )

    raw_metrics = {name: np.asarray(v, dtype=float) for name, v in metrics.items()}
    raw_outcomes = {name: np.asarray(v, dtype=float) for name, v in outcomes.items()}
    cells = [(m, o) for m in raw_metrics for o in raw_outcomes]
    # Per cell, the (cases x sources) report counts, metric sums and expert sums of the reports
    # with both values: side by side, one matrix product gives every resample's source sums.
    sums = []
    for metric_name, outcome_name in cells:
        metric, expert = raw_metrics[metric_name], raw_outcomes[outcome_name]
        used = np.isfinite(metric) & np.isfinite(expert)
        sums += [
            case_source_sums(used.astype(float)),
            case_source_sums(np.where(used, metric, 0.0)),
            case_source_sums(np.where(used, expert, 0.0)),
        ]
    totals = (weights @ np.hstack(sums)).reshape(len(weights), len(cells), 3, n_sources)
    with np.errstate(divide="ignore", invalid="ignore"):
        n = totals[:, :, 0]
        mean_m = totals[:, :, 1] / n
        mean_e = totals[:, :, 2] / n
        sx = np.sign(mean_m[..., :, None] - mean_m[..., None, :])
        sy = np.sign(mean_e[..., :, None] - mean_e[..., None, :])
        # A source without reports in a resample has no mean: that resample has no tau.
        tau = (sx * sy).sum(axis=(2, 3)) / np.sqrt(
            np.abs(sx).sum(axis=(2, 3)) * np.abs(sy).sum(axis=(2, 3))
        )
    rows = []
    for k, (metric_name, outcome_name) in enumerate(cells):
        rows.append(
            {
                "metric": metric_name,
                "outcome": outcome_name,
                "n_sources": n_sources,
                "sources": [
                    {
                        "source": str(source),
                        "metric_mean": _none_if_nan(mean_m[0, k, j]),
                        "expert_mean": _none_if_nan(mean_e[0, k, j]),
                        "n_reports": int(n[0, k, j]),
                    }
                    for j, source in enumerate(sources)
                ],
                "kendall_tau_b": asdict(_estimate(tau[0, k], tau[1:, k])),
            }
        )
    return rows


def source_ranking_agreement(
    metric_values: Values,
    expert_values: Values,
    case_ids: Ids,
    source_ids: Ids,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """tau-b between the sources' mean metric and mean expert outcome (one cell of the
    source-ranking table), with a case-bootstrap CI."""
    row = source_ranking_table(
        {"metric": metric_values},
        {"outcome": expert_values},
        case_ids,
        source_ids,
        resamples=resamples,
        seed=seed,
    )[0]
    return {key: row[key] for key in ("n_sources", "sources", "kendall_tau_b")}
