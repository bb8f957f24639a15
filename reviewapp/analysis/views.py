"""Analysis pages: the list of studies, one study's results, and the downloads."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from reviewapp.analysis import selectors
from reviewapp.analysis.exports import export_response
from reviewapp.analysis.models import ExportAudit
from reviewapp.analysis.results import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    MAX_RESAMPLES,
    analysis_results,
)
from reviewapp.studies.blinding import blinding_summary


def _int_param(request: HttpRequest, name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(request.GET.get(name, default))
    except (TypeError, ValueError):
        return default
    return min(max(value, low), high)


@login_required
@require_GET
def study_list(request: HttpRequest) -> HttpResponse:
    """Studies the person may analyse."""
    if not selectors.user_may_analyse(request.user):
        raise PermissionDenied
    studies = selectors.reader_study_list_for_analysis(user=request.user).order_by("-created_at")
    return render(request, "analysis/study_list.html", {"studies": studies})


@login_required
@require_GET
def study_analysis(request: HttpRequest, public_id: str) -> HttpResponse:
    """Headline table with CIs, case-level rates, agreement, per-reader results and plots."""
    study = selectors.reader_study_get_for_analysis(user=request.user, public_id=public_id)
    n_resamples = _int_param(request, "resamples", DEFAULT_RESAMPLES, 100, MAX_RESAMPLES)
    seed = _int_param(request, "seed", DEFAULT_SEED, 0, 2**32 - 1)
    results = analysis_results(reader_study=study, n_resamples=n_resamples, seed=seed)
    context: dict[str, Any] = {
        "study": study,
        "results": results,
        "blinding": blinding_summary(reader_study=study),
        "datasets": ExportAudit.Dataset.choices,
        "page_data": {"study": str(study.public_id), "bootstrap": results["bootstrap"]},
    }
    return render(request, "analysis/study.html", context)


@login_required
@require_GET
def study_export(
    request: HttpRequest, public_id: str, dataset: str, fmt: str
) -> StreamingHttpResponse:
    """Download one dataset (ratings or spans) as CSV or Parquet; audited."""
    study = selectors.reader_study_get_for_analysis(user=request.user, public_id=public_id)
    return export_response(
        user=request.user,  # type: ignore[arg-type]
        reader_study=study,
        dataset=dataset,
        fmt=fmt,
        interface=ExportAudit.Interface.WEB,
    )
