"""The analysis page and API: the numbers equal those an analyst recomputes from the CSV."""

from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
import statsmodels.formula.api as smf
from django.contrib.auth.models import AbstractUser
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient
from scipy.special import expit, logit
from scipy.stats import t as student_t
from statsmodels.stats.proportion import proportion_confint

from reviewapp.analysis import stats
from reviewapp.analysis.models import ExportAudit
from reviewapp.analysis.templatetags.analysis_format import pct
from tests.analysis.conftest import RatedStudy

pytestmark = pytest.mark.django_db

OUTCOMES = {
    "equivalent_or_better": {"similar", "ai_better", "ai_much_better"},
    "same_or_superior_management": {"similar", "ai_better", "ai_much_better", "original_better"},
}


def _client(user: AbstractUser) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _csv(client: Client, rated: RatedStudy, dataset: str = "ratings") -> pd.DataFrame:
    url = reverse(
        "analysis:export",
        kwargs={"public_id": rated.study.public_id, "dataset": dataset, "fmt": "csv"},
    )
    response = client.get(url)
    assert response.status_code == 200
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    return pd.read_csv(io.BytesIO(body), dtype={"stratum": str}, keep_default_na=False)


def _api(rated: RatedStudy, client: APIClient, **params: Any) -> dict[str, Any]:
    url = reverse("api-analysis-study", kwargs={"public_id": rated.study.public_id})
    response = client.get(url, params)
    assert response.status_code == 200, response.content[:500]
    return response.json()


def _page_rows(page: str) -> dict[tuple[str, str, str], dict[str, str]]:
    """Headline rows of the page: (outcome, source, stratum) -> {cell class: text}."""
    rows = {}
    pattern = re.compile(
        r'<tr data-outcome="([^"]+)" data-source="([^"]+)" data-stratum="([^"]+)">(.*?)</tr>', re.S
    )
    for outcome, source, stratum, body in pattern.findall(page):
        cells = {
            cls: html.unescape(re.sub(r"<[^>]+>", "", text)).strip()
            for cls, text in re.findall(r'<td class="([^"]+)">(.*?)</td>', body, re.S)
        }
        rows[(outcome, source, html.unescape(stratum))] = cells
    return rows


def test_page_and_api_numbers_equal_those_recomputed_from_the_csv_with_pandas(
    pairwise: RatedStudy,
    analyst: AbstractUser,
    api_client_for: Callable[[AbstractUser | None], APIClient],
) -> None:
    client = _client(analyst)
    page_response = client.get(reverse("analysis:study", args=[pairwise.study.public_id]))
    assert page_response.status_code == 200
    page = page_response.content.decode()
    shown = _page_rows(page)
    data = _api(pairwise, api_client_for(analyst))
    headline = {(r["outcome"], r["source"], r["stratum"]): r for r in data["headline"]}
    frame = _csv(client, pairwise)

    # The analyst's own recomputation: plain pandas on the downloaded CSV.
    assert set(frame["answer_value"]) <= set().union(*OUTCOMES.values()) | {
        "original_much_better",
        "neither_correct",
    }
    checked = 0
    for outcome, values in OUTCOMES.items():
        frame[outcome] = frame["answer_value"].isin(values).astype(int)
        # The exported derived outcome is the same rule.
        assert (frame[outcome] == frame[f"outcome_{outcome}"]).all()
        groups = [(s, part) for s, part in frame.groupby("stratum")] + [("overall", frame)]
        for stratum, part in groups:
            key = (outcome, "ai", stratum)
            rate = part[outcome].mean()
            assert headline[key]["estimate"] == pytest.approx(rate, abs=1e-12)
            assert headline[key]["n_ratings"] == len(part)
            assert headline[key]["n_cases"] == part["case"].nunique()
            assert shown[key]["rate"] == pct(rate)
            assert shown[key]["n-ratings"] == str(len(part))
            per_case = part.groupby("case")[outcome].agg(["sum", "count"])
            rules = {
                "any": per_case["sum"] >= 1,
                "half": per_case["sum"] >= per_case["count"] / 2,
                "all": per_case["sum"] == per_case["count"],
            }
            for rule, met in rules.items():
                k, n = int(met.sum()), len(met)
                low, high = proportion_confint(k, n, method="wilson")
                level = headline[key]["case_level"][rule]
                assert (level["k"], level["n"]) == (k, n)
                assert (level["low"], level["high"]) == (pytest.approx(low), pytest.approx(high))
                assert shown[key][f"case-{rule}"].startswith(
                    f"{pct(k / n)} [{pct(low)}, {pct(high)}] {k}/{n}"
                )
            checked += 1
        # The interval from the CSV, by hand: two-way cluster-robust variance (cases plus
        # readers minus ratings), floored at half the case piece, Satterthwaite df (never fewer
        # than readers - 1 or cases - 1), logit scale.
        for stratum, part in groups:
            y = part[outcome].astype(float)
            p = y.mean()
            psi = (y - p) / len(y)
            by_case = psi.groupby(part["case"]).sum()
            by_reader = psi.groupby(part["reader"]).sum()
            n_c, n_r = len(by_case), len(by_reader)
            v_case = (by_case**2).sum() * n_c / (n_c - 1)
            v_reader = (by_reader**2).sum() * n_r / (n_r - 1)
            variance = max(v_case + v_reader - (psi**2).sum(), v_case / 2)
            df = variance**2 / (v_case**2 / (n_c - 1) + v_reader**2 / (n_r - 1))
            df = max(df, min(n_c, n_r) - 1)
            half = student_t.ppf(0.975, df) * math.sqrt(variance) / (p * (1 - p))
            low, high = expit(logit(p) - half), expit(logit(p) + half)
            row = headline[(outcome, "ai", stratum)]
            assert (row["low"], row["high"]) == (pytest.approx(low), pytest.approx(high))
            assert row["method"] == "variance_components"
            assert shown[(outcome, "ai", stratum)]["ci"] == f"[{pct(low)}, {pct(high)}]"
            assert "variance components" in shown[(outcome, "ai", stratum)]["method"]
        by_cohort = frame.groupby("cohort")[outcome].agg(["mean", "count"])
        shown_cohorts = {r["cohort"]: r for r in data["by_cohort"] if r["outcome"] == outcome}
        assert set(shown_cohorts) == {"US", "India"}
        for cohort, row in shown_cohorts.items():
            assert row["estimate"] == pytest.approx(by_cohort.loc[cohort, "mean"])
            assert row["n_ratings"] == by_cohort.loc[cohort, "count"]
        per_reader = frame.groupby("reader")[outcome].mean()
        for row in data["per_reader"]:
            if row["outcome"] == outcome:
                assert row["rate"] == pytest.approx(per_reader[row["reader"]])
    assert checked == 2 * 3
    assert "2000 resamples, seed 20240501" in page


def test_page_shows_plots_agreement_and_position_bias(
    pairwise: RatedStudy, analyst: AbstractUser
) -> None:
    client = _client(analyst)
    page = client.get(reverse("analysis:study", args=[pairwise.study.public_id])).content.decode()
    for name in ("scale", "forest", "per_reader"):
        assert f'id="plot-{name}"' in page
    assert page.count('src="data:image/svg+xml;base64,') == 3
    assert 'download="' in page
    for coefficient in ("Fleiss", "Gwet", "Krippendorff"):
        assert coefficient in page
    assert 'id="position-bias"' in page
    assert "R01\u2013R02" in page
    # 24 cases: below the range the intervals' coverage was simulated for, and the page says so.
    assert 'id="coverage-range-note"' in page
    assert "This study has\n    24 cases, fewer than the 30" in page
    # Usernames stay out of the analysis too.
    assert "alice" not in page.split("<main>", 1)[1]


def test_agreement_and_position_bias_in_the_api_match_the_csv(
    pairwise: RatedStudy,
    analyst: AbstractUser,
    api_client_for: Callable[[AbstractUser | None], APIClient],
) -> None:
    data = _api(pairwise, api_client_for(analyst), resamples=200)
    frame = _csv(_client(analyst), pairwise)
    (agreement,) = data["agreement"]
    # Med-Gemini's scale is ordered from "AI much better" to "original much better"; "X:
    # neither correct" sits outside the order and is reported apart.
    scale = ["ai_much_better", "ai_better", "similar", "original_better", "original_much_better"]
    assert agreement["scale"] == "ordinal"
    assert agreement["options"] == scale
    on_scale = frame[frame["answer_value"].isin(scale)]
    counts = stats.category_counts(on_scale, value="answer_value", categories=scale)
    assert agreement["gwet_ac1"] == pytest.approx(stats.gwet_ac1(counts))
    assert agreement["fleiss_kappa"] == pytest.approx(stats.fleiss_kappa(counts)[0])
    assert agreement["krippendorff_alpha"] == pytest.approx(
        stats.krippendorff_alpha(
            on_scale, value="answer_value", categories=scale, level="ordinal", case="imaging_study"
        )
    )
    for name in ("fleiss", "alpha", "ac1", "fleiss_linear", "fleiss_quadratic"):
        ci = agreement["ci"][name]
        assert ci["low"] <= ci["estimate"] <= ci["high"]
    off = agreement["off_scale"]
    assert off["options"] == ["neither_correct"]
    assert off["rate"]["n_events"] == int((frame["answer_value"] == "neither_correct").sum())
    assert agreement["n_readers"] == 3
    assert len(agreement["pairs"]) == 3
    (bias,) = data["position_bias"]
    favours_candidate = frame["answer_value"].isin(["ai_much_better", "ai_better"])
    favours_original = frame["answer_value"].isin(["original_better", "original_much_better"])
    a_wins = ((frame["candidate_side"] == "A") & favours_candidate) | (
        (frame["candidate_side"] == "B") & favours_original
    )
    assert bias["a_wins"] == int(a_wins.sum())
    assert bias["a_wins"] + bias["b_wins"] == int((favours_candidate | favours_original).sum())
    assert bias["a_wins"] + bias["b_wins"] + bias["no_preference"] == 72
    assert data["bootstrap"]["n_resamples"] == 200
    assert data["plots"] == {}


def test_error_study_compares_ai_with_original_on_paired_cases(
    error_study: RatedStudy,
    analyst: AbstractUser,
    api_client_for: Callable[[AbstractUser | None], APIClient],
) -> None:
    data = _api(error_study, api_client_for(analyst), resamples=200)
    (comparison,) = data["comparisons"]
    # See build_error_study: 11 usable imaging studies (study 5 has poor images); AI reports
    # erroneous in 7, originals in 3, both in 2 -> AI only 5, original only 1, neither 3.
    assert comparison["outcome"] == "significant_error"
    assert (comparison["n_pairs"], comparison["both"]) == (11, 2)
    assert (comparison["ai_only"], comparison["original_only"], comparison["neither"]) == (5, 1, 3)
    assert comparison["exact"]
    assert comparison["p_value"] == pytest.approx(2 * 7 / 64)
    rates = {(r["source"], r["stratum"]): r for r in data["headline"]}
    assert rates[("ai", "overall")]["estimate"] == pytest.approx(7 / 11)
    assert rates[("original", "overall")]["estimate"] == pytest.approx(3 / 11)
    by_category = {(r["category"], r["source"]): r for r in data["errors"]["by_category"]}
    assert by_category[("Finding present that is not", "ai")] == {
        "category": "Finding present that is not",
        "source": "ai",
        "count": 14,
        "significant": 14,
    }
    assert by_category[("Incorrect location", "original")]["significant"] == 0
    per_report = {r["source"]: r for r in data["errors"]["per_report"]}
    assert per_report["ai"]["errors_per_report"] == pytest.approx(28 / 22)


def test_page_recomputes_with_the_resamples_and_seed_asked_for(
    pairwise: RatedStudy, coordinator: AbstractUser
) -> None:
    page = (
        _client(coordinator)
        .get(
            reverse("analysis:study", args=[pairwise.study.public_id]),
            {"resamples": 300, "seed": 7},
        )
        .content.decode()
    )
    assert "300 resamples, seed 7" in page


def test_a_study_without_ratings_says_so(pairwise: RatedStudy, analyst: AbstractUser) -> None:
    from reviewapp.studies.models import Rating

    Rating.objects.all().delete()
    page = _client(analyst).get(reverse("analysis:study", args=[pairwise.study.public_id]))
    assert page.status_code == 200
    assert "No submitted ratings yet." in page.content.decode()


# ---- who may see what ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "pairwise_status", "error_status"),
    [
        ("analyst", 200, 200),
        ("admin_user", 200, 200),
        ("coordinator", 200, 404),  # carol coordinates the pairwise study only
        ("other_coordinator", 404, 200),  # grace coordinates the error study only
        ("reader", 403, 403),
        ("outsider", 403, 403),
    ],
)
def test_only_analysts_coordinators_of_the_study_and_admins_get_analysis_and_exports(
    request: pytest.FixtureRequest,
    persona: str,
    pairwise_status: int,
    error_status: int,
    pairwise: RatedStudy,
    error_study: RatedStudy,
    api_client_for: Callable[[AbstractUser | None], APIClient],
) -> None:
    user = request.getfixturevalue(persona)
    web, api = _client(user), api_client_for(user)
    for rated, expected in ((pairwise, pairwise_status), (error_study, error_status)):
        sid = rated.study.public_id
        urls = [
            (web, reverse("analysis:study", args=[sid])),
            (web, reverse("analysis:export", args=[sid, "ratings", "csv"])),
            (web, reverse("analysis:export", args=[sid, "spans", "parquet"])),
            (api, reverse("api-analysis-study", args=[sid]) + "?resamples=100"),
            (api, reverse("api-analysis-export", args=[sid, "ratings", "csv"])),
        ]
        for client, url in urls:
            assert client.get(url).status_code == expected, (persona, url)
    listing = web.get(reverse("analysis:study_list"))
    if pairwise_status == 403:
        assert listing.status_code == 403
    else:
        names = listing.content.decode()
        assert ("MIMIC-CXR demo" in names) == (pairwise_status == 200)
        assert ("Error correction demo" in names) == (error_status == 200)
    allowed = (pairwise_status == 200) + (error_status == 200)
    assert ExportAudit.objects.count() == 3 * allowed


def test_anonymous_people_are_sent_to_log_in_or_refused(
    pairwise: RatedStudy, api_client_for: Callable[[AbstractUser | None], APIClient]
) -> None:
    sid = pairwise.study.public_id
    page = Client().get(reverse("analysis:study", args=[sid]))
    assert page.status_code == 302
    assert "login" in page["Location"]
    assert Client().get(reverse("analysis:export", args=[sid, "ratings", "csv"])).status_code == 302
    api = api_client_for(None)
    assert api.get(reverse("api-analysis-study", args=[sid])).status_code in (401, 403)
    assert api.get(reverse("api-analysis-export", args=[sid, "ratings", "csv"])).status_code in (
        401,
        403,
    )
    assert not ExportAudit.objects.exists()


def test_api_rejects_out_of_range_resamples_with_a_clear_message(
    pairwise: RatedStudy,
    analyst: AbstractUser,
    api_client_for: Callable[[AbstractUser | None], APIClient],
) -> None:
    url = reverse("api-analysis-study", args=[pairwise.study.public_id])
    response = api_client_for(analyst).get(url, {"resamples": 10_000_000})
    assert response.status_code == 400
    assert "resamples" in response.json()


def test_schema_documents_the_analysis_endpoints(
    analyst: AbstractUser, api_client_for: Callable[[AbstractUser | None], APIClient]
) -> None:
    response = api_client_for(analyst).get("/api/schema/", HTTP_ACCEPT="application/json")
    schema = response.json() if response["Content-Type"].startswith("application/json") else None
    text = response.content.decode()
    assert "reader_study_analysis" in text
    assert "reader_study_export" in text
    assert schema is None or any("analysis/studies" in p for p in schema["paths"])


def test_scripts_may_ask_for_the_file_type_they_want(
    pairwise: RatedStudy,
    analyst: AbstractUser,
    reader: AbstractUser,
    api_client_for: Callable[[AbstractUser | None], APIClient],
) -> None:
    url = reverse("api-analysis-export", args=[pairwise.study.public_id, "ratings", "csv"])
    response = api_client_for(analyst).get(url, HTTP_ACCEPT="text/csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    refused = api_client_for(reader).get(url, HTTP_ACCEPT="text/csv")
    assert refused.status_code == 403
    assert b"detail" in refused.content


def test_error_study_page_states_the_case_rule_and_gives_the_difference_with_its_ci(
    error_study: RatedStudy,
    analyst: AbstractUser,
    api_client_for: Callable[[AbstractUser | None], APIClient],
) -> None:
    url = reverse("analysis:study", args=[error_study.study.public_id])
    page = _client(analyst).get(url, {"rule": "all", "resamples": 200}).content.decode()
    assert "all readers</strong> of the readers who read it" in page
    # The difference's interval states its method and what it reflects with few readers.
    assert "case and reader variance components" in page
    assert (
        '<span id="difference-caveat">Where the paired reports were read by only one or two' in page
    )
    (comparison,) = _api(error_study, api_client_for(analyst), resamples=200, rule="all")[
        "comparisons"
    ]
    assert comparison["rule"] == "all"
    # Two readers in all: the reader spread cannot be estimated, as the page says.
    assert comparison["difference_method"] == "paired_case_only"
    # Both readers agree on every report here, so "all" and "any" give the same 7/11 - 3/11.
    assert comparison["difference"] == pytest.approx(4 / 11)
    low, high = comparison["difference_low"], comparison["difference_high"]
    assert low < 4 / 11 < high
    assert f"{pct(4 / 11)} [{pct(low)}, {pct(high)}]" in html.unescape(page)
    refused = api_client_for(analyst).get(
        reverse("api-analysis-study", args=[error_study.study.public_id]), {"rule": "most"}
    )
    assert refused.status_code == 400


def test_outcome_by_reading_position_equals_a_pandas_recomputation_and_states_its_method(
    pairwise: RatedStudy,
    analyst: AbstractUser,
    api_client_for: Callable[[AbstractUser | None], APIClient],
) -> None:
    client = _client(analyst)
    page = client.get(reverse("analysis:study", args=[pairwise.study.public_id])).content.decode()
    assert "Outcome by reading position" in page
    assert "order they opened the cases" in page
    rows = {
        (r["outcome"], r["source"]): r
        for r in _api(pairwise, api_client_for(analyst), resamples=200)["reading_position"]
    }
    frame = _csv(client, pairwise)
    # Each reader's sequence by when they opened the case, as 0 (first) .. 1 (last).
    rank = frame.groupby("reader")["opened_at"].rank(method="first")
    size = frame.groupby("reader")["opened_at"].transform("size")
    frame["position"] = (rank - 1) / (size - 1)
    quarter = (frame["position"] * 4).astype(int).clip(upper=3)
    for outcome in OUTCOMES:
        row = rows[(outcome, "ai")]
        y = frame[f"outcome_{outcome}"].astype(float)
        for i, label in enumerate(stats.POSITION_BINS):
            assert row["quarters"][label]["estimate"] == pytest.approx(y[quarter == i].mean())
        fit = smf.ols(
            "y ~ x + C(reader)",
            pd.DataFrame({"y": y, "x": frame["position"], "reader": frame["reader"]}),
        ).fit()
        assert row["trend"] == pytest.approx(fit.params["x"], abs=1e-9)
        assert row["low"] < row["trend"] < row["high"]
        assert f'data-outcome="{outcome}" data-source="ai"' in page


def test_cached_analysis_is_recomputed_when_a_rating_changes(pairwise: RatedStudy) -> None:
    from reviewapp.analysis.results import analysis_results
    from reviewapp.studies.models import Rating

    first = analysis_results(reader_study=pairwise.study, n_resamples=100, with_plots=False)
    again = analysis_results(reader_study=pairwise.study, n_resamples=100, with_plots=False)
    assert again == first
    Rating.objects.filter(assignment__reader_study=pairwise.study).first().delete()  # type: ignore[union-attr]
    after = analysis_results(reader_study=pairwise.study, n_resamples=100, with_plots=False)
    assert after["n_ratings"] == first["n_ratings"] - 1


def test_the_analysis_is_cached_in_redis_where_every_process_finds_it(
    pairwise: RatedStudy,
) -> None:
    # Web processes and workers each have their own memory; only a cache they share spares
    # the next process the computation. A second connection stands for another process.
    import redis
    from django.conf import settings
    from django.core.cache import cache, caches

    from reviewapp.analysis.results import analysis_results

    client = redis.Redis.from_url(settings.REDIS_URL)
    pattern = cache.make_key("analysis:results:*")
    before = set(client.scan_iter(pattern))
    computed = analysis_results(reader_study=pairwise.study, n_resamples=100, with_plots=False)
    stored = sorted(key.decode() for key in set(client.scan_iter(pattern)) - before)
    # The headline and the rest are kept apart: the rest may come from a worker later.
    assert [key.rsplit(":", 1)[1] for key in stored] == ["headline", "rest-nofigures"]
    other = caches.create_connection("default")
    found: dict = {}
    for key in stored:
        found.update(other.get(key.split(":", 2)[2]))
    assert found == computed
