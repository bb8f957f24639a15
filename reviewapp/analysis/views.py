"""Analysis pages: the list of studies, one study's results, and the downloads."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from reviewapp.analysis import arms, planning, selectors, stats
from reviewapp.analysis.api import PLAN_DEFAULTED, PlanInputSerializer, plan_query
from reviewapp.analysis.exports import export_response
from reviewapp.analysis.models import ExportAudit
from reviewapp.analysis.results import (
    DEFAULT_RESAMPLES,
    DEFAULT_RULE,
    DEFAULT_SEED,
    MAX_RESAMPLES,
    PREVALENCE_PREFIX,
    AnalysisParams,
    analysis_get_or_start,
    prevalences_from_query,
)
from reviewapp.core.errors import ApplicationError
from reviewapp.studies.blinding import blinding_summary


def _int_param(request: HttpRequest, name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(request.GET.get(name, default))
    except (TypeError, ValueError):
        return default
    return min(max(value, low), high)


def _analysis_params(request: HttpRequest) -> dict[str, Any]:
    """The analysis parameters of the page's query string (out of range: the nearest bound)."""
    rule = request.GET.get("rule", DEFAULT_RULE)
    return {
        "n_resamples": _int_param(request, "resamples", DEFAULT_RESAMPLES, 100, MAX_RESAMPLES),
        "seed": _int_param(request, "seed", DEFAULT_SEED, 0, 2**32 - 1),
        "rule": rule if rule in stats.CASE_RULES else DEFAULT_RULE,
        "min_reads": _int_param(request, "min_reads", 1, 1, 1000),
        "min_pair_cases": _int_param(
            request, "min_pair_cases", stats.DEFAULT_MIN_PAIR_CASES, 1, 100_000
        ),
        "prevalences": prevalences_from_query(request.GET),
    }


@login_required
@require_GET
def study_list(request: HttpRequest) -> HttpResponse:
    """Studies the person may analyse."""
    if not selectors.user_may_analyse(request.user):
        raise PermissionDenied
    studies = selectors.reader_study_list_for_analyst(user=request.user).order_by("-created_at")
    return render(request, "analysis/study_list.html", {"studies": studies})


def _api_query(params: AnalysisParams) -> str:
    """The page's analysis parameters as the API's query string (the page polls the API)."""
    query: dict[str, Any] = {
        "resamples": params.n_resamples,
        "seed": params.seed,
        "rule": params.rule,
        "min_reads": params.min_reads,
        "min_pair_cases": params.min_pair_cases,
        **{f"{PREVALENCE_PREFIX}{s}": w for s, w in params.prevalences.items()},
    }
    return urlencode(query)


@login_required
@require_GET
def study_analysis(request: HttpRequest, public_id: str) -> HttpResponse:
    """Headline table with CIs, case-level rates, agreement, per-reader results and plots;
    for a large study agreement and plots follow from a worker task, with its progress."""
    study = selectors.reader_study_get_for_analyst(user=request.user, public_id=public_id)
    params = AnalysisParams(**_analysis_params(request))
    results, status = analysis_get_or_start(reader_study=study, params=params)
    strata = sorted(
        {r["stratum"] for r in results["headline"]} - {stats.OVERALL, stats.WEIGHTED_OVERALL}
    )
    api = reverse("api-analysis-study", kwargs={"public_id": study.public_id})
    context: dict[str, Any] = {
        "study": study,
        "results": results,
        "status": status,
        "blinding": blinding_summary(reader_study=study),
        "case_rules": list(stats.CASE_RULES.items()),
        "prevalence_inputs": [
            (f"{PREVALENCE_PREFIX}{s}", s, results["rules"]["prevalences"].get(s, ""))
            for s in strata
        ],
        "datasets": [
            (value, label)
            for value, label in ExportAudit.Dataset.choices
            if value != ExportAudit.Dataset.SIDECAR
        ],
        # The sidecar states the rules of the analysis shown, so it carries the page's query.
        "sidecar_query": request.GET.urlencode(),
        "page_data": {
            "study": str(study.public_id),
            "bootstrap": results["bootstrap"],
            "status": status.as_dict(),
            # Where the page follows the computation of what is not shown yet.
            "poll": f"{api}?{_api_query(params)}",
        },
        "arms": arms.arms_results(reader_study=study, rule=params.rule),
    }
    return render(request, "analysis/study.html", context)


@login_required
@require_GET
def study_arms_export(request: HttpRequest, public_id: str) -> HttpResponse:
    """The ratings of a multi-arm study with each row's arm and the source id and name of
    each side (CSV): the rows the arms section is computed from."""
    study = selectors.reader_study_get_for_analyst(user=request.user, public_id=public_id)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{study.public_id}-arms.csv"'
    response["Cache-Control"] = "no-store"
    arms.arms_export_frame(reader_study=study).to_csv(response, index=False)
    return response


@login_required
@require_GET
def study_export(
    request: HttpRequest, public_id: str, dataset: str, fmt: str
) -> StreamingHttpResponse:
    """Download one table as CSV (``?bom=1``: with a UTF-8 BOM) or Parquet, or the sidecar
    JSON for the page's analysis parameters; audited."""
    study = selectors.reader_study_get_for_analyst(user=request.user, public_id=public_id)
    return export_response(
        user=request.user,  # type: ignore[arg-type]
        reader_study=study,
        dataset=dataset,
        fmt=fmt,
        interface=ExportAudit.Interface.WEB,
        bom=request.GET.get("bom") == "1",
        analysis=_analysis_params(request) if dataset == ExportAudit.Dataset.SIDECAR else None,
    )


@login_required
@require_GET
def study_plan(request: HttpRequest) -> HttpResponse:
    """Plan a study: cases x readers -> expected CI half-width or power, by simulation."""
    if not selectors.user_may_analyse(request.user):
        raise PermissionDenied
    # The form posts nothing: a plan is a computation, so it is a GET that can be bookmarked.
    data, plan_defaults = plan_query(request.GET, request.user)
    params = PlanInputSerializer(data=data)
    asked = "goal" in request.GET
    plan = None
    errors: list[str] = []
    if asked and params.is_valid():
        try:
            plan = planning.study_plan(**params.validated_data)
        except ApplicationError as exc:
            errors.append(exc.message)
    elif asked:
        errors = [f"{name}: {' '.join(map(str, msgs))}" for name, msgs in params.errors.items()]
    defaults = PlanInputSerializer(data={})
    defaults.is_valid()
    shown = {k: "" if v is None else v for k, v in defaults.validated_data.items()}
    shown.update({name: getattr(plan_defaults, name) for name in PLAN_DEFAULTED})
    shown.update({k: v for k, v in request.GET.items() if k in defaults.fields})
    shown["cases"] = request.GET.get("cases", ",".join(map(str, planning.DEFAULT_CASES)))
    shown["readers"] = request.GET.get("readers", ",".join(map(str, planning.DEFAULT_READERS)))
    context: dict[str, Any] = {
        "plan": plan,
        "errors": errors,
        "form": shown,
        "goals": list(planning.GOALS.items()),
        "case_rules": list(stats.CASE_RULES.items()),
        "readers_grid": sorted({c.readers for c in plan.cells}) if plan else [],
        "rows": _plan_rows(plan) if plan else [],
        "power_target": planning.POWER_TARGET,
        "defaults": plan_defaults,
    }
    return render(request, "analysis/plan.html", context, status=400 if errors else 200)


def _plan_rows(plan: planning.Plan) -> list[tuple[int, list[planning.PlanCell]]]:
    """The plan's cells as a table: one row per number of cases, readers across."""
    by_cases: dict[int, list[planning.PlanCell]] = {}
    for cell in sorted(plan.cells, key=lambda c: (c.cases, c.readers)):
        by_cases.setdefault(cell.cases, []).append(cell)
    return list(by_cases.items())
