"""Simulation tests: the intervals and tests the page uses hold their stated level.

Seeds are fixed, so each figure is reproducible; docs/statistics/coverage.md holds the full
table from bench/coverage_sim.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import expit

from bench.coverage_sim import BAND, coverage, difference_coverage
from reviewapp.analysis import stats


@pytest.mark.slow
@pytest.mark.parametrize(
    ("readers", "reader_sd", "cases"),
    [(3, 1.0, 30), (3, 0.5, 300), (5, 0.0, 100), (10, 1.0, 30)],
)
def test_rate_interval_covers_the_population_rate_93_to_97_percent_of_the_time(
    readers: int, reader_sd: float, cases: int
) -> None:
    # 2,000 repetitions: Monte Carlo SE about 0.5 points. A cell whose true coverage sits on
    # the band's edge (3 readers with reader SD 0.5 measure 93-94%) may land a little outside
    # by chance; two Monte Carlo SEs of slack tell that from a method that left the band.
    repetitions = 2000
    found, _ = coverage(
        readers=readers, reader_sd=reader_sd, cases=cases, repetitions=repetitions, seed=77
    )
    slack = 2 * math.sqrt(0.95 * 0.05 / repetitions)
    assert BAND[0] - slack <= found <= BAND[1] + slack, f"coverage {found:.3f}"


def _leaning_readers(rng: np.random.Generator, *, readers: int, cases: int, sd: float):
    """Readers who each lean to a side (logit SD ``sd``) with no lean in the population."""
    lean = rng.normal(0, sd, readers)
    c = np.repeat(np.arange(cases), readers)
    r = np.tile(np.arange(readers), cases)
    a_wins = rng.random(c.size) < expit(lean[r])
    return np.where(a_wins, "A", "B"), r, c


@pytest.mark.slow
def test_position_bias_test_rejects_at_its_nominal_level_when_only_readers_lean() -> None:
    # 5 readers x 60 comparisons each, reader lean SD 0.5 on the logit scale: the binomial
    # test over ratings rejects far too often; the reader-aware test stays near 5%.
    rng = np.random.default_rng(11)
    repetitions = 1000
    aware = naive = 0
    for _ in range(repetitions):
        winners, readers, cases = _leaning_readers(rng, readers=5, cases=60, sd=0.5)
        aware += stats.position_bias(winners, readers=readers, cases=cases).p_value < 0.05
        naive += stats.position_bias(winners).p_value < 0.05
    assert naive / repetitions > 0.2
    assert 0.02 <= aware / repetitions <= 0.08, f"level {aware / repetitions:.3f}"


@pytest.mark.slow
def test_position_bias_test_finds_a_real_population_lean() -> None:
    rng = np.random.default_rng(12)
    rejected = 0
    for _ in range(300):
        winners, readers, cases = _leaning_readers(rng, readers=8, cases=60, sd=0.0)
        # Every reader prefers A a little (60:40): a bias of the position itself.
        flip = rng.random(winners.size) < 0.2
        winners = np.where(flip, "A", winners)
        rejected += stats.position_bias(winners, readers=readers, cases=cases).p_value < 0.05
    assert rejected / 300 > 0.8


@pytest.mark.slow
@pytest.mark.parametrize(
    ("readers", "reader_sd", "cases", "interaction"),
    [(10, 1.0, 300, 0.0), (3, 1.0, 300, 0.25), (4, 0.5, 30, 0.0), (5, 0.0, 100, 0.25)],
)
def test_paired_difference_ci_covers_the_true_difference_93_to_97_percent_of_the_time(
    readers: int, reader_sd: float, cases: int, interaction: float
) -> None:
    # The same readers read both reports of every case, as in a real study; with readers
    # spread widely and many cases the bootstrap of pairs it replaced covered 84% (10 readers,
    # reader SD 1.0, 300 cases). With a reader x source interaction the readers' own view of
    # the AI reports is part of the difference's error and must widen the interval.
    repetitions = 2000
    found, _ = difference_coverage(
        readers=readers,
        reader_sd=reader_sd,
        cases=cases,
        repetitions=repetitions,
        seed=78,
        interaction=interaction,
    )
    slack = 2 * math.sqrt(0.95 * 0.05 / repetitions)
    assert BAND[0] - slack <= found <= BAND[1] + slack, f"coverage {found:.3f}"
