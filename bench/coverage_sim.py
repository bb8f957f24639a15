"""Coverage of the analysis page's 95% intervals, by simulation over the design range.

Usage: python bench/coverage_sim.py [--repetitions 1000] [--out docs/statistics/coverage.md]

Ratings come from a logistic model with case and reader random effects (the model behind
issue 24's audit): y = 1 with probability expit(mu + a_case + b_reader), a ~ N(0, case SD),
b ~ N(0, reader SD), every reader rating every case. The target is the population rate
E[expit(mu + a + b)] (Gauss-Hermite). Each cell counts how often the interval of
``stats.rate_interval`` (the one the page shows) covers it; seeds are fixed, so the table is
reproducible to the digit. The band required is 93-97% for 3-10 readers, 30-300 cases and
reader SD 0-1.0 on the logit scale.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy.special import expit
from scipy.stats import binom

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reviewapp.analysis import stats  # noqa: E402

READERS = (3, 4, 5, 10)
READER_SDS = (0.0, 0.5, 1.0)
CASES = (30, 100, 300)
MU, CASE_SD = 1.0, 1.0  # a rate near 0.7 with case difficulty dominating, as in CXR studies
BAND = (0.93, 0.97)


def true_rate(mu: float, sd: float) -> float:
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    return float((weights * expit(mu + sd * nodes)).sum() / weights.sum())


def coverage(
    *,
    readers: int,
    reader_sd: float,
    cases: int,
    repetitions: int,
    seed: int,
    mu: float = MU,
    case_sd: float = CASE_SD,
) -> tuple[float, float]:
    """(share of intervals covering the true rate, mean width) for one design."""
    rng = np.random.default_rng(seed)
    truth = true_rate(mu, math.hypot(case_sd, reader_sd))
    c = np.repeat(np.arange(cases), readers)
    r = np.tile(np.arange(readers), cases)
    covered = 0
    width = 0.0
    for _ in range(repetitions):
        a = rng.normal(0, case_sd, cases)
        b = rng.normal(0, reader_sd, readers)
        y = (rng.random(c.size) < expit(mu + a[c] + b[r])).astype(float)
        result = stats.rate_interval(y, c, r)
        covered += result.low <= truth <= result.high
        width += result.high - result.low
    return covered / repetitions, width / repetitions


# The paired comparison: an outcome such as "at least one clinically significant error", rare
# per rating (logit -1.5, about 0.25) and more frequent in the AI reports (+0.5 on the logit).
DIFFERENCE_MU, DIFFERENCE_SHIFT = -1.5, 0.5
DIFFERENCE_RULE: stats.CaseRule = "any"


def _rule_probability(q: np.ndarray, readers: int, rule: stats.CaseRule) -> np.ndarray:
    """P(a report meets the outcome under ``rule``) when each reader says so with prob. q."""
    if rule == "any":
        return 1 - (1 - q) ** readers
    if rule == "all":
        return q**readers
    return binom.sf(math.ceil(readers / 2) - 1, readers, q)


def true_difference(
    *, mu: float, shift: float, case_sd: float, reader_sd: float, readers: int, rule: stats.CaseRule
) -> float:
    """AI - original share of cases meeting the outcome in the population (Gauss-Hermite).

    Given a case's effect, its readers say so independently, each with the probability
    averaged over reader effects, so the count is binomial and the rule's probability exact.
    """
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    weights = weights / weights.sum()
    found = []
    for m in (mu + shift, mu):
        q = expit(m + case_sd * nodes[:, None] + reader_sd * nodes[None, :]) @ weights
        found.append(float(weights @ _rule_probability(q, readers, rule)))
    return found[0] - found[1]


def difference_coverage(
    *,
    readers: int,
    reader_sd: float,
    cases: int,
    repetitions: int,
    seed: int,
    rule: stats.CaseRule = DIFFERENCE_RULE,
    case_sd: float = CASE_SD,
) -> tuple[float, float]:
    """(coverage, mean width) of the page's AI - original interval for one design.

    Every reader reads both reports of every case; the reports share the case's effect and
    each reader's effect, as in the planner's model.
    """
    rng = np.random.default_rng(seed)
    truth = true_difference(
        mu=DIFFERENCE_MU,
        shift=DIFFERENCE_SHIFT,
        case_sd=case_sd,
        reader_sd=reader_sd,
        readers=readers,
        rule=rule,
    )
    a = rng.normal(0, case_sd, (repetitions, cases, 1))
    b = rng.normal(0, reader_sd, (repetitions, 1, readers))
    met = {}
    for name, mu in (("ai", DIFFERENCE_MU + DIFFERENCE_SHIFT), ("original", DIFFERENCE_MU)):
        y = rng.random((repetitions, cases, readers)) < expit(mu + a + b)
        positive = y.sum(axis=2)
        met[name] = {"any": positive >= 1, "half": 2 * positive >= readers}.get(
            rule, positive == readers
        )
    ai_only = (met["ai"] & ~met["original"]).sum(axis=1)
    original_only = (~met["ai"] & met["original"]).sum(axis=1)
    _, low, high = stats.paired_difference_cis(
        ai_only, original_only, cases - ai_only - original_only, n_resamples=2000, seed=seed
    )
    return float(((low <= truth) & (truth <= high)).mean()), float((high - low).mean())


def difference_table(repetitions: int) -> list[tuple[int, float, int, float, float]]:
    rows = []
    for n, (readers, sd, cases) in enumerate(itertools.product(READERS, READER_SDS, CASES)):
        cov, width = difference_coverage(
            readers=readers, reader_sd=sd, cases=cases, repetitions=repetitions, seed=5000 + n
        )
        rows.append((readers, sd, cases, cov, width))
        print(f"difference {readers:>2} readers  SD {sd:.1f}  {cases:>3} cases  {cov:.3f}")
    return rows


def table(repetitions: int) -> list[tuple[int, float, int, float, float]]:
    rows = []
    for n, (readers, sd, cases) in enumerate(itertools.product(READERS, READER_SDS, CASES)):
        cov, width = coverage(
            readers=readers, reader_sd=sd, cases=cases, repetitions=repetitions, seed=1000 + n
        )
        rows.append((readers, sd, cases, cov, width))
        print(f"{readers:>2} readers  SD {sd:.1f}  {cases:>3} cases  {cov:.3f}", flush=True)
    return rows


def markdown(rows: list[tuple[int, float, int, float, float]], repetitions: int) -> str:
    se = math.sqrt(0.95 * 0.05 / repetitions)
    lines = [
        "# Coverage of the 95% rate interval",
        "",
        "Produced by `python bench/coverage_sim.py --repetitions "
        f"{repetitions}` (fixed seeds: rerunning gives these digits).",
        "",
        "Interval: the analysis page's rate interval (`stats.rate_interval`): two-way",
        "cluster-robust variance (by case, plus by reader, minus by rating), floored at half the",
        "case piece, on the logit scale with a t quantile on Satterthwaite's df; Wilson score",
        "interval on cases when every rating agrees.",
        "",
        f"Model: logit P(y=1) = {MU} + case effect (SD {CASE_SD}) + reader effect (SD below);",
        "every reader rates every case; target: the population rate E[expit(mu + a + b)].",
        f"{repetitions} repetitions per cell (Monte Carlo SE about {100 * se:.1f} points).",
        f"Required band: {100 * BAND[0]:.0f}-{100 * BAND[1]:.0f}%.",
        "",
    ]
    table, inside = _coverage_table(rows)
    lines += table
    lines += [
        "",
        f"{inside} of {len(rows)} cells inside the band.",
        "",
        "With one or two readers the reader variance cannot be estimated; the page then uses",
        "case variation only and says so (the case-and-reader percentile bootstrap it replaced",
        "covered 88% with two readers, 93% with three and 88% with reader SD 1.0).",
        "",
        "Cells with three readers and a reader SD of 0.5 sit at the lower edge of the band",
        "(93-94% in runs with other seeds): the reader variance has two degrees of freedom there.",
        "",
    ]
    return "\n".join(lines)


def _coverage_table(rows: list[tuple[int, float, int, float, float]]) -> tuple[list[str], int]:
    """The readers x reader SD x cases table, and how many of its cells are in the band."""
    lines = [
        "| readers | reader SD (logit) | cases | coverage | mean width |",
        "|---:|---:|---:|---:|---:|",
    ]
    for readers, sd, cases, cov, width in rows:
        lines.append(
            f"| {readers} | {sd:.1f} | {cases} | {100 * cov:.1f}% | {100 * width:.1f} pts |"
        )
    return lines, sum(BAND[0] <= row[3] <= BAND[1] for row in rows)


def difference_markdown(rows: list[tuple[int, float, int, float, float]], repetitions: int) -> str:
    lines = [
        "## Coverage of the 95% interval for AI - original (paired cases)",
        "",
        "Interval: the analysis page's difference (`stats.mcnemar_paired`, through",
        "`stats.paired_difference_cis`): a report meets the outcome when",
        f'"{stats.CASE_RULES[DIFFERENCE_RULE]}" of its readers say so; AI - original on the paired',
        "cases with the 95% percentile bootstrap of pairs (2,000 resamples).",
        "",
        f"Model: logit P(y=1) = {DIFFERENCE_MU} (+{DIFFERENCE_SHIFT} for the AI report) + case",
        f"effect (SD {CASE_SD}, shared by the case's two reports) + reader effect (SD below, the",
        "same reader effect on both reports); every reader reads both reports of every case;",
        "target: the population AI - original share of cases meeting the outcome with that many",
        f"readers (Gauss-Hermite). {repetitions} repetitions per cell.",
        "",
    ]
    table, inside = _coverage_table(rows)
    lines += table
    lines += [
        "",
        f"{inside} of {len(rows)} cells inside the band. The bootstrap of pairs treats cases as",
        "independent; the same readers reading every case make their outcomes move together,",
        "which it does not see: the wider the readers' spread and the more cases (the reader",
        "part of the error does not shrink with cases), the further it falls below 95%. The",
        "page says so beside the difference. A procedure that accounts for readers and holds",
        "the band is still to be found: a two-way cluster-robust variance whose reader part",
        "comes from leaving each reader out (Satterthwaite t) covered 92-99% over this grid",
        "with 400 repetitions a cell, above the band in most cells with three or five readers.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "statistics" / "coverage.md")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = table(args.repetitions)
    differences = difference_table(args.repetitions)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = (
        markdown(rows, args.repetitions) + "\n" + difference_markdown(differences, args.repetitions)
    )
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
