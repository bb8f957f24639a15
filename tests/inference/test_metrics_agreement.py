"""Agreement statistics have known answers: scipy's tau-b and rho on ties, hand-computed small
examples, and bootstrap resamples that equal the statistic recomputed on the resampled data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from inference.metrics.agreement import (
    agreement_table,
    case_resamples,
    reader_mean,
    report_agreement,
    source_ranking_agreement,
    source_ranking_table,
)


def tied_data(seed: int = 3) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    metric = rng.integers(0, 5, 45).astype(float)  # many ties, like rounded scores
    errors = rng.integers(0, 3, 45).astype(float)  # error counts: heavy ties
    cases = [f"case-{i // 3:02d}" for i in range(45)]  # three candidate reports per case
    return metric, errors, cases


def test_tau_b_and_spearman_equal_scipy_on_tied_data() -> None:
    metric, errors, cases = tied_data()
    row = report_agreement(metric, errors, cases)
    assert row["kendall_tau_b"]["value"] == pytest.approx(stats.kendalltau(metric, errors)[0])
    assert row["spearman"]["value"] == pytest.approx(stats.spearmanr(metric, errors)[0])
    assert row["n_reports"] == 45
    assert row["n_cases"] == 15


def uneven_data(seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[str]]:
    """Cases of one to four candidate reports, tied metrics, and outcomes with gaps (a report
    no reader rated) in different places, as a study's table has them."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 5, 30)
    cases = [f"c{c:02d}" for c, size in enumerate(sizes) for _ in range(size)]
    n = len(cases)
    metrics = {
        "rounded": np.round(rng.random(n), 1),
        "continuous": rng.random(n),
        "gappy": np.where(rng.random(n) < 0.15, np.nan, rng.integers(0, 4, n).astype(float)),
    }
    outcomes = {
        "share": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 4, n) / 3),
        "errors": rng.integers(0, 3, n).astype(float),
    }
    return metrics, outcomes, cases


def _expanded(cases: list[str], counts: np.ndarray) -> np.ndarray:
    """The report rows of a resample: each case's reports, as often as the case was drawn."""
    names = sorted(set(cases))
    return np.array(
        [i for c, name in enumerate(names) for _ in range(int(counts[c])) for i in _of(cases, name)]
    )


def _of(cases: list[str], name: str) -> list[int]:
    return [i for i, case in enumerate(cases) if case == name]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_cell_and_its_ci_are_scipys_statistics_over_the_same_case_resamples(seed) -> None:
    metrics, outcomes, cases = uneven_data(seed)
    resamples = 200
    rows = agreement_table(metrics, outcomes, cases, resamples=resamples, seed=seed)
    counts = case_resamples(len(set(cases)), resamples=resamples, seed=seed)
    assert len(rows) == 6
    for row in rows:
        x, y = metrics[row["metric"]], outcomes[row["outcome"]]
        kept = np.isfinite(x) & np.isfinite(y)
        assert row["n_reports"] == kept.sum()
        assert row["n_cases"] == len({c for c, k in zip(cases, kept, strict=True) if k})
        assert row["kendall_tau_b"]["value"] == pytest.approx(
            stats.kendalltau(x[kept], y[kept])[0], abs=1e-12
        )
        assert row["spearman"]["value"] == pytest.approx(
            stats.spearmanr(x[kept], y[kept])[0], abs=1e-12
        )
        taus, rhos = [], []
        for draw in counts:
            rows_of = _expanded(cases, draw)
            rows_of = rows_of[kept[rows_of]]
            taus.append(stats.kendalltau(x[rows_of], y[rows_of])[0])
            rhos.append(stats.spearmanr(x[rows_of], y[rows_of])[0])
        for name, samples in (("kendall_tau_b", taus), ("spearman", rhos)):
            finite = np.array(samples)[np.isfinite(samples)]
            low, high = np.percentile(finite, [2.5, 97.5])
            assert row[name]["low"] == pytest.approx(low, abs=1e-12)
            assert row[name]["high"] == pytest.approx(high, abs=1e-12)


def test_a_table_of_thousands_of_reports_is_still_scipys_answer() -> None:
    # 4,200 reports: beyond the size where every tau-b sum is sure to fit float32's 24 bits,
    # so the table takes its double-precision path; it must give scipy's answer all the same.
    rng = np.random.default_rng(11)
    cases = [f"c{i // 3:04d}" for i in range(4200)]
    metric = np.round(rng.random(4200), 3)
    errors = rng.integers(0, 4, 4200).astype(float) - np.round(metric * 2)
    row = report_agreement(metric, errors, cases, resamples=1, seed=4)
    assert row["kendall_tau_b"]["value"] == pytest.approx(
        stats.kendalltau(metric, errors)[0], abs=1e-12
    )
    counts = case_resamples(1400, resamples=1, seed=4)[0]
    rows_of = _expanded(cases, counts)
    assert row["kendall_tau_b"]["low"] == pytest.approx(
        stats.kendalltau(metric[rows_of], errors[rows_of])[0], abs=1e-12
    )
    assert row["spearman"]["low"] == pytest.approx(
        stats.spearmanr(metric[rows_of], errors[rows_of])[0], abs=1e-12
    )


def test_the_source_ranking_table_is_each_cells_tau_of_source_means() -> None:
    rng = np.random.default_rng(5)
    cases = [f"c{i // 3:02d}" for i in range(60)]
    sources = ["A", "B", "C"] * 20
    metric = rng.random(60) + np.tile([0.0, 0.2, 0.4], 20)
    experts = {"same": metric + rng.normal(0, 0.05, 60), "reversed": -metric}
    experts["same"][[4, 8]] = np.nan
    rows = source_ranking_table({"m": metric}, experts, cases, sources, resamples=300, seed=2)
    assert [r["outcome"] for r in rows] == ["same", "reversed"]
    assert rows[0]["kendall_tau_b"]["value"] == pytest.approx(1.0)
    assert rows[1]["kendall_tau_b"] == {"value": -1.0, "low": -1.0, "high": -1.0}
    # The table's cell is the one-cell function's answer on the same resamples.
    single = source_ranking_agreement(
        metric, experts["same"], cases, sources, resamples=300, seed=2
    )
    assert rows[0]["kendall_tau_b"] == single["kendall_tau_b"]
    for table_source, single_source in zip(rows[0]["sources"], single["sources"], strict=True):
        assert table_source == pytest.approx(single_source)
    assert [s["n_reports"] for s in rows[0]["sources"]] == [20, 19, 19]
    means = [np.nanmean(experts["same"][i::3]) for i in range(3)]
    assert [s["expert_mean"] for s in rows[0]["sources"]] == pytest.approx(means)


def test_tau_b_by_hand() -> None:
    # One discordant pair of six: (5 - 1) / 6.
    assert report_agreement([1, 2, 3, 4], [1, 3, 2, 4], "abcd")["kendall_tau_b"][
        "value"
    ] == pytest.approx(4 / 6)
    # Four concordant, one pair tied in x only, one tied in y only: 4 / sqrt(5 * 5).
    assert report_agreement([1, 1, 2, 3], [1, 2, 2, 3], "abcd")["kendall_tau_b"][
        "value"
    ] == pytest.approx(0.8)


def test_every_bootstrap_resample_is_the_statistic_of_the_resampled_cases() -> None:
    metric, errors, cases = tied_data()
    case_names = sorted(set(cases))
    for seed in range(5):
        # One resample: the CI bounds are that resample's statistic.
        row = report_agreement(metric, errors, cases, resamples=1, seed=seed)
        counts = case_resamples(len(case_names), resamples=1, seed=seed)[0].astype(int)
        rows = [
            i
            for c, name in enumerate(case_names)
            for _ in range(counts[c])
            for i, case in enumerate(cases)
            if case == name
        ]
        expected_tau = stats.kendalltau(metric[rows], errors[rows])[0]
        expected_rho = stats.spearmanr(metric[rows], errors[rows])[0]
        assert row["kendall_tau_b"]["low"] == pytest.approx(expected_tau)
        assert row["kendall_tau_b"]["high"] == pytest.approx(expected_tau)
        assert row["spearman"]["low"] == pytest.approx(expected_rho)


def test_ci_brackets_the_estimate_and_is_reproducible() -> None:
    metric, errors, cases = tied_data()
    first = report_agreement(metric, -metric + errors, cases)
    again = report_agreement(metric, -metric + errors, cases)
    assert first == again
    tau = first["kendall_tau_b"]
    assert tau["low"] < tau["value"] < tau["high"]
    assert tau["high"] < 0  # more errors where the metric is lower


def test_reports_without_a_value_are_left_out_of_that_cell_only() -> None:
    metric, errors, cases = tied_data()
    gappy = errors.copy()
    gappy[:3] = np.nan
    rows = agreement_table({"m": metric}, {"errors": gappy, "full": errors}, cases)
    assert [r["n_reports"] for r in rows] == [42, 45]
    assert [r["n_cases"] for r in rows] == [14, 15]
    expected = stats.kendalltau(metric[3:], errors[3:])[0]
    assert rows[0]["kendall_tau_b"]["value"] == pytest.approx(expected)


def test_constant_outcome_has_no_correlation_rather_than_zero() -> None:
    row = report_agreement([1, 2, 3], [2, 2, 2], "abc")
    assert row["kendall_tau_b"] == {"value": None, "low": None, "high": None}


def test_reader_mean_averages_the_readers_who_answered() -> None:
    assert reader_mean([[1, 3], [2, None], [None]]).tolist()[:2] == [2.0, 2.0]
    assert np.isnan(reader_mean([[None]])[0])


def test_source_ranking_by_hand() -> None:
    # Two cases, three sources; source means: metric A .1 B .2 C .3, experts A 1 B 3 C 2.
    metric = [0.0, 0.1, 0.3, 0.2, 0.3, 0.3]
    experts = [1.0, 2.0, 1.0, 1.0, 4.0, 3.0]
    cases = ["x", "x", "x", "y", "y", "y"]
    sources = ["A", "B", "C", "A", "B", "C"]
    result = source_ranking_agreement(metric, experts, cases, sources)
    means = {s["source"]: (s["metric_mean"], s["expert_mean"]) for s in result["sources"]}
    assert means["A"] == pytest.approx((0.1, 1.0))
    assert means["B"] == pytest.approx((0.2, 3.0))
    assert means["C"] == pytest.approx((0.3, 2.0))
    # A<B and A<C agree, B<C disagrees: (2 - 1) / 3.
    assert result["kendall_tau_b"]["value"] == pytest.approx(1 / 3)
    assert -1 <= result["kendall_tau_b"]["low"] <= result["kendall_tau_b"]["high"] <= 1
