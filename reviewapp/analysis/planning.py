"""Planning a reader study: how many cases and readers, answered by simulation.

A coordinator states what they expect (a rate, how much readers and cases vary on the logit
scale, how many readers read each case) and what they want (a 95% CI of at most a given
half-width on a rate, or non-inferiority of the AI reports against the originals within a
margin). For each design in a grid of cases x readers, studies are simulated from the model
behind the coverage table (docs/statistics/coverage.md):

    logit P(rating positive) = mu_report + case effect + reader effect,
    case effect ~ N(0, case SD), reader effect ~ N(0, reader SD),

and analysed with the very functions the analysis page calls: ``stats.rate_interval`` for a
rate and ``stats.paired_difference`` (the interval behind ``stats.mcnemar_paired``) for
AI - original. A plan is therefore only as good as that model,
and it says so; it is never a formula that the analysis does not use.

Nothing here touches the database: it is pure computation, the same for the page and the API.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit

from reviewapp.analysis import stats
from reviewapp.core.errors import ApplicationError

Goal = Literal["precision", "non_inferiority"]
GOALS: dict[Goal, str] = {
    "precision": "95% CI half-width on a rate",
    "non_inferiority": "non-inferiority of AI reports against the originals",
}
DEFAULT_CASES = (30, 50, 100, 200, 300)
# What a plan assumes where neither the coordinator nor a past study says otherwise.
BUILT_IN_DEFAULTS = {"rate": 0.7, "reader_sd": 0.5, "case_sd": 1.0}
DEFAULT_READERS = (3, 4, 5, 8)
DEFAULT_SIMULATIONS = 200
MAX_DESIGNS = 36
# Simulated studies in one plan (designs x simulations): bounds the time of one request.
MAX_WORK = 8_000
# Share of simulated studies that must reach the goal for a design to be marked as meeting it
# (the usual 80% power; for precision the *mean* half-width must also be within the target).
POWER_TARGET = 0.8


@dataclass(frozen=True)
class PlanCell:
    """One design (cases x readers) and what the simulations found for it."""

    cases: int
    readers: int
    reads_per_case: int
    n_ratings: int
    mean_half_width: float
    # Precision: share of studies whose half-width is within the target. Non-inferiority:
    # share whose lower CI bound for AI - original lies above -margin (the power).
    success: float
    # Share of the simulated studies whose interval covered the true value (a check on the
    # interval procedure under the assumed model; ~95% expected).
    coverage: float
    meets_goal: bool


@dataclass(frozen=True)
class Plan:
    goal: Goal
    rate: float
    ai_rate: float
    reader_sd: float
    case_sd: float
    reads_per_case: int | None
    target_half_width: float | None
    margin: float | None
    rule: stats.CaseRule
    simulations: int
    seed: int
    cells: list[PlanCell] = field(default_factory=list)
    # The design with the fewest ratings that meets the goal (None if none in the grid does).
    smallest: PlanCell | None = None
    true_difference: float = math.nan
    method: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _population_rate(mu: float, sd: float) -> float:
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    return float((weights * expit(mu + sd * nodes)).sum() / weights.sum())


def _intercept(rate: float, sd: float) -> float:
    """The logit intercept whose population rate E[expit(mu + effects)] equals ``rate``."""
    return float(brentq(lambda mu: _population_rate(mu, sd) - rate, -30.0, 30.0))


def _spread_for_variance(rate: float, variance: float) -> float:
    """The logit-scale SD whose effects spread the rate ``rate`` by ``variance`` (prob. scale)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    weights = weights / weights.sum()

    def spread(sd: float) -> float:
        mu = _intercept(rate, sd)
        values = expit(mu + sd * nodes)
        return float(weights @ (values - weights @ values) ** 2)

    if variance <= 0:
        return 0.0
    if variance >= spread(MAX_SD):
        return MAX_SD
    return float(brentq(lambda sd: spread(sd) - variance, 0.0, MAX_SD))


MAX_SD = 3.0
# Fewest ratings, readers and cases read twice for a study to inform the planning defaults.
MIN_RATINGS_FOR_DEFAULTS = 50
MIN_READERS_FOR_DEFAULTS = 2
MIN_CASES_FOR_DEFAULTS = 10


@dataclass(frozen=True)
class Spreads:
    """A rate and its reader and case spreads on the logit scale, estimated from ratings."""

    rate: float
    reader_sd: float
    case_sd: float
    n_ratings: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def spreads_from_ratings(
    y: np.ndarray, case_codes: np.ndarray, reader_codes: np.ndarray
) -> Spreads | None:
    """The rate, reader SD and case SD (logit) of 0/1 ratings, by the method of moments.

    The spread of the readers' own rates, less what binomial noise alone gives them
    (rate x (1 - rate) / (ratings - 1) each), is the readers' variance on the probability
    scale; the same over cases read at least twice is the cases' variance. Each is turned
    into the logit-scale SD of the planning model that spreads the rate that much. Rough
    (each spread is estimated as if it were the only one), but on the planner's own scale.
    None when there are too few ratings, readers or cases read twice, or every rating agrees.
    """
    y = np.asarray(y, dtype=float)
    if y.size < MIN_RATINGS_FOR_DEFAULTS:
        return None
    rate = float(y.mean())
    if not 0 < rate < 1:
        return None

    def between(codes: np.ndarray) -> tuple[float, int]:
        idx = np.unique(np.asarray(codes), return_inverse=True)[1].ravel()
        n = np.bincount(idx).astype(float)
        p = np.bincount(idx, weights=y) / n
        keep = n >= 2
        if keep.sum() < 2:
            return math.nan, int(keep.sum())
        noise = p[keep] * (1 - p[keep]) / (n[keep] - 1)
        return float(np.var(p[keep], ddof=1) - noise.mean()), int(keep.sum())

    reader_var, n_readers = between(reader_codes)
    case_var, n_cases = between(case_codes)
    if n_readers < MIN_READERS_FOR_DEFAULTS or n_cases < MIN_CASES_FOR_DEFAULTS:
        return None
    return Spreads(
        rate=rate,
        reader_sd=_spread_for_variance(rate, reader_var),
        case_sd=_spread_for_variance(rate, case_var),
        n_ratings=int(y.size),
    )


def pooled_spreads(found: list[Spreads]) -> Spreads | None:
    """Spreads of several studies pooled, each weighted by its number of ratings."""
    if not found:
        return None
    weights = np.array([s.n_ratings for s in found], dtype=float)
    weights /= weights.sum()

    def mean(values: list[float]) -> float:
        return float(weights @ np.array(values))

    return Spreads(
        rate=mean([s.rate for s in found]),
        reader_sd=mean([s.reader_sd for s in found]),
        case_sd=mean([s.case_sd for s in found]),
        n_ratings=sum(s.n_ratings for s in found),
    )


def _reads(rng: np.random.Generator, sims: int, cases: int, readers: int, k: int) -> np.ndarray:
    """Which readers read each case: ``k`` of the panel at random, shape (sims, cases, k)."""
    if k == readers:
        return np.broadcast_to(np.arange(readers), (sims, cases, readers))
    return np.argsort(rng.random((sims, cases, readers)), axis=-1)[..., :k]


def _ratings(
    rng: np.random.Generator,
    mu: float,
    case_effect: np.ndarray,
    reader_effect: np.ndarray,
    who: np.ndarray,
) -> np.ndarray:
    """0/1 ratings, shape (sims, cases, k), of reports read by ``who``."""
    sims = np.arange(who.shape[0])[:, None, None]
    p = expit(mu + case_effect[:, :, None] + reader_effect[sims, who])
    return (rng.random(who.shape) < p).astype(float)


def _precision_cell(
    rng: np.random.Generator,
    *,
    mu: float,
    truth: float,
    case_sd: float,
    reader_sd: float,
    cases: int,
    readers: int,
    k: int,
    sims: int,
    target: float,
) -> tuple[float, float, float]:
    a = rng.normal(0, case_sd, (sims, cases))
    b = rng.normal(0, reader_sd, (sims, readers))
    who = _reads(rng, sims, cases, readers, k)
    y = _ratings(rng, mu, a, b, who)
    case_codes = np.repeat(np.arange(cases), k)
    half = np.empty(sims)
    covered = np.empty(sims, dtype=bool)
    for s in range(sims):
        found = stats.rate_interval(y[s].ravel(), case_codes, who[s].ravel())
        half[s] = (found.high - found.low) / 2
        covered[s] = found.low <= truth <= found.high
    return float(half.mean()), float((half <= target).mean()), float(covered.mean())


def _case_met(y: np.ndarray, rule: stats.CaseRule) -> np.ndarray:
    """Whether each simulated report meets the outcome under the analysis's case rule."""
    positive = y.sum(axis=-1)
    panel = y.shape[-1]
    if rule == "any":
        return positive >= 1
    if rule == "half":
        return 2 * positive >= panel
    return positive == panel


def _true_case_difference(
    rng: np.random.Generator,
    *,
    mu_ai: float,
    mu_original: float,
    case_sd: float,
    reader_sd: float,
    k: int,
    rule: stats.CaseRule,
) -> float:
    """AI - original share of cases meeting the outcome under ``rule``, in the population.

    With k readers per report the case-level rate depends on k and the rule, so it is found
    by one large simulation (200,000 cases, Monte Carlo SE below 0.2 points).
    """
    n = 200_000
    a = rng.normal(0, case_sd, (1, n))
    b = rng.normal(0, reader_sd, (1, n * k * 2)).reshape(1, n, 2 * k)
    found = []
    for mu, part in ((mu_ai, b[..., :k]), (mu_original, b[..., k:])):
        p = expit(mu + a[:, :, None] + part)
        found.append(_case_met((rng.random(p.shape) < p).astype(float), rule).mean())
    return float(found[0] - found[1])


def _non_inferiority_cell(
    rng: np.random.Generator,
    *,
    mu_ai: float,
    mu_original: float,
    truth: float,
    case_sd: float,
    reader_sd: float,
    cases: int,
    readers: int,
    k: int,
    sims: int,
    margin: float,
    rule: stats.CaseRule,
) -> tuple[float, float, float]:
    a = rng.normal(0, case_sd, (sims, cases))
    b = rng.normal(0, reader_sd, (sims, readers))
    # The AI report and the original of a case share its difficulty and the readers'
    # leniency; each is read by its own k readers of the panel, as assignment spreads them.
    who_ai = _reads(rng, sims, cases, readers, k)
    who_original = _reads(rng, sims, cases, readers, k)
    y_ai = _ratings(rng, mu_ai, a, b, who_ai)
    y_original = _ratings(rng, mu_original, a, b, who_original)
    case_codes = np.tile(np.repeat(np.arange(cases), k), 2)
    is_ai = np.repeat([True, False], cases * k)
    half = np.empty(sims)
    low = np.empty(sims)
    covered = np.empty(sims, dtype=bool)
    for s in range(sims):
        found = stats.paired_difference(
            np.concatenate([y_ai[s].ravel(), y_original[s].ravel()]),
            case_codes,
            np.concatenate([who_ai[s].ravel(), who_original[s].ravel()]),
            is_ai,
            rule=rule,
        )
        half[s] = (found.high - found.low) / 2
        low[s] = found.low
        covered[s] = found.low <= truth <= found.high
    return float(half.mean()), float((low > -margin).mean()), float(covered.mean())


def _check(condition: bool, message: str, code: str) -> None:
    if not condition:
        raise ApplicationError(message, code=code)


def study_plan(
    *,
    goal: Goal,
    rate: float,
    reader_sd: float = 0.5,
    case_sd: float = 1.0,
    reads_per_case: int | None = None,
    cases: tuple[int, ...] = DEFAULT_CASES,
    readers: tuple[int, ...] = DEFAULT_READERS,
    target_half_width: float | None = None,
    margin: float | None = None,
    ai_rate: float | None = None,
    rule: stats.CaseRule = "any",
    simulations: int = DEFAULT_SIMULATIONS,
    seed: int = 20240501,
) -> Plan:
    """Simulate each cases x readers design and report expected CI half-width or power.

    ``rate`` is the expected share of positive ratings (of the original reports, for
    non-inferiority; ``ai_rate`` defaults to the same). ``reads_per_case`` readers of the
    panel read each report (all of them when None or larger than the panel). Precision wants
    ``target_half_width``; non-inferiority wants ``margin`` and judges AI - original in the
    share of cases meeting the outcome under ``rule``, as the analysis page's comparison does.
    """
    _check(goal in GOALS, f"goal must be one of {', '.join(GOALS)}", "plan_goal")
    _check(0 < rate < 1, "The expected rate must lie strictly between 0 and 1.", "plan_rate")
    ai_rate = rate if ai_rate is None else ai_rate
    _check(0 < ai_rate < 1, "The expected AI rate must lie strictly between 0 and 1.", "plan_rate")
    _check(0 <= reader_sd <= 3 and 0 <= case_sd <= 3, "SDs must lie in 0-3 (logit).", "plan_sd")
    _check(rule in stats.CASE_RULES, f"rule must be one of {', '.join(stats.CASE_RULES)}", "rule")
    _check(bool(cases) and bool(readers), "Give at least one number of cases and readers.", "grid")
    _check(all(2 <= c <= 5000 for c in cases), "Cases must be between 2 and 5000.", "plan_cases")
    _check(all(1 <= r <= 100 for r in readers), "Readers must be between 1 and 100.", "readers")
    _check(
        len(cases) * len(readers) <= MAX_DESIGNS,
        f"At most {MAX_DESIGNS} designs (cases x readers) in one plan.",
        "plan_too_large",
    )
    _check(10 <= simulations <= 2000, "Simulations must be between 10 and 2000.", "plan_sims")
    _check(
        simulations * len(cases) * len(readers) <= MAX_WORK,
        f"Designs x simulations may not exceed {MAX_WORK}: fewer of either, please.",
        "plan_too_large",
    )
    _check(reads_per_case is None or reads_per_case >= 1, "Reads per case: at least 1.", "reads")
    if goal == "precision":
        _check(
            target_half_width is not None and 0 < target_half_width < 0.5,
            "Give the target half-width as a share between 0 and 0.5 (e.g. 0.05).",
            "plan_target",
        )
    else:
        _check(
            margin is not None and 0 < margin < 1,
            "Give the non-inferiority margin as a share between 0 and 1 (e.g. 0.10).",
            "plan_margin",
        )
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    total_sd = math.hypot(case_sd, reader_sd)
    mu_original = _intercept(rate, total_sd)
    mu_ai = _intercept(ai_rate, total_sd)
    cells: list[PlanCell] = []
    differences: dict[int, float] = {}
    for n_readers in sorted(set(readers)):
        k = min(reads_per_case or n_readers, n_readers)
        for n_cases in sorted(set(cases)):
            if goal == "precision":
                assert target_half_width is not None
                half, success, coverage = _precision_cell(
                    rng,
                    mu=mu_original,
                    truth=rate,
                    case_sd=case_sd,
                    reader_sd=reader_sd,
                    cases=n_cases,
                    readers=n_readers,
                    k=k,
                    sims=simulations,
                    target=target_half_width,
                )
                meets = half <= target_half_width and success >= POWER_TARGET
                ratings = n_cases * k
            else:
                assert margin is not None
                if k not in differences:
                    differences[k] = _true_case_difference(
                        rng,
                        mu_ai=mu_ai,
                        mu_original=mu_original,
                        case_sd=case_sd,
                        reader_sd=reader_sd,
                        k=k,
                        rule=rule,
                    )
                half, success, coverage = _non_inferiority_cell(
                    rng,
                    mu_ai=mu_ai,
                    mu_original=mu_original,
                    truth=differences[k],
                    case_sd=case_sd,
                    reader_sd=reader_sd,
                    cases=n_cases,
                    readers=n_readers,
                    k=k,
                    sims=simulations,
                    margin=margin,
                    rule=rule,
                )
                meets = success >= POWER_TARGET
                ratings = 2 * n_cases * k
            cells.append(PlanCell(n_cases, n_readers, k, ratings, half, success, coverage, meets))
    meeting = [c for c in cells if c.meets_goal]
    smallest = min(meeting, key=lambda c: (c.n_ratings, c.readers)) if meeting else None
    return Plan(
        goal=goal,
        rate=rate,
        ai_rate=ai_rate,
        reader_sd=reader_sd,
        case_sd=case_sd,
        reads_per_case=reads_per_case,
        target_half_width=target_half_width,
        margin=margin,
        rule=rule,
        simulations=simulations,
        seed=seed,
        cells=cells,
        smallest=smallest,
        true_difference=next(iter(differences.values()), math.nan)
        if len(set(differences.values())) == 1
        else math.nan,
        method=_method(goal, rule),
        seconds=time.perf_counter() - started,
    )


def _method(goal: Goal, rule: stats.CaseRule) -> str:
    model = (
        "Simulated studies: logit P(positive rating) = intercept + case effect + reader effect "
        "(normal, SDs as entered), the intercept chosen so that the population rate is the "
        "expected rate; each report read by the stated number of the panel's readers, chosen "
        "at random."
    )
    if goal == "precision":
        return (
            f"{model} Each study is analysed with the analysis page's rate interval: "
            f"{stats.INTERVAL_METHODS['variance_components']} (with one or two readers: "
            f"{stats.INTERVAL_METHODS['case_only']}). A design meets the goal when the mean "
            f"half-width is within the target and at least {POWER_TARGET:.0%} of studies "
            "reach it."
        )
    return (
        f"{model} The AI report and the original of a case share the case effect. Each study "
        "is analysed as the analysis page compares single reports: a report meets the outcome "
        f"when {stats.CASE_RULES[rule]} of the readers who read it say so; AI - original on "
        f"the paired cases with {stats.INTERVAL_METHODS['paired_variance_components']} (with "
        f"one or two readers: {stats.INTERVAL_METHODS['paired_case_only']}). Power: the share "
        "of studies whose lower bound lies above -margin; a design meets the goal at "
        f"{POWER_TARGET:.0%} power."
    )


def parse_sizes(text: str) -> tuple[int, ...]:
    """ "30, 50,100" -> (30, 50, 100); anything else than whole numbers is refused."""
    try:
        sizes = tuple(sorted({int(part) for part in text.replace(";", ",").split(",") if part}))
    except ValueError as error:
        raise ApplicationError(
            "List whole numbers separated by commas, e.g. 30, 50, 100.", code="plan_grid"
        ) from error
    if not sizes:
        raise ApplicationError("List at least one number.", code="plan_grid")
    return sizes
