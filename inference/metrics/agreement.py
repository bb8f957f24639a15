"""How well an automated metric agrees with this study's experts (ReXVal-style).

Report level: Kendall tau-b and Spearman rho between a metric's value and an expert outcome per
candidate report, the outcome first averaged over the readers of that report. Source level:
tau-b between the sources' mean metric and their mean expert outcome (does the metric rank the
models as the experts do?). Each with a percentile bootstrap 95% CI that resamples *cases*, not
reports: the candidate reports of one case share an image and a reference, so they are not
independent, and resampling cases keeps them together.

Vectorised. tau-b over a resample with multiplicities w is a ratio of quadratic forms,
``w'(Sx*Sy)w / sqrt(w'|Sx|w * w'|Sy|w)`` with S the pairwise sign matrices (copies of one report
are tied in both and drop out, as tau-b wants). Summing S into case-by-case blocks first makes
each form a (resamples x cases) by (cases x cases) product, so 2,000 resamples cost a few
matrix products. Spearman needs the ranks of each resample: midranks are linear in w (the
weight of values below plus half the weight of ties), so they are matrix products too. One set
of case resamples (fixed seed) serves a whole table, so its CIs are comparable and reproducible.

numpy and scipy only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

Values = Sequence[float] | np.ndarray  # one per candidate report; NaN where missing
Ids = Sequence[Any] | np.ndarray
DEFAULT_RESAMPLES = 2000
CONFIDENCE = 0.95


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


class _Column:
    """One column (a metric or an outcome) restricted to some reports, with everything a
    table reuses across its cells: case-block sums of |sign| and their quadratic forms, and the
    midranks and rank moments of every resample."""

    def __init__(self, values: np.ndarray, grid: _Grid) -> None:
        self.valid = np.isfinite(values)
        filled = np.where(self.valid, values, 0.0)
        mask = np.outer(self.valid, self.valid)
        self.sign = np.sign(filled[:, None] - filled[None, :]) * mask
        self.untied = grid.quadratic(grid.blocks(np.abs(self.sign)))
        below = (filled[None, :] < filled[:, None]) & mask
        tied = (filled[None, :] == filled[:, None]) & mask
        # Midrank of report i in a resample: the weight of values below plus half that of ties.
        per_case = grid.column_blocks(below + 0.5 * tied)  # (reports, cases)
        weights = grid.report_weights * self.valid
        self.ranks = grid.weights @ per_case.T  # (resamples, reports)
        # Kept for every cell of the table; einsum sums products without temporaries.
        self.weighted_ranks = weights * self.ranks
        self.total = weights.sum(axis=1)
        self.sum_r = self.weighted_ranks.sum(axis=1)
        self.sum_rr = np.einsum("br,br->b", self.weighted_ranks, self.ranks)


class _Grid:
    """The reports grouped by case and one shared set of case resamples (row 0: the data)."""

    def __init__(self, case_ids: Ids, resamples: int, seed: int) -> None:
        index, self.n_cases = _case_index(case_ids)
        self.index = index
        self.order = np.argsort(index, kind="stable")
        sorted_index = index[self.order]
        self.starts = np.flatnonzero(np.r_[True, sorted_index[1:] != sorted_index[:-1]])
        self.weights = np.vstack(
            [
                np.ones((1, self.n_cases)),
                case_resamples(self.n_cases, resamples=resamples, seed=seed),
            ]
        )
        self.report_weights = self.weights[:, index]

    def column_blocks(self, matrix: np.ndarray) -> np.ndarray:
        """Sum the columns of a (reports x reports) matrix within each case."""
        return np.add.reduceat(matrix[:, self.order], self.starts, axis=1)

    def blocks(self, matrix: np.ndarray) -> np.ndarray:
        """Sum a (reports x reports) matrix into (cases x cases) blocks."""
        return np.add.reduceat(self.column_blocks(matrix)[self.order], self.starts, axis=0)

    def quadratic(self, block: np.ndarray) -> np.ndarray:
        return np.einsum("bc,bc->b", self.weights @ block, self.weights)


def _cell(x: _Column, y: _Column, grid: _Grid) -> tuple[np.ndarray, np.ndarray]:
    """tau-b and Spearman of every resample for two columns valid on the same reports."""
    concordant = grid.quadratic(grid.blocks(x.sign * y.sign))
    sum_xy = np.einsum("br,br->b", x.weighted_ranks, y.ranks)
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
    grid = _Grid(case_ids, resamples, seed)
    raw_outcomes = {name: np.asarray(v, dtype=float) for name, v in outcomes.items()}
    outcome_columns = {name: _Column(v, grid) for name, v in raw_outcomes.items()}
    rows = []
    for metric_name, metric_values in metrics.items():
        raw_x = np.asarray(metric_values, dtype=float)
        x = _Column(raw_x, grid)
        for outcome_name, y in outcome_columns.items():
            used = x.valid & y.valid
            if (used == x.valid).all() and (used == y.valid).all():
                tau, rho = _cell(x, y, grid)
            else:  # reports missing on one side only: both columns restricted to the rest
                restricted_x = _Column(np.where(used, raw_x, np.nan), grid)
                restricted_y = _Column(np.where(used, raw_outcomes[outcome_name], np.nan), grid)
                tau, rho = _cell(restricted_x, restricted_y, grid)
            rows.append(
                {
                    "metric": metric_name,
                    "outcome": outcome_name,
                    "n_reports": int(used.sum()),
                    "n_cases": len(np.unique(grid.index[used])),
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


def source_ranking_agreement(
    metric_values: Values,
    expert_values: Values,
    case_ids: Ids,
    source_ids: Ids,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """tau-b between the sources' mean metric and mean expert outcome, with a case-bootstrap CI.

    Each report counts toward its source's means where both its values are present.
    """
    metric = np.asarray(metric_values, dtype=float)
    expert = np.asarray(expert_values, dtype=float)
    used = np.isfinite(metric) & np.isfinite(expert)
    index, n_cases = _case_index(case_ids)
    sources, source_index = np.unique(
        np.asarray(list(source_ids), dtype=object).astype(str), return_inverse=True
    )
    n_sources = len(sources)
    # (cases x sources) sums and counts, so a resample's source means are matrix products.
    sums_m = np.zeros((n_cases, n_sources))
    sums_e = np.zeros((n_cases, n_sources))
    counts = np.zeros((n_cases, n_sources))
    np.add.at(sums_m, (index[used], source_index[used]), metric[used])
    np.add.at(sums_e, (index[used], source_index[used]), expert[used])
    np.add.at(counts, (index[used], source_index[used]), 1.0)
    weights = np.vstack(
        [np.ones((1, n_cases)), case_resamples(n_cases, resamples=resamples, seed=seed)]
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        n = weights @ counts
        mean_m = (weights @ sums_m) / n
        mean_e = (weights @ sums_e) / n
    sx = np.sign(mean_m[:, :, None] - mean_m[:, None, :])
    sy = np.sign(mean_e[:, :, None] - mean_e[:, None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = (sx * sy).sum(axis=(1, 2)) / np.sqrt(
            np.abs(sx).sum(axis=(1, 2)) * np.abs(sy).sum(axis=(1, 2))
        )
    return {
        "n_sources": n_sources,
        "sources": [
            {
                "source": str(source),
                "metric_mean": _none_if_nan(mean_m[0, k]),
                "expert_mean": _none_if_nan(mean_e[0, k]),
                "n_reports": int(n[0, k]),
            }
            for k, source in enumerate(sources)
        ],
        "kendall_tau_b": asdict(_estimate(tau[0], tau[1:])),
    }
