"""Planning a study: the simulated plan agrees with textbook answers where they exist, uses
the analysis's own intervals, and is open to coordinators and analysts only.

alice (reader), carol (coordinator), dave (analyst), eve (no role).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable

import numpy as np
import pytest
from django.contrib.auth.models import AbstractUser
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient
from scipy.special import expit
from scipy.stats import norm

from reviewapp.analysis import planning
from reviewapp.analysis.results import _per_rating, ratings_frame
from reviewapp.core.errors import ApplicationError
from tests.analysis.conftest import RatedStudy


def test_precision_plan_without_case_or_reader_spread_gives_the_binomial_half_width() -> None:
    # No case or reader effects: 150 cases x 2 readers are 300 independent ratings at 50%,
    # whose 95% CI half-width is 1.96 * sqrt(0.25 / 300) = 5.7 points. (Two readers: the
    # page's interval then uses case variation only, with cases - 1 df, as this model has.)
    plan = planning.study_plan(
        goal="precision",
        rate=0.5,
        reader_sd=0.0,
        case_sd=0.0,
        cases=(150,),
        readers=(2,),
        target_half_width=0.06,
        simulations=300,
    )
    (cell,) = plan.cells
    assert cell.n_ratings == 300
    assert cell.mean_half_width == pytest.approx(1.96 * math.sqrt(0.25 / 300), rel=0.08)
    assert 0.9 <= cell.coverage <= 0.99


def test_more_readers_narrow_the_interval_when_readers_differ() -> None:
    # With a reader SD of 1.0 the reader variance dominates: 300 cases with 3 readers give a
    # wider interval than 50 cases with 8 readers, which is what the planner is for.
    plan = planning.study_plan(
        goal="precision",
        rate=0.7,
        reader_sd=1.0,
        cases=(50, 300),
        readers=(3, 8),
        target_half_width=0.2,
        simulations=100,
    )
    width = {(c.cases, c.readers): c.mean_half_width for c in plan.cells}
    assert width[(50, 8)] < width[(300, 3)]
    assert width[(300, 8)] < width[(50, 8)]
    assert plan.smallest is not None
    assert (plan.smallest.cases, plan.smallest.readers) == (50, 8)
    assert all(c.meets_goal == (c.mean_half_width <= 0.2 and c.success >= 0.8) for c in plan.cells)
    cheapest = min((c for c in plan.cells if c.meets_goal), key=lambda c: c.n_ratings)
    assert plan.smallest == cheapest


def test_non_inferiority_power_matches_the_normal_approximation_for_independent_cases() -> None:
    # One reader per report, no case or reader effects: each report meets the outcome with
    # probability 0.7 independently, so AI - original on 200 pairs has SD sqrt(2 * 0.21 / 200)
    # and the power to exclude -10 points is about Phi(0.10 / SD - 1.96) = 59%. Two readers:
    # the page's interval then uses case variation only (pairs - 1 df), as this model has;
    # from three readers on it also allows for a reader spread it cannot rule out.
    plan = planning.study_plan(
        goal="non_inferiority",
        rate=0.7,
        reader_sd=0.0,
        case_sd=0.0,
        reads_per_case=1,
        cases=(200,),
        readers=(2,),
        margin=0.10,
        simulations=400,
    )
    (cell,) = plan.cells
    sd = math.sqrt(2 * 0.21 / 200)
    assert cell.success == pytest.approx(norm.cdf(0.10 / sd - 1.96), abs=0.08)
    assert cell.mean_half_width == pytest.approx(1.96 * sd, rel=0.1)
    assert plan.true_difference == pytest.approx(0.0, abs=0.01)


def test_non_inferiority_is_not_shown_when_the_ai_is_clearly_worse() -> None:
    plan = planning.study_plan(
        goal="non_inferiority",
        rate=0.8,
        ai_rate=0.6,
        cases=(100,),
        readers=(3,),
        margin=0.05,
        rule="half",
        simulations=50,
    )
    assert plan.cells[0].success < 0.05
    assert plan.smallest is None
    assert "half of the panel" in plan.method


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"rate": 1.0}, "plan_rate"),
        ({"target_half_width": None}, "plan_target"),
        ({"cases": tuple(range(10, 80, 10)), "readers": tuple(range(2, 9))}, "plan_too_large"),
        ({"simulations": 2000, "cases": (30, 50, 100, 200, 300)}, "plan_too_large"),
    ],
)
def test_a_plan_that_cannot_be_answered_is_refused_with_a_reason(
    changes: dict[str, object], code: str
) -> None:
    arguments: dict[str, object] = {
        "goal": "precision",
        "rate": 0.7,
        "target_half_width": 0.05,
        "cases": (30,),
        "readers": (3,),
    }
    with pytest.raises(ApplicationError) as refused:
        planning.study_plan(**{**arguments, **changes})  # type: ignore[arg-type]
    assert refused.value.code == code


def test_the_default_plan_is_answered_in_seconds() -> None:
    # 20 designs x 200 simulated studies. A generous bound: the machine running tests is
    # shared; the point is seconds, not minutes.
    plan = planning.study_plan(goal="precision", rate=0.7, target_half_width=0.05)
    assert len(plan.cells) == len(planning.DEFAULT_CASES) * len(planning.DEFAULT_READERS)
    assert plan.seconds < 15


# ---- page and API ---------------------------------------------------------------------------

SMALL = {"cases": "30,60", "readers": "3,5", "simulations": 20, "target_half_width": 0.2}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("persona", "status"),
    [("reader", 403), ("outsider", 403), ("coordinator", 200), ("analyst", 200)],
)
def test_coordinators_and_analysts_may_plan_and_readers_may_not(
    persona: str,
    status: int,
    request: pytest.FixtureRequest,
    api_client_for: Callable[[AbstractUser | None], APIClient],
) -> None:
    user = request.getfixturevalue(persona)
    client = Client()
    client.force_login(user)
    page = client.get(reverse("analysis:plan"), {"goal": "precision", **SMALL})
    assert page.status_code == status
    api = api_client_for(user).get(reverse("api-analysis-plan"), {"goal": "precision", **SMALL})
    assert api.status_code == status
    if status == 200:
        assert len(api.json()["cells"]) == 4
        assert 'id="plan-table"' in page.content.decode()


@pytest.mark.django_db
def test_planning_page_asks_anonymous_visitors_to_log_in(
    api_client_for: Callable[[AbstractUser | None], APIClient],
) -> None:
    assert Client().get(reverse("analysis:plan")).status_code == 302
    assert api_client_for(None).get(reverse("api-analysis-plan")).status_code in (401, 403)


@pytest.mark.django_db
def test_planning_page_shows_the_table_its_method_and_the_smallest_design(
    coordinator: AbstractUser,
) -> None:
    client = Client()
    client.force_login(coordinator)
    blank = client.get(reverse("analysis:plan")).content.decode()
    assert 'id="plan-form"' in blank
    assert 'id="plan-table"' not in blank
    page = client.get(
        reverse("analysis:plan"), {"goal": "non_inferiority", "margin": 0.3, **SMALL}
    ).content.decode()
    assert 'data-cases="60" data-readers="5"' in page
    assert "each reader's part from leaving them out of the report's" in html.unescape(page)
    assert "Smallest design meeting the goal" in page or "No design in this grid" in page
    assert reverse("analysis:plan") in client.get(reverse("analysis:study_list")).content.decode()


@pytest.mark.django_db
def test_planning_api_refuses_unreadable_input_with_a_code(
    analyst: AbstractUser, api_client_for: Callable[[AbstractUser | None], APIClient]
) -> None:
    client = api_client_for(analyst)
    url = reverse("api-analysis-plan")
    bad_grid = client.get(url, {"goal": "precision", "readers": "three"})
    assert bad_grid.status_code == 400
    too_big = client.get(url, {"goal": "precision", "simulations": 2000})
    assert too_big.status_code == 400
    assert too_big.json()["code"] == "plan_too_large"
    page = Client()
    page.force_login(analyst)
    refused = page.get(reverse("analysis:plan"), {"goal": "precision", "simulations": 2000})
    assert refused.status_code == 400
    assert "Designs x simulations" in refused.content.decode()


# ---- defaults from this installation's past studies ----------------------------------------


def test_spreads_from_ratings_recover_the_rate_and_the_spreads_of_the_planning_model() -> None:
    # 300 cases x 8 readers from the planner's own model; the moment estimates land near the
    # values the ratings were drawn with (averaged over 10 studies).
    rng = np.random.default_rng(4)
    cases, readers = 300, 8
    c, r = np.repeat(np.arange(cases), readers), np.tile(np.arange(readers), cases)
    for reader_sd, case_sd in [(0.0, 1.0), (1.0, 0.5)]:
        mu = planning._intercept(0.3, math.hypot(reader_sd, case_sd))
        found = []
        for _ in range(10):
            logit_p = mu + rng.normal(0, case_sd, cases)[c] + rng.normal(0, reader_sd, readers)[r]
            y = (rng.random(c.size) < expit(logit_p)).astype(float)
            spreads = planning.spreads_from_ratings(y, c, r)
            assert spreads is not None
            found.append((spreads.rate, spreads.reader_sd, spreads.case_sd))
        rate, reader_found, case_found = np.mean(found, axis=0)
        assert rate == pytest.approx(0.3, abs=0.03)
        assert reader_found == pytest.approx(reader_sd, abs=0.3)
        assert case_found == pytest.approx(case_sd, abs=0.3)
    assert planning.spreads_from_ratings(np.ones(100), c[:100], r[:100]) is None


@pytest.mark.django_db
def test_plan_defaults_come_from_past_studies_the_user_may_analyse_and_say_so(
    pairwise: RatedStudy,
    analyst: AbstractUser,
    other_coordinator: AbstractUser,
    api_client_for: Callable[[AbstractUser | None], APIClient],
) -> None:
    url = reverse("api-analysis-plan")
    found = api_client_for(analyst).get(url, {"goal": "precision", **SMALL}).json()
    defaults = found["defaults"]
    assert defaults["studies"] == ["MIMIC-CXR demo"]
    assert defaults["n_ratings"] == 72
    # The demo's first outcome on its ratings, recomputed from the export's frame.
    per = _per_rating(ratings_frame(reader_study=pairwise.study), ["outcome_equivalent_or_better"])
    assert defaults["rate"] == pytest.approx(per["outcome_equivalent_or_better"].mean(), abs=5e-4)
    assert (found["rate"], found["reader_sd"], found["case_sd"]) == (
        defaults["rate"],
        defaults["reader_sd"],
        defaults["case_sd"],
    )
    stated = api_client_for(analyst).get(url, {"goal": "precision", "rate": 0.4, **SMALL}).json()
    assert stated["rate"] == 0.4
    client = Client()
    client.force_login(analyst)
    page = html.unescape(client.get(reverse("analysis:plan")).content.decode())
    assert "come from 1 past study of this installation (MIMIC-CXR demo" in page
    assert f'name="rate" min="0.001" max="0.999" step="any" value="{defaults["rate"]}"' in page
    # A coordinator of other studies does not get (or learn of) this one: built-in defaults.
    theirs = api_client_for(other_coordinator).get(url, {"goal": "precision", **SMALL}).json()
    assert theirs["defaults"]["studies"] == []
    assert theirs["rate"] == 0.7
    client.force_login(other_coordinator)
    assert "are the built-in values" in client.get(reverse("analysis:plan")).content.decode()
