"""Known-answer tests of the statistics: hand-computed values on small tables, published
values of the reference implementation (irrCAC, Gwet 2014), and library results."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy.special import expit
from scipy.stats import binomtest
from scipy.stats import t as student_t
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

from reviewapp.analysis import plots, stats

# irrCAC's distrib.6raters: 15 psychiatric patients, 6 raters, 5 diagnoses (subjects x counts).
DISTRIB_6RATERS = np.array(
    [
        [0, 0, 0, 6, 0],
        [0, 3, 0, 0, 3],
        [0, 1, 4, 0, 1],
        [0, 0, 0, 0, 6],
        [0, 3, 0, 3, 0],
        [2, 0, 4, 0, 0],
        [0, 0, 4, 0, 2],
        [2, 0, 3, 1, 0],
        [2, 0, 0, 4, 0],
        [0, 0, 0, 0, 6],
        [1, 0, 0, 5, 0],
        [1, 1, 0, 4, 0],
        [0, 3, 3, 0, 0],
        [1, 0, 0, 5, 0],
        [0, 2, 0, 3, 1],
    ]
)
# irrCAC's cont3x3abstractors: two abstractors' 3-category classification of 100 subjects.
ABSTRACTORS = [[13, 0, 0], [0, 20, 7], [0, 4, 56]]
# irrCAC's cac.raw4raters: 12 subjects x 4 raters with missing ratings (None).
RAW_4RATERS = [
    [1, 1, None, 1],
    [2, 2, 3, 2],
    [3, 3, 3, 3],
    [3, 3, 3, 3],
    [2, 2, 2, 2],
    [1, 2, 3, 4],
    [4, 4, 4, 4],
    [1, 1, 2, 1],
    [2, 2, 2, 2],
    [None, 5, 5, 5],
    [None, None, 1, 1],
    [None, None, 3, None],
]


def _raw_to_frame(rows: list[list[int | None]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"case": f"c{i}", "reader": f"r{j}", "answer": v}
            for i, row in enumerate(rows)
            for j, v in enumerate(row)
            if v is not None
        ]
    )


def _distribution_to_frame(counts: np.ndarray) -> pd.DataFrame:
    rows = []
    for i, row in enumerate(counts):
        slot = 0
        for category, n in enumerate(row):
            for _ in range(int(n)):
                rows.append({"case": f"c{i}", "reader": f"r{slot}", "answer": category})
                slot += 1
    return pd.DataFrame(rows)


# ---- bootstrap -------------------------------------------------------------------------------


def _crossed(values: np.ndarray, strata: list[str] | None = None) -> pd.DataFrame:
    n_cases, n_readers = values.shape
    return pd.DataFrame(
        {
            "case": np.repeat([f"c{i}" for i in range(n_cases)], n_readers),
            "reader": np.tile([f"r{j}" for j in range(n_readers)], n_cases),
            "stratum": np.repeat(strata or ["all"] * n_cases, n_readers),
            "y": values.ravel().astype(float),
        }
    )


def test_bootstrap_point_estimate_is_the_share_of_ratings_per_stratum_and_overall() -> None:
    values = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0], [1, 1, 1]])
    frame = _crossed(values, ["normal", "normal", "abnormal", "abnormal"])
    result = stats.bootstrap_rates(frame, outcomes=["y"], n_resamples=200, seed=7)["y"]
    assert result["normal"].estimate == pytest.approx(3 / 6)
    assert result["abnormal"].estimate == pytest.approx(3 / 6)
    assert result["overall"].estimate == pytest.approx(6 / 12)
    assert result["overall"].n_ratings == 12
    assert result["overall"].n_events == 6
    assert (result["normal"].n_cases, result["normal"].n_readers) == (2, 3)
    assert result["overall"].n_resamples == 200
    assert result["overall"].seed == 7


def test_bootstrap_is_reproducible_from_its_seed_and_changes_with_it() -> None:
    rng = np.random.default_rng(3)
    frame = _crossed(rng.integers(0, 2, size=(30, 4)))
    first = stats.bootstrap_rates(frame, outcomes=["y"], n_resamples=300, seed=11)
    again = stats.bootstrap_rates(frame, outcomes=["y"], n_resamples=300, seed=11)
    assert first == again
    # Percentiles of a complete design sit on a grid of 1/120, so compare the draws.
    draws_11 = stats.bootstrap_replicates(frame, outcomes=["y"], n_resamples=300, seed=11)
    draws_12 = stats.bootstrap_replicates(frame, outcomes=["y"], n_resamples=300, seed=12)
    assert not np.array_equal(draws_11["y"]["all"], draws_12["y"]["all"])


def test_bootstrap_of_two_cases_and_one_reader_has_the_hand_computed_distribution() -> None:
    # Two cases (0 and 1), one reader: a resample of cases is {0,0}, {0,1} or {1,1} with
    # probability 1/4, 1/2, 1/4, so the 2.5% and 97.5% percentiles are 0 and 1, and with
    # 80% the 10th and 90th percentiles fall inside the mass at 0 and 1 too.
    frame = _crossed(np.array([[0], [1]]))
    result = stats.bootstrap_rates(frame, outcomes=["y"], n_resamples=4000, seed=1)["y"]["all"]
    assert (result.low, result.high) == (0.0, 1.0)
    narrow = stats.bootstrap_rates(frame, outcomes=["y"], n_resamples=4000, seed=1, level=0.4)["y"][
        "all"
    ]
    # 30th and 70th percentiles lie in the mass at 0.5 (P(<=0) = .25, P(<=.5) = .75).
    assert (narrow.low, narrow.high) == (0.5, 0.5)


def test_bootstrap_variance_of_an_additive_table_is_case_plus_reader_variance() -> None:
    # y[c, r] = a[c] + b[r] with no noise: a resampled mean is the weighted mean of a plus
    # that of b, so its variance is var(a)/C + var(b)/R (population variances), exactly.
    a = np.array([0.1, 0.5, 0.9, 0.3, 0.7, 0.2])
    b = np.array([0.0, 0.05, -0.05, 0.02])
    frame = _crossed(a[:, None] + b[None, :])
    expected = a.var() / len(a) + b.var() / len(b)
    draws = stats.bootstrap_replicates(frame, outcomes=["y"], n_resamples=40000, seed=5)
    assert draws["y"]["all"].var() == pytest.approx(expected, rel=0.03)
    assert draws["y"]["all"].mean() == pytest.approx(a.mean() + b.mean(), abs=1e-3)


def test_bootstrap_ci_of_a_unanimous_outcome_is_a_point() -> None:
    # The percentile bootstrap's known flaw, kept as a record of why the page no longer uses
    # it for rates: see test_rate_interval_of_a_unanimous_outcome_is_a_score_interval.
    frame = _crossed(np.ones((10, 3)))
    result = stats.bootstrap_rates(frame, outcomes=["y"], n_resamples=100)["y"]["all"]
    assert (result.estimate, result.low, result.high) == (1.0, 1.0, 1.0)


def test_rate_interval_of_a_unanimous_outcome_is_a_score_interval_on_cases() -> None:
    frame = _crossed(np.ones((10, 3)))
    result = stats.rate_intervals(frame, outcomes=["y"], stratum=None)["y"]["overall"]
    low, high = _hand_wilson(10, 10)
    assert (result.estimate, result.method) == (1.0, "wilson_cases")
    assert (result.low, result.high) == (pytest.approx(low), pytest.approx(high))
    assert result.low < 1.0


def test_rate_interval_with_two_readers_reflects_case_variation_only() -> None:
    rng = np.random.default_rng(4)
    two = _crossed(rng.integers(0, 2, size=(40, 2)))
    assert stats.rate_intervals(two, outcomes=["y"], stratum=None)["y"]["overall"].method == (
        "case_only"
    )
    three = _crossed(rng.integers(0, 2, size=(40, 3)))
    result = stats.rate_intervals(three, outcomes=["y"], stratum=None)["y"]["overall"]
    assert result.method == "variance_components"
    assert result.low < result.estimate < result.high


def test_prevalence_weighted_overall_weights_the_stratum_rates() -> None:
    values = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0], [1, 1, 1], [0, 1, 1], [1, 1, 0]])
    frame = _crossed(values, ["normal"] * 3 + ["abnormal"] * 3)
    result = stats.rate_intervals(frame, outcomes=["y"], prevalences={"normal": 9, "abnormal": 1})[
        "y"
    ]
    assert result["overall"].estimate == pytest.approx(10 / 18)
    assert result[stats.WEIGHTED_OVERALL].estimate == pytest.approx(0.9 * 3 / 9 + 0.1 * 7 / 9)
    assert result[stats.WEIGHTED_OVERALL].low < result[stats.WEIGHTED_OVERALL].estimate


def test_bootstrap_ignores_ratings_where_the_outcome_does_not_apply() -> None:
    frame = _crossed(np.array([[1.0, np.nan], [0.0, 1.0]]))
    result = stats.bootstrap_rates(frame, outcomes=["y"], n_resamples=100)["y"]["all"]
    assert result.estimate == pytest.approx(2 / 3)
    assert result.n_ratings == 3


def _true_rate(mu: float, sd: float) -> float:
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    return float((weights * expit(mu + sd * nodes)).sum() / weights.sum())


@pytest.mark.slow
def test_bootstrap_ci_covers_the_true_rate_about_95_percent_of_the_time(
    capsys: pytest.CaptureFixture[str], record_property: Callable[[str, object], None]
) -> None:
    # Ratings from a logistic model with case and reader random effects (logit SDs 1.0 and
    # 0.3: case difficulty dominates, readers differ a little), 100 cases x 5 readers. The
    # target is the population rate E[expit(mu + a + b)], integrated by Gauss-Hermite.
    # 2,000 repetitions give a coverage SE of about 0.5 points, enough to tell 95% from the
    # 92-98% band's edges.
    repetitions, n_cases, n_readers, mu, sd_case, sd_reader = 2000, 100, 5, 0.3, 1.0, 0.3
    truth = _true_rate(mu, math.hypot(sd_case, sd_reader))
    rng = np.random.default_rng(2024)
    c = np.repeat(np.arange(n_cases), n_readers)
    r = np.tile(np.arange(n_readers), n_cases)
    covered = 0
    for rep in range(repetitions):
        a = rng.normal(0, sd_case, n_cases)
        b = rng.normal(0, sd_reader, n_readers)
        y = (rng.random(c.size) < expit(mu + a[c] + b[r])).astype(float)
        frame = pd.DataFrame({"case": c, "reader": r, "y": y})
        result = stats.bootstrap_rates(
            frame, outcomes=["y"], stratum=None, n_resamples=1000, seed=rep
        )["y"]["overall"]
        covered += result.low <= truth <= result.high
    coverage = covered / repetitions
    record_property("bootstrap_coverage", coverage)
    with capsys.disabled():
        sys.stdout.write(f"\nbootstrap 95% CI coverage: {coverage:.3f} over {repetitions} runs\n")
    assert 0.92 <= coverage <= 0.98, f"coverage {coverage:.3f}"


# ---- case level --------------------------------------------------------------------------


def _hand_wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_case_level_rates_follow_the_panel_rules_with_wilson_intervals() -> None:
    frame = pd.DataFrame(
        [
            *({"case": "c1", "reader": r, "stratum": "s", "y": 1.0} for r in "abc"),
            *(
                {"case": "c2", "reader": r, "stratum": "s", "y": v}
                for r, v in zip("abc", [1, 0, 0], strict=True)
            ),
            *({"case": "c3", "reader": r, "stratum": "s", "y": 0.0} for r in "abc"),
            *(
                {"case": "c4", "reader": r, "stratum": "s", "y": v}
                for r, v in zip("ab", [1, 0], strict=True)
            ),
        ]
    )
    rates = stats.case_level_rates(frame, outcome="y")["overall"]
    # any: c1 c2 c4; half: c1 (3/3) and c4 (1/2), not c2 (1/3); all: c1.
    assert (rates["any"].k, rates["half"].k, rates["all"].k) == (3, 2, 1)
    assert rates["any"].n == 4
    low, high = _hand_wilson(3, 4)
    assert (rates["any"].low, rates["any"].high) == (pytest.approx(low), pytest.approx(high))
    low, high = _hand_wilson(1, 4)
    assert (rates["all"].low, rates["all"].high) == (pytest.approx(low), pytest.approx(high))


# ---- McNemar -----------------------------------------------------------------------------


def test_mcnemar_counts_discordant_cases_and_uses_the_exact_test_when_few() -> None:
    # 10 cases; report has >=1 significant error: AI only in 6 cases, original only in 1,
    # both in 2, neither in 1. Exact p = 2 * P(X <= 1 | X ~ Bin(7, 1/2)) = 2 * 8/128.
    pattern = [(1, 0)] * 6 + [(0, 1)] + [(1, 1)] * 2 + [(0, 0)]
    rows = []
    for i, (ai, orig) in enumerate(pattern):
        rows.append({"case": f"c{i}", "reader": "a", "source": "ai", "y": float(ai)})
        rows.append({"case": f"c{i}", "reader": "b", "source": "original", "y": float(orig)})
    result = stats.mcnemar_paired(pd.DataFrame(rows), outcome="y")
    assert (result.n_pairs, result.ai_only, result.original_only, result.both) == (10, 6, 1, 2)
    assert result.exact
    assert result.p_value == pytest.approx(0.125)
    assert result.ai_rate == pytest.approx(0.8)


def test_mcnemar_rule_is_a_choice_and_the_difference_comes_with_its_ci() -> None:
    # 3 readers per report. Case i: AI flagged by (ai_k) readers, original by (orig_k).
    # any: AI 4/4, orig 2/4; half: AI 2/4 (2 or 3 of 3), orig 1/4; all: AI 1/4, orig 0/4.
    pattern = [(3, 1), (2, 0), (1, 2), (1, 0)]
    rows = []
    for i, (ai_k, orig_k) in enumerate(pattern):
        for r in range(3):
            rows.append({"case": f"c{i}", "reader": f"r{r}", "source": "ai", "y": float(r < ai_k)})
            rows.append(
                {"case": f"c{i}", "reader": f"r{r}", "source": "original", "y": float(r < orig_k)}
            )
    frame = pd.DataFrame(rows)
    rates = {
        rule: stats.mcnemar_paired(frame, outcome="y", rule=rule) for rule in ("any", "half", "all")
    }
    assert (rates["any"].ai_rate, rates["any"].original_rate) == (1.0, 0.5)
    assert (rates["half"].ai_rate, rates["half"].original_rate) == (0.5, 0.25)
    assert (rates["all"].ai_rate, rates["all"].original_rate) == (0.25, 0.0)
    for rule, result in rates.items():
        assert result.rule == rule
        assert result.difference == pytest.approx(result.ai_rate - result.original_rate)
        assert result.difference_low <= result.difference <= result.difference_high
    # A case read by fewer readers than asked for leaves with its pair.
    thin = frame[~((frame["case"] == "c0") & (frame["reader"] == "r2"))]
    assert stats.mcnemar_paired(thin, outcome="y", min_reads=3).n_pairs == 3


def _paired_ratings(ai: np.ndarray, original: np.ndarray) -> tuple[np.ndarray, ...]:
    """Flat (y, case, reader, is_ai) of cases x readers 0/1 ratings of both reports."""
    cases, readers = ai.shape
    case_codes = np.tile(np.repeat(np.arange(cases), readers), 2)
    reader_codes = np.tile(np.arange(readers), 2 * cases)
    y = np.concatenate([ai.ravel(), original.ravel()]).astype(float)
    return y, case_codes, reader_codes, np.repeat([True, False], cases * readers)


def test_paired_difference_with_two_readers_is_the_paired_t_interval_on_cases() -> None:
    # Two readers: the reader spread cannot be estimated, so the interval is the one-sample
    # t interval of the per-case differences met(AI) - met(original), cases - 1 df.
    rng = np.random.default_rng(5)
    ai = rng.random((40, 2)) < 0.5
    original = rng.random((40, 2)) < 0.3
    found = stats.paired_difference(*_paired_ratings(ai, original), rule="any")
    d = ai.any(axis=1).astype(float) - original.any(axis=1).astype(float)
    low, high = student_t.interval(0.95, 39, loc=d.mean(), scale=d.std(ddof=1) / math.sqrt(40))
    assert found.method == "paired_case_only"
    assert found.estimate == pytest.approx(d.mean())
    assert (found.low, found.high) == (pytest.approx(low), pytest.approx(high))
    assert found.n_pairs == 40
    assert found.ai_only == int((ai.any(axis=1) & ~original.any(axis=1)).sum())


def test_readers_who_always_agree_add_no_reader_variance() -> None:
    # Five readers who give every report the same answer: leaving one out changes nothing, so
    # the reader piece is 0 and the interval is the paired t interval with cases - 1 df.
    rng = np.random.default_rng(6)
    ai = np.repeat(rng.random((30, 1)) < 0.6, 5, axis=1)
    original = np.repeat(rng.random((30, 1)) < 0.4, 5, axis=1)
    found = stats.paired_difference(*_paired_ratings(ai, original), rule="half")
    d = ai[:, 0].astype(float) - original[:, 0].astype(float)
    low, high = student_t.interval(0.95, 29, loc=d.mean(), scale=d.std(ddof=1) / math.sqrt(30))
    assert found.method == "paired_variance_components"
    assert found.df == pytest.approx(29)
    assert (found.low, found.high) == (pytest.approx(low), pytest.approx(high))


def test_a_difference_that_rests_on_one_reader_is_not_called_certain() -> None:
    # 3 readers, 50 cases: reader 0 flags every AI report, nobody flags anything else. Under
    # "any" every case is AI only, so cases alone show no spread at all; the difference is
    # one reader's doing, and with 3 readers the reader piece (jackknife influences 4/9,
    # -2/9, -2/9 on each AI report) leaves it wide open, on about 2 df.
    ai = np.zeros((50, 3), dtype=bool)
    ai[:, 0] = True
    found = stats.paired_difference(*_paired_ratings(ai, np.zeros((50, 3), bool)), rule="any")
    assert found.estimate == 1.0
    assert found.method == "paired_variance_components"
    # Reader piece: 3/2 x ((4/9)^2 + 2 x (2/9)^2) = 4/9, less the ratings' own noise,
    # 3/2 x 24/81 spread over 50 cases; Satterthwaite's df on the reader piece's 2.
    variance = 4 / 9 * (1 - 1 / 50)
    assert found.df == pytest.approx(2 * variance**2 / (4 / 9) ** 2)
    # 1 - t x SE lies below -1: the interval is the whole range a difference can take.
    assert 1 - student_t.ppf(0.975, found.df) * math.sqrt(variance) < -1
    assert (found.low, found.high) == (-1.0, 1.0)


def test_paired_difference_without_a_discordant_pair_is_never_a_point() -> None:
    same = np.random.default_rng(7).random((30, 3)) < 0.5
    found = stats.paired_difference(*_paired_ratings(same, same), rule="any")
    assert found.estimate == 0.0
    assert found.method == "paired_no_spread"
    assert found.low < 0 < found.high


# ---- agreement ---------------------------------------------------------------------------


def test_cohen_kappa_matches_irrcac_on_the_abstractors_table() -> None:
    table = [[13, 0, 0], [0, 20, 7], [0, 4, 56]]
    rows = []
    n = 0
    for i, row in enumerate(table):
        for j, count in enumerate(row):
            for _ in range(count):
                rows += [
                    {"case": n, "reader": "r1", "answer": i},
                    {"case": n, "reader": "r2", "answer": j},
                ]
                n += 1
    pairs = stats.cohen_kappa_pairs(pd.DataFrame(rows), value="answer", categories=[0, 1, 2])
    assert len(pairs) == 1
    assert pairs[0].kappa == pytest.approx(0.7964094, abs=1e-6)
    assert pairs[0].n_cases == 100


def test_weighted_cohen_kappa_matches_the_hand_computed_value() -> None:
    # Linear weights: observed disagreement 2/4, expected 0.875 -> 1 - 0.5/0.875 = 3/7.
    r1, r2 = ["lo", "mid", "hi", "hi"], ["lo", "hi", "hi", "mid"]
    frame = pd.DataFrame(
        [{"case": i, "reader": "x", "answer": v} for i, v in enumerate(r1)]
        + [{"case": i, "reader": "y", "answer": v} for i, v in enumerate(r2)]
    )
    (pair,) = stats.cohen_kappa_pairs(
        frame, value="answer", categories=["lo", "mid", "hi"], weights="linear"
    )
    assert pair.kappa == pytest.approx(3 / 7)
    assert pair.kappa == pytest.approx(
        cohen_kappa_score([0, 1, 2, 2], [0, 2, 2, 1], weights="linear")
    )


def test_fleiss_kappa_matches_irrcac_on_the_six_raters_distribution() -> None:
    kappa, used = stats.fleiss_kappa(DISTRIB_6RATERS.astype(float))
    assert kappa == pytest.approx(0.4139265, abs=1e-6)
    assert used == 15


def test_fleiss_kappa_uses_incomplete_panels_as_irrcac_does_on_krippendorffs_example() -> None:
    # irrCAC fleiss.kappa.raw(cac.raw4raters) = 0.7611693: Krippendorff's (2011) 12 units x
    # 4 observers with missing ratings; every unit with >= 2 ratings counts (11 of 12).
    frame = _raw_to_frame(RAW_4RATERS)
    counts = stats.category_counts(frame, value="answer", categories=[1, 2, 3, 4, 5])
    kappa, used = stats.fleiss_kappa(counts)
    assert kappa == pytest.approx(0.7611693, abs=1e-6)
    assert used == 11
    # A complete panel gives Fleiss (1971) itself: statsmodels on the six-raters table.
    assert stats.fleiss_kappa(DISTRIB_6RATERS)[0] == pytest.approx(
        sm_fleiss(DISTRIB_6RATERS, method="fleiss")
    )


def test_quadratic_weighted_kappa_matches_irrcac_on_the_abstractors_table() -> None:
    # irrCAC kappa2.table(cont3x3abstractors, weights = quadratic.weights(1:3)) = 0.8921569.
    rows = []
    for n, (i, j) in enumerate(
        (i, j) for i, row in enumerate(ABSTRACTORS) for j, c in enumerate(row) for _ in range(c)
    ):
        rows += [{"case": n, "reader": "r1", "answer": i}, {"case": n, "reader": "r2", "answer": j}]
    (pair,) = stats.cohen_kappa_pairs(
        pd.DataFrame(rows), value="answer", categories=[0, 1, 2], weights="linear",
        n_resamples=500,
    )  # fmt: skip
    assert pair.quadratic == pytest.approx(0.8921569, abs=1e-7)
    assert pair.quadratic_low < pair.quadratic < pair.quadratic_high
    assert pair.low < pair.kappa < pair.high


def test_gwet_ac1_with_missing_ratings_matches_irrcac_with_a_bootstrap_ci_around_it() -> None:
    # irrCAC gwet.ac1.raw(cac.raw4raters) = 0.7754441 (missing ratings, 4 raters, 5 categories).
    frame = _raw_to_frame(RAW_4RATERS)
    counts = stats.category_counts(frame, value="answer", categories=[1, 2, 3, 4, 5])
    found = stats.agreement_coefficients(counts, n_resamples=2000, seed=3)
    assert found["ac1"].estimate == pytest.approx(0.7754441, abs=1e-6)
    assert found["alpha"].estimate == pytest.approx(0.7434211, abs=1e-6)
    assert found["fleiss"].estimate == pytest.approx(0.7611693, abs=1e-6)
    for name in ("ac1", "alpha", "fleiss"):
        assert found[name].low < found[name].estimate < found[name].high <= 1


def test_agreement_bootstrap_over_kinds_of_case_equals_resampling_cases_one_by_one() -> None:
    # Drawing how often each distinct count vector is picked is the same resampling as
    # drawing cases: the CIs agree with a plain loop over resampled cases to Monte Carlo error.
    counts = DISTRIB_6RATERS.astype(float)
    fast = stats.agreement_coefficients(counts, n_resamples=4000, seed=1)["fleiss"]
    rng = np.random.default_rng(2)
    slow = [
        sm_fleiss(counts[rng.integers(0, len(counts), len(counts))], method="fleiss")
        for _ in range(4000)
    ]
    low, high = np.nanquantile(slow, [0.025, 0.975])
    assert fast.low == pytest.approx(low, abs=0.03)
    assert fast.high == pytest.approx(high, abs=0.03)


def test_ordinal_alpha_matches_the_krippendorff_package_and_sets_off_scale_options_apart() -> None:
    frame = _raw_to_frame(RAW_4RATERS)
    counts = stats.category_counts(frame, value="answer", categories=[1, 2, 3, 4, 5])
    ordinal = stats.krippendorff_alpha(
        frame, value="answer", categories=[1, 2, 3, 4, 5], level="ordinal"
    )
    assert stats.agreement_coefficients(counts, ordinal=True)["alpha"].estimate == (
        pytest.approx(ordinal)
    )
    # Answer 5 ("X") outside the order: the scale coefficients use 1-4 only, and X is
    # reported as its own rate (3 of 41 ratings) with nominal agreement on choosing it.
    result = stats.agreement(
        frame, question="q", value="answer", categories=[1, 2, 3, 4], off_scale=[5],
        is_ordinal=True, n_resamples=200,
    )  # fmt: skip
    on_scale = frame[frame["answer"] != 5]
    assert result.krippendorff_alpha == pytest.approx(
        stats.krippendorff_alpha(on_scale, value="answer", categories=[1, 2, 3, 4], level="ordinal")
    )
    assert result.scale == "ordinal"
    assert result.options == ["1", "2", "3", "4"]
    assert result.off_scale is not None
    assert (result.off_scale.rate.n_events, result.off_scale.rate.n_ratings) == (3, 41)
    assert result.off_scale.krippendorff_alpha.estimate == pytest.approx(
        stats.krippendorff_alpha(
            frame.assign(x=(frame["answer"] == 5).astype(int)), value="x", categories=[0, 1]
        )
    )
    assert result.nominal_alpha_all_options == pytest.approx(0.7434211, abs=1e-6)

    # Never chosen: its rate is reported (0 of n), but no agreement on choosing it, not even
    # AC1's 1.0, which would read as readers agreeing about something they never saw.
    never = stats.agreement(
        frame[frame["answer"] != 5], question="q", value="answer", categories=[1, 2, 3, 4],
        off_scale=[5], is_ordinal=True, n_resamples=200,
    )  # fmt: skip
    assert never.off_scale is not None
    assert (never.off_scale.rate.n_events, never.off_scale.rate.n_ratings) == (0, 38)
    for coefficient in ("fleiss_kappa", "krippendorff_alpha", "gwet_ac1"):
        assert math.isnan(getattr(never.off_scale, coefficient).estimate), coefficient


def test_pair_kappa_is_withheld_below_the_minimum_of_shared_cases() -> None:
    frame = _raw_to_frame(RAW_4RATERS)
    pairs = stats.cohen_kappa_pairs(frame, value="answer", categories=[1, 2, 3, 4, 5], min_cases=10)
    by_pair = {(p.reader_a, p.reader_b): p for p in pairs}
    # r0 and r2 share 8 cases, r2 and r3 share 10.
    assert by_pair[("r0", "r2")].too_few_cases
    assert math.isnan(by_pair[("r0", "r2")].kappa)
    assert not by_pair[("r2", "r3")].too_few_cases
    assert by_pair[("r2", "r3")].n_cases == 10


def test_gwet_ac1_matches_irrcac_published_values() -> None:
    assert stats.gwet_ac1(DISTRIB_6RATERS) == pytest.approx(0.4448007, abs=1e-6)
    frame = _raw_to_frame(RAW_4RATERS)
    counts = stats.category_counts(frame, value="answer", categories=[1, 2, 3, 4, 5])
    assert stats.gwet_ac1(counts) == pytest.approx(0.77544, abs=1e-5)
    # Two raters, 3x3 contingency table (irrCAC cont3x3abstractors): AC1 = 0.8493305.
    table = [[13, 0, 0], [0, 20, 7], [0, 4, 56]]
    two = np.array(
        [
            np.bincount([i, j], minlength=3)
            for i, row in enumerate(table)
            for j, count in enumerate(row)
            for _ in range(count)
        ]
    )
    assert stats.gwet_ac1(two) == pytest.approx(0.8493305, abs=1e-6)


def test_gwet_ac1_stays_high_where_kappa_collapses_under_skewed_prevalence() -> None:
    # 2 raters, 100 cases: 95 agree "no error", 5 split. Kappa is near 0 (the paradox);
    # AC1 reflects the 95% raw agreement. Hand: pi = (195/200, 5/200), pe = 2 * pi * (1-pi)
    # = 0.04875, AC1 = (0.95 - 0.04875) / (1 - 0.04875).
    counts = np.array([[2, 0]] * 95 + [[1, 1]] * 5, dtype=float)
    assert stats.gwet_ac1(counts) == pytest.approx((0.95 - 0.04875) / (1 - 0.04875))
    kappa, _ = stats.fleiss_kappa(counts)
    assert kappa < 0.05


def test_krippendorff_alpha_matches_irrcac_published_values() -> None:
    frame = _raw_to_frame(RAW_4RATERS)
    alpha = stats.krippendorff_alpha(frame, value="answer", categories=[1, 2, 3, 4, 5])
    assert alpha == pytest.approx(0.74342, abs=1e-5)
    dist = _distribution_to_frame(DISTRIB_6RATERS)
    alpha = stats.krippendorff_alpha(dist, value="answer", categories=[0, 1, 2, 3, 4])
    assert alpha == pytest.approx(0.4204384, abs=1e-6)


def test_agreement_bundle_reports_every_coefficient_and_each_reader_pair() -> None:
    dist = _distribution_to_frame(DISTRIB_6RATERS)
    result = stats.agreement(
        dist, question="dx", value="answer", categories=[0, 1, 2, 3, 4], is_ordinal=False
    )
    assert result.fleiss_kappa == pytest.approx(0.4139265, abs=1e-6)
    assert result.gwet_ac1 == pytest.approx(0.4448007, abs=1e-6)
    assert result.krippendorff_alpha == pytest.approx(0.4204384, abs=1e-6)
    assert len(result.pairs) == 15  # 6 readers -> 15 pairs
    assert (result.n_cases, result.n_readers) == (15, 6)


def test_agreement_of_identical_readers_is_perfect_and_of_constant_answers_undefined() -> None:
    frame = _raw_to_frame([[1, 1], [2, 2], [3, 3]])
    result = stats.agreement(
        frame, question="q", value="answer", categories=[1, 2, 3], is_ordinal=True,
        min_pair_cases=3,
    )  # fmt: skip
    assert result.fleiss_kappa == pytest.approx(1.0)
    assert result.krippendorff_alpha == pytest.approx(1.0)
    assert result.gwet_ac1 == pytest.approx(1.0)
    assert result.pairs[0].kappa == pytest.approx(1.0)
    constant = _raw_to_frame([[1, 1], [1, 1]])
    assert math.isnan(stats.krippendorff_alpha(constant, value="answer", categories=[1, 2, 3]))


# ---- position bias -----------------------------------------------------------------------


def test_position_bias_tests_side_a_wins_against_one_half_ignoring_ties() -> None:
    winners = ["A"] * 30 + ["B"] * 10 + [None] * 7
    result = stats.position_bias(winners)
    assert (result.a_wins, result.b_wins, result.no_preference) == (30, 10, 7)
    assert result.share_a == pytest.approx(0.75)
    tail = sum(math.comb(40, k) for k in range(30, 41)) / 2**40
    assert result.p_value == pytest.approx(2 * tail)
    assert result.p_value == pytest.approx(binomtest(30, 40).pvalue)
    balanced = stats.position_bias(["A", "B"] * 20)
    assert balanced.p_value == pytest.approx(1.0)


def test_position_bias_with_three_readers_never_gets_fewer_df_than_its_readers() -> None:
    # 3 readers x 20 comparisons, each reader leaning a little: the rating piece subtracted
    # from the two-way variance left Satterthwaite's formula under 2 df (once 0.8 df on a
    # demo study: an interval from 0.4% to 99%). It takes at least the reader piece's own
    # readers - 1 df.
    rng = np.random.default_rng(0)
    lean = rng.normal(0, 1.0, 3)
    cases, readers = np.repeat(np.arange(20), 3), np.tile(np.arange(3), 20)
    winners = np.where(rng.random(cases.size) < expit(lean[readers]), "A", "B")
    y = (winners == "A").astype(float)
    v_case, v_reader, v_rating, _, _ = stats._cluster_variances(
        (y - y.mean()) / y.size, cases, readers
    )
    variance = max(v_case + v_reader - v_rating, v_case / 2)
    satterthwaite = variance**2 / (v_case**2 / 19 + v_reader**2 / 2)
    assert satterthwaite < 2  # the case this test is about

    result = stats.position_bias(winners, readers=readers, cases=cases)
    assert result.method == "readers"
    assert result.df == pytest.approx(2.0)
    t = abs(result.share_a - 0.5) / math.sqrt(variance)
    assert result.p_value == pytest.approx(2 * student_t.sf(t, 2))
    rate = stats.rate_interval(y, cases, readers)
    assert (result.low, result.high) == (pytest.approx(rate.low), pytest.approx(rate.high))
    assert rate.df == pytest.approx(2.0)


# ---- plots -------------------------------------------------------------------------------


def _svg_text(svg: str) -> str:
    root = ElementTree.fromstring(svg)  # noqa: S314 (our own renderer's output)
    assert root.tag.endswith("svg")
    return " ".join(t for t in root.itertext())


def test_plots_are_standalone_svg_that_name_what_they_show() -> None:
    counts = pd.DataFrame(
        {"A » B": [3, 1], "A \u223c B": [5, 2], "X": [0, 1]}, index=["normal", "abnormal"]
    )
    text = _svg_text(plots.scale_by_stratum_svg(counts, title="Answers by stratum"))
    assert "normal" in text
    assert "A \u223c B" in text
    assert "Answers by stratum" in text
    forest = plots.forest_svg(
        [plots.ForestRow("normal", 0.57, 0.41, 0.70), plots.ForestRow("abnormal", 0.43, 0.3, 0.55)],
        title="Equivalent or better",
    )
    assert "57% [41%, 70%]" in _svg_text(forest)
    bars = plots.per_reader_svg(
        pd.DataFrame({"reader": ["R1", "R2"], "rate": [0.5, 0.75], "n": [4, 4]}), title="Readers"
    )
    assert "75% (n=4)" in _svg_text(bars)


def test_plots_are_byte_identical_for_the_same_numbers() -> None:
    rows = [plots.ForestRow("overall", 0.5, 0.4, 0.6)]
    assert plots.forest_svg(rows, title="t") == plots.forest_svg(rows, title="t")


# ---- reading position (learning, fatigue) ---------------------------------------------------


def test_relative_positions_place_each_reading_in_its_readers_own_sequence() -> None:
    order = pd.Series(["09:00", "08:00", "10:00", "07:00", "07:30"])
    readers = pd.Series(["r1", "r1", "r1", "r2", "r2"])
    assert stats.relative_positions(order, readers).tolist() == [0.5, 0.0, 1.0, 0.0, 1.0]


def test_reading_position_trend_is_the_within_reader_least_squares_slope() -> None:
    # Known answer: OLS of the outcome on position with a dummy per reader (statsmodels).
    rng = np.random.default_rng(3)
    n_readers, n_cases = 6, 80
    readers = np.repeat(np.arange(n_readers), n_cases)
    cases = np.tile(np.arange(n_cases), n_readers)
    position = stats.relative_positions(
        pd.Series(rng.permutation(readers.size)), pd.Series(readers)
    )
    p = 0.5 - 0.2 * (position - 0.5) + 0.05 * (readers - 3)  # tiring readers
    y = (rng.random(readers.size) < p).astype(float)
    found = stats.reading_position(y, position, readers, cases)
    fit = smf.ols("y ~ x + C(reader)", pd.DataFrame({"y": y, "x": position, "reader": readers}))
    assert found.trend == pytest.approx(fit.fit().params["x"], abs=1e-12)
    assert found.low < found.trend < found.high
    assert found.method == "variance_components"
    quarter = np.minimum((position * 4).astype(int), 3)
    for i, label in enumerate(stats.POSITION_BINS):
        assert found.quarters[label].estimate == pytest.approx(y[quarter == i].mean())
        assert found.quarters[label].n_ratings == int((quarter == i).sum())
    n, first, second = found.per_reader["0"]
    mine = readers == 0
    assert n == n_cases
    assert first == pytest.approx(y[mine & (position < 0.5)].mean())
    assert second == pytest.approx(y[mine & (position >= 0.5)].mean())


def test_reading_position_finds_fatigue_and_not_a_trend_that_is_not_there() -> None:
    rng = np.random.default_rng(8)
    readers = np.repeat(np.arange(5), 200)
    cases = np.tile(np.arange(200), 5)
    position = np.tile(np.linspace(0, 1, 200), 5)
    tired = (rng.random(readers.size) < 0.8 - 0.3 * position).astype(float)
    steady = (rng.random(readers.size) < 0.65).astype(float)
    fatigue = stats.reading_position(tired, position, readers, cases)
    assert fatigue.high < 0
    assert fatigue.p_value < 0.01
    assert fatigue.trend == pytest.approx(-0.3, abs=0.1)
    flat = stats.reading_position(steady, position, readers, cases)
    assert flat.low < 0 < flat.high
