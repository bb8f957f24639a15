"""Coverage of the analysis page's 95% intervals, by simulation over the design range.

Usage: python bench/coverage_sim.py [--repetitions 4000] [--out docs/statistics/coverage.md]

Ratings come from a logistic model with case and reader random effects (the model behind
issue 24's audit): y = 1 with probability expit(mu + a_case + b_reader), a ~ N(0, case SD),
b ~ N(0, reader SD), every reader rating every case. Two tables: the rate interval
(``stats.rate_interval``), whose target is the population rate E[expit(mu + a + b)]
(Gauss-Hermite); and the AI - original difference (``stats.paired_difference``), where every
reader reads both reports of every case, with and without a reader x source interaction.
Each cell counts how often the interval the page shows covers its target; seeds are fixed,
so the tables are reproducible to the digit. The band required is 93-97% for 3-10 readers,
30-300 cases and reader SD 0-1.0 on the logit scale.
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


Row = tuple[int, float, int, tuple[tuple[float, float], ...]]


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
# Reader x source interaction (logit SD): readers differ in how much more often they say so
# of the AI reports than of the originals. Half the reader SD at its middle value: modest.
INTERACTIONS = (0.0, 0.25)


def _rule_probability(q: np.ndarray, readers: int, rule: stats.CaseRule) -> np.ndarray:
    """P(a report meets the outcome under ``rule``) when each reader says so with prob. q."""
    if rule == "any":
        return 1 - (1 - q) ** readers
    if rule == "all":
        return q**readers
    return binom.sf(math.ceil(readers / 2) - 1, readers, q)


def true_difference(
    *,
    mu: float,
    shift: float,
    case_sd: float,
    reader_sd: float,
    readers: int,
    rule: stats.CaseRule,
    interaction: float = 0.0,
) -> float:
    """AI - original share of cases meeting the outcome in the population (Gauss-Hermite).

    Given a case's effect, its readers say so independently, each with the probability
    averaged over reader effects (for the AI report: reader effect plus interaction), so the
    count is binomial and the rule's probability exact.
    """
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    weights = weights / weights.sum()
    found = []
    for m, sd in ((mu + shift, math.hypot(reader_sd, interaction)), (mu, reader_sd)):
        q = expit(m + case_sd * nodes[:, None] + sd * nodes[None, :]) @ weights
        found.append(float(weights @ _rule_probability(q, readers, rule)))
    return found[0] - found[1]


def difference_coverage(
    *,
    readers: int,
    reader_sd: float,
    cases: int,
    repetitions: int,
    seed: int,
    interaction: float = 0.0,
    rule: stats.CaseRule = DIFFERENCE_RULE,
    case_sd: float = CASE_SD,
) -> tuple[float, float]:
    """(coverage, mean width) of the page's AI - original interval for one design.

    Every reader reads both reports of every case; the reports share the case's effect and
    each reader's effect, and a reader's AI ratings also carry their interaction effect.
    """
    rng = np.random.default_rng(seed)
    truth = true_difference(
        mu=DIFFERENCE_MU,
        shift=DIFFERENCE_SHIFT,
        case_sd=case_sd,
        reader_sd=reader_sd,
        readers=readers,
        rule=rule,
        interaction=interaction,
    )
    size = cases * readers
    case_codes = np.tile(np.repeat(np.arange(cases), readers), 2)
    reader_codes = np.tile(np.arange(readers), 2 * cases)
    is_ai = np.repeat([True, False], size)
    covered = 0
    width = 0.0
    for _ in range(repetitions):
        a = rng.normal(0, case_sd, (cases, 1))
        b = rng.normal(0, reader_sd, (1, readers))
        g = rng.normal(0, interaction, (1, readers))
        ai = rng.random((cases, readers)) < expit(DIFFERENCE_MU + DIFFERENCE_SHIFT + a + b + g)
        original = rng.random((cases, readers)) < expit(DIFFERENCE_MU + a + b)
        y = np.concatenate([ai.ravel(), original.ravel()]).astype(float)
        found = stats.paired_difference(y, case_codes, reader_codes, is_ai, rule=rule)
        covered += found.low <= truth <= found.high
        width += found.high - found.low
    return covered / repetitions, width / repetitions


def difference_table(repetitions: int) -> list[Row]:
    rows: list[Row] = []
    for n, (readers, sd, cases) in enumerate(itertools.product(READERS, READER_SDS, CASES)):
        found = tuple(
            difference_coverage(
                readers=readers,
                reader_sd=sd,
                cases=cases,
                repetitions=repetitions,
                seed=5000 + 100 * k + n,
                interaction=interaction,
            )
            for k, interaction in enumerate(INTERACTIONS)
        )
        rows.append((readers, sd, cases, found))
        shown = "  ".join(f"{cov:.3f}" for cov, _ in found)
        print(
            f"difference {readers:>2} readers  SD {sd:.1f}  {cases:>3} cases  {shown}", flush=True
        )
    return rows


def table(repetitions: int) -> list[Row]:
    rows: list[Row] = []
    for n, (readers, sd, cases) in enumerate(itertools.product(READERS, READER_SDS, CASES)):
        found = coverage(
            readers=readers, reader_sd=sd, cases=cases, repetitions=repetitions, seed=1000 + n
        )
        rows.append((readers, sd, cases, (found,)))
        print(f"{readers:>2} readers  SD {sd:.1f}  {cases:>3} cases  {found[0]:.3f}", flush=True)
    return rows


def markdown(rows: list[Row], repetitions: int) -> str:
    se = math.sqrt(0.95 * 0.05 / repetitions)
    lines = [
        "# Coverage of the 95% intervals",
        "",
        "Produced by `python bench/coverage_sim.py --repetitions "
        f"{repetitions}` (fixed seeds: rerunning gives these digits).",
        f"{repetitions} repetitions per cell (Monte Carlo SE about {100 * se:.1f} points).",
        f"Required band: {100 * BAND[0]:.0f}-{100 * BAND[1]:.0f}% for 3-10 readers, 30-300 cases",
        "and reader SD 0-1.0 on the logit scale.",
        "",
        "## The rate interval",
        "",
        "Interval: the analysis page's rate interval (`stats.rate_interval`): two-way",
        "cluster-robust variance (by case, plus by reader, minus by rating), floored at half the",
        "case piece, on the logit scale with a t quantile on Satterthwaite's df (never fewer",
        "than readers - 1 or cases - 1); Wilson score interval on cases when every rating",
        "agrees.",
        "",
        f"Model: logit P(y=1) = {MU} + case effect (SD {CASE_SD}) + reader effect (SD below);",
        "every reader rates every case; target: the population rate E[expit(mu + a + b)].",
        "",
    ]
    table, inside = _coverage_table(rows, ["coverage"])
    lines += table
    lines += [
        "",
        f"{inside} of {len(rows)} cells inside the band.",
        "",
        "With one or two readers the reader variance cannot be estimated; the page then uses",
        "case variation only and says so (the case-and-reader percentile bootstrap it replaced",
        "covered 88% with two readers, 93% with three and 88% with reader SD 1.0).",
        "",
        *_outside_band(rows, se),
        "",
        "With no reader spread the reader piece holds only the ratings' own noise, about as",
        "large as the case piece, and its 2 df (3 readers) make Satterthwaite's t wide; at 100",
        "and 300 cases the plain two-way variance's downward bias (it takes 1/m of the case",
        "variance away) offsets that, at 30 cases it does not, which puts 3 readers, reader SD",
        "0 and 30 cases at the band's upper edge. Tried during development for that cell (a",
        "vectorised copy, 1,500 repetitions a cell, other seeds; cells in the band out of 36):",
        "the unbiased reader piece of the difference below with df on the whole reader piece,",
        "28 (93.4-98.6%, above the band wherever readers agree); with df on the reader piece net",
        "of its noise, 24 (88.5-97.1%: too narrow when readers differ, their spread being",
        "itself uncertain with 3 readers); floors of 0.6 and 0.75 times the case piece, 34; the",
        "case piece's df when the reader piece does not exceed its noise, 31; df on the plain",
        "variance's net reader piece, 16. None moved that cell down without pushing a cell with",
        "reader spread below 93%. The floor on the df (added 2026-12-08: Satterthwaite's",
        "formula can fall below both pieces' df, as the rating piece is subtracted) moved no",
        "cell of ten checked by more than 0.3 points (1,000 repetitions, before and after).",
        "",
        "",
    ]
    return "\n".join(lines)


def _outside_band(rows: list[Row], se: float) -> list[str]:
    """A sentence naming the cells outside the band and how far, in Monte Carlo SEs."""
    outside = [
        (readers, sd, cases, cov)
        for readers, sd, cases, found in rows
        for cov, _ in found
        if not BAND[0] <= cov <= BAND[1]
    ]
    if not outside:
        return ["Every cell is inside the band."]
    named = "; ".join(
        f"{readers} readers, reader SD {sd:.1f}, {cases} cases: {100 * cov:.1f}% "
        f"({min(abs(cov - BAND[0]), abs(cov - BAND[1])) / se:.1f} SE from the band)"
        for readers, sd, cases, cov in outside
    )
    return [f"Outside the band: {named}."]


def _coverage_table(rows: list[Row], names: list[str]) -> tuple[list[str], int]:
    """The readers x reader SD x cases table, and how many of its cells are in the band."""
    head = " | ".join(f"{name} | mean width" for name in names)
    lines = [
        f"| readers | reader SD (logit) | cases | {head} |",
        "|---:|---:|---:|" + "---:|---:|" * len(names),
    ]
    inside = 0
    for readers, sd, cases, found in rows:
        cells = " | ".join(f"{100 * cov:.1f}% | {100 * width:.1f} pts" for cov, width in found)
        lines.append(f"| {readers} | {sd:.1f} | {cases} | {cells} |")
        inside += sum(BAND[0] <= cov <= BAND[1] for cov, _ in found)
    return lines, inside


def _span(rows: list[Row], column: int) -> str:
    values = [found[column][0] for *_, found in rows]
    return f"{100 * min(values):.1f}-{100 * max(values):.1f}%"


def difference_markdown(rows: list[Row], repetitions: int) -> str:
    names = [
        "coverage" if interaction == 0 else f"coverage, interaction SD {interaction}"
        for interaction in INTERACTIONS
    ]
    lines = [
        "## The interval for AI - original (paired cases)",
        "",
        "Interval: the analysis page's difference (`stats.mcnemar_paired`, through",
        "`stats.paired_difference`): a report meets the outcome when",
        f'"{stats.CASE_RULES[DIFFERENCE_RULE]}" of its readers say so; AI - original is the mean',
        "over paired cases of met(AI) - met(original). Its variance has two pieces: the case",
        "piece over the paired cases' differences, and the reader piece, where each reader's",
        "part in a case's difference is their jackknife influence",
        "on the rule (leave the reader out of the report's panel). The reader piece is the",
        "cluster-robust variance over readers; its noise is what it holds when readers do not",
        "differ (m/(m - 1) times the squared reader parts, m readers of the case). When the",
        "reader piece exceeds its noise the excess is added to the case piece and the t takes",
        "Satterthwaite's df from the case piece (pairs - 1) and the whole reader piece",
        "(readers - 1); otherwise the case piece stands alone with pairs - 1 df. Interval:",
        "estimate plus or minus t times the standard error, on the difference scale. With one",
        "or two readers: case piece only, and the page says so.",
        "",
        f"Model: logit P(y=1) = {DIFFERENCE_MU} (+{DIFFERENCE_SHIFT} for the AI report) + case",
        f"effect (SD {CASE_SD}, shared by the case's two reports) + reader effect (SD below, the",
        "same reader effect on both reports) + for the AI report only, in the last column, a",
        f"reader x source interaction (SD {max(INTERACTIONS)}: readers differ in how much more",
        "often they say so of the AI reports); every reader reads both reports of every case;",
        "target: the population AI - original share of cases meeting the outcome with that many",
        "readers (Gauss-Hermite).",
        "",
    ]
    table, inside = _coverage_table(rows, names)
    lines += table
    labels = ["without the interaction" if i == 0 else "with it" for i in INTERACTIONS]
    spans = ", ".join(f"{label} {_span(rows, k)}" for k, label in enumerate(labels))
    lines += [
        "",
        f"{inside} of {len(rows) * len(INTERACTIONS)} cells inside the band ({spans}).",
        "",
        'The table is for the "any" rule. Spot checks of "half" and "all" (3, 5 and',
        "10 readers, reader SD 0 and 1.0, 30 and 300 cases, 800 repetitions, a vectorised copy)",
        "covered 93.4-98.2% without the interaction and 91.6-98.0% with it (lowest with 300",
        "cases).",
        "",
        "### Why this procedure",
        "",
        "Candidates, each run on the same simulated studies during development (a vectorised",
        "copy of the procedure, 1,500 repetitions a cell, seeds other than the table's; range",
        "over the 36 cells and cells in the band):",
        "",
        "| candidate | no interaction | interaction SD 0.25 |",
        "|---|---|---|",
        "| bootstrap of pairs (the page before; 1,000 repetitions) | 84.4-95.4%, 21 | not run |",
        "| case variation only (t, pairs - 1 df) | 85.7-96.1%, 28 | 81.5-95.7%, 16 |",
        "| plain two-way variance (case + reader - rating, floored at half the case piece) |"
        " 95.0-99.3%, 12 | 93.7-99.6%, 15 |",
        "| unbiased reader piece, always added, df on the whole reader piece | 97.5-99.4%, 0 |"
        " 95.3-99.3%, 5 |",
        "| unbiased reader piece, df on its excess over noise | 92.2-97.2%, 32 | 90.8-96.8%, 29 |",
        "| **chosen**: excess added only when positive, df on the whole reader piece |"
        " 94.5-97.9%, 25 | 93.2-97.3%, 34 |",
        "",
        "The previous session's leave-one-reader-out two-way variance covered 92-99%. The",
        "chosen procedure is the only one that never fell below 93%: when readers differ in how",
        "they see the AI reports (the interaction), their spread is estimated with readers - 1",
        "df, and a t on the excess alone was too narrow (down to 90.8% with 3 readers and 300",
        "cases). Its price is over-coverage, up to about 98%, mostly where readers do not",
        "differ in how they see the AI reports: the reader piece then often exceeds its noise",
        "by chance, and the t on the whole reader piece widens the interval further. Too wide",
        "is the safe side for a difference a paper reports; the cells above 97% are the open",
        "item.",
        "",
        "The cost is width: about 1.5 times the bootstrap of pairs' mean width (3 readers, 30",
        "cases: 70 against 42 points; 300 cases: 21 against 14). Under a case rule a reader",
        'counts only where their answer decides the report\'s outcome (under "any": the only',
        "reader who says so), so the readers' parts are few and large, and the reader piece",
        "estimated from them is noisy; the excess over its noise is often positive even when",
        "readers do not differ. A less noisy reader piece (for instance from",
        "each reader's rating-level paired difference, carried to the rule by its slope) is",
        "the next thing to try.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=4000)
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
