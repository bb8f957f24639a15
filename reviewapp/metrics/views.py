"""Metric pages for analysts and coordinators: one study's metrics and agreement, run the
metrics, download the ReXVal-style table. Never for readers: every page names sources."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from reviewapp.analysis.selectors import reader_study_get_for_analyst
from reviewapp.core.access import role_required
from reviewapp.core.roles import Role
from reviewapp.metrics import selectors, services, tables

ROLES = (Role.ANALYST, Role.COORDINATOR, Role.ADMIN)


@role_required(*ROLES)
@require_GET
def study_metrics(request: HttpRequest, public_id: str) -> HttpResponse:
    """Per-source metric means beside expert rates, the agreement table, scatters, jobs."""
    study = reader_study_get_for_analyst(user=request.user, public_id=public_id)
    overview = selectors.metrics_overview(reader_study=study)
    columns = overview.expert.columns
    labels = {c.id: c.label for c in columns}
    scatter_outcome = request.GET.get("outcome", columns[0].id if columns else "")
    if scatter_outcome not in labels and columns:
        scatter_outcome = columns[0].id
    scatters = [
        (
            name,
            tables.scatter_svg(
                overview.points[name][scatter_outcome],
                x_label=name,
                y_label=f"{labels[scatter_outcome]} (readers' mean)",
                title=name,
            ),
        )
        for name in overview.values
        if scatter_outcome
    ]
    jobs = selectors.metric_job_list(reader_study=study)[:20]
    context: dict[str, Any] = {
        "study": study,
        "overview": overview,
        "columns": columns,
        "labels": labels,
        "source_rows": [
            {**row, "cells": list(zip(overview.values, row["metrics"], strict=True))}
            for row in overview.source_rows
        ],
        "agreement": [
            {**row, "outcome_label": labels[row["outcome"]]} for row in overview.agreement
        ],
        "source_agreement": [
            {**row, "outcome_label": labels[row["outcome"]]} for row in overview.source_agreement
        ],
        "scatters": scatters,
        "scatter_outcome": scatter_outcome,
        "scatter_label": labels.get(scatter_outcome, ""),
        "jobs": jobs,
        "run_metrics": [spec["name"] for spec in services.metric_specs()],
        "page_data": {
            "socket": f"/ws/metrics/studies/{study.public_id}/",
            "jobs": [str(job.public_id) for job in jobs if not job.is_finished],
            "api": f"/api/v1/metrics/studies/{study.public_id}/jobs",
        },
    }
    return render(request, "metrics/study.html", context)


@role_required(*ROLES)
@require_POST
def study_metrics_run(request: HttpRequest, public_id: str) -> HttpResponse:
    """Queue a metric job per candidate source of the study."""
    study = reader_study_get_for_analyst(user=request.user, public_id=public_id)
    jobs = services.metric_jobs_create(user=request.user, reader_study=study)
    if not jobs:
        messages.warning(request, "This study has no candidate reports to score.")
    else:
        messages.success(request, f"Metrics queued for {len(jobs)} source(s).")
    return redirect("metrics:study", public_id=study.public_id)


@role_required(*ROLES)
@require_GET
def study_metrics_export(request: HttpRequest, public_id: str) -> HttpResponse:
    """The ReXVal-style CSV: one row per candidate report version."""
    study = reader_study_get_for_analyst(user=request.user, public_id=public_id)
    overview = selectors.metrics_overview(reader_study=study, with_agreement=False)
    response = HttpResponse(
        tables.rexval_csv(overview, reader_study=study), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="metrics-{study.public_id}.csv"'
    return response
