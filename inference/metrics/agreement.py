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


def _case_index(case_ids: Sequence[Any]) -> tuple[np.ndarray, int]:
    _, index = np.unique(np.asarray(list(case_ids), dtype=object).astype(str), return_inverse=True)
    return index, int(index.max()) + 1 if len(index) else 0


def _signs(x: np.ndarray) -> np.ndarray:
    return np.sign(x[:, None] - x[None, :])


def _case_blocks(matrix: np.ndarray, index: np.ndarray, n_cases: int) -> np.ndarray:
    """Sum an (reports x reports) matrix into (cases x cases) blocks."""
    member = np.zeros((len(index), n_cases))
    member[np.arange(len(index)), index] = 1.0
    return member.T @ matrix @ member


def _quadratic(weights: np.ndarray, block: np.ndarray) -> np.ndarray:
    return np.einsum("bc,bc->b", weights @ block, weights)


class _Prepared:
    """Per-column pieces reused across a table: sign matrices, tie indicators, ranks."""

    def __init__(self, values: np.ndarray) -> None:
        self.valid = np.isfinite(values)
        filled = np.where(self.valid, values, 0.0)
        mask = np.outer(self.valid, self.valid)
        self.sign = _signs(filled) * mask
        self.below = ((filled[None, :] < filled[:, None]) & mask).astype(np.float64)
        self.tied = ((filled[None, :] == filled[:, None]) & mask).astype(np.float64)


def _tau_b(weights: np.ndarray, x: _Prepared, y: _Prepared, index: np.ndarray, n_cases: int):
    both = np.outer(x.valid & y.valid, x.valid & y.valid)
    sx, sy = x.sign * both, y.sign * both
    concord = _case_blocks(sx * sy, index, n_cases)
    untied_x = _case_blocks(np.abs(sx), index, n_cases)
    untied_y = _case_blocks(np.abs(sy), index, n_cases)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _quadratic(weights, concord) / np.sqrt(
            _quadratic(weights, untied_x) * _quadratic(weights, untied_y)
        )


def _spearman(report_weights: np.ndarray, x: _Prepared, y: _Prepared) -> np.ndarray:
    """Weighted Pearson of weighted midranks; rows of ``report_weights`` are resamples."""
    keep = (x.valid & y.valid).astype(np.float64)
    w = report_weights * keep
    rank_x = w @ x.below.T + (w @ x.tied.T + 1) / 2
    rank_y = w @ y.below.T + (w @ y.tied.T + 1) / 2
    total = w.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        dx = rank_x - (w * rank_x).sum(axis=1, keepdims=True) / total
        dy = rank_y - (w * rank_y).sum(axis=1, keepdims=True) / total
        cov = (w * dx * dy).sum(axis=1)
        return cov / np.sqrt((w * dx * dx).sum(axis=1) * (w * dy * dy).sum(axis=1))


def agreement_table(
    metrics: Mapping[str, Sequence[float]],
    outcomes: Mapping[str, Sequence[float]],
    case_ids: Sequence[Any],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Report-level tau-b and Spearman, with case-bootstrap CIs, for each metric x outcome.

    Every column has one value per candidate report, in the order of ``case_ids``; NaN marks a
    report without a value (a skipped pair, a report no reader rated), left out of that cell.
    """
    index, n_cases = _case_index(case_ids)
    case_weights = case_resamples(n_cases, resamples=resamples, seed=seed)
    all_weights = np.vstack([np.ones((1, n_cases)), case_weights])  # row 0: the data itself
    report_weights = all_weights[:, index]
    prepared_outcomes = {
        name: _Prepared(np.asarray(values, dtype=float)) for name, values in outcomes.items()
    }
    rows = []
    for metric_name, metric_values in metrics.items():
        x = _Prepared(np.asarray(metric_values, dtype=float))
        for outcome_name, y in prepared_outcomes.items():
            used = x.valid & y.valid
            tau = _tau_b(all_weights, x, y, index, n_cases)
            rho = _spearman(report_weights, x, y)
            rows.append(
                {
                    "metric": metric_name,
                    "outcome": outcome_name,
                    "n_reports": int(used.sum()),
                    "n_cases": len(np.unique(index[used])),
                    "kendall_tau_b": asdict(_estimate(tau[0], tau[1:])),
                    "spearman": asdict(_estimate(rho[0], rho[1:])),
                }
            )
    return rows


def report_agreement(
    metric_values: Sequence[float],
    expert_values: Sequence[float],
    case_ids: Sequence[Any],
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
    metric_values: Sequence[float],
    expert_values: Sequence[float],
    case_ids: Sequence[Any],
    source_ids: Sequence[Any],
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
