"""Archive pages for coordinators: study list and detail, DICOM upload, import batches and
the quarantine review. Each view authorises, calls one service or selector, renders."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from reviewapp.core.access import role_required
from reviewapp.core.errors import ApplicationError
from reviewapp.core.roles import Role
from reviewapp.generation import selectors as generation_selectors
from reviewapp.imaging import previews, selectors
from reviewapp.imaging.ingest import dataset_layouts, datasets, raster, services
from reviewapp.imaging.ingest.upload_limits import (
    declared_length,
    human_size,
    upload_exceeded,
    upload_limit_bytes,
    upload_limit_message,
    upload_too_large,
)
from reviewapp.reports.selectors import reports_for_study
from reviewapp.studies import selectors as study_selectors


def _parse_date(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _parse_bool(raw: str) -> bool | None:
    return {"yes": True, "no": False}.get(raw)


logger = logging.getLogger(__name__)


@role_required(Role.COORDINATOR, Role.ANALYST)
def study_list(request: HttpRequest) -> HttpResponse:
    params = request.GET
    studies = selectors.studies_search(
        user=request.user,
        modality=params.get("modality", "").strip(),
        date_from=_parse_date(params.get("date_from", "")),
        date_to=_parse_date(params.get("date_to", "")),
        text=params.get("q", "").strip(),
        has_ai_report=_parse_bool(params.get("has_ai_report", "")),
        stratum=params.get("stratum", "").strip(),
    )
    page = Paginator(studies, 50).get_page(params.get("page"))
    query = params.copy()
    query.pop("page", None)
    return render(
        request,
        "imaging/study_list.html",
        {
            "page": page,
            "filters": params,
            "query": query.urlencode(),
            "modalities": selectors.study_modalities_known(user=request.user),
            "strata": selectors.study_strata_known(user=request.user),
            "quarantined_count": selectors.instances_quarantined_for_user(
                user=request.user
            ).count(),
        },
    )


@role_required(Role.COORDINATOR, Role.ANALYST)
def study_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    study = selectors.study_get_for_user(user=request.user, public_id=public_id)
    series = selectors.study_series_list(user=request.user, study=study)
    reports = reports_for_study(user=request.user, study=study)
    return render(
        request,
        "imaging/study_detail.html",
        {
            "study": study,
            "series_list": series,
            "reports": reports,
            # Where this study went: the runs that wrote its AI reports, the studies it is read in.
            "runs": generation_selectors.run_list_for_study_for_staff(
                user=request.user, study=study
            ),
            "cases": study_selectors.cases_of_imaging_study_for_staff(
                user=request.user, imaging=study
            ),
        },
    )


def _upload_refused(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "imaging/upload.html",
        _upload_context(request, error=upload_limit_message(sent=declared_length(request))),
        status=413,
    )


def _upload_context(request: HttpRequest, *, error: str = "") -> dict[str, Any]:
    return {
        "error": error,
        "limit_bytes": upload_limit_bytes(),
        "limit_text": human_size(upload_limit_bytes()),
        "recent_batches": selectors.import_batches_visible_to(user=request.user)[:10],
    }


@csrf_exempt
@role_required(Role.COORDINATOR)
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    # CSRF-exempt only so the size check runs before anything parses the body; the real
    # work below is CSRF-protected.
    if request.method == "POST" and upload_too_large(request):
        return _upload_refused(request)
    return _upload(request)


@csrf_protect
def _upload(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, "imaging/upload.html", _upload_context(request))
    if upload_exceeded(request):
        return _upload_refused(request)
    uploads = request.FILES.getlist("files")
    if not uploads:
        return render(
            request,
            "imaging/upload.html",
            _upload_context(request, error="Choose at least one file, folder or .zip to import."),
            status=400,
        )
    batch = services.import_batch_from_uploads(
        created_by=request.user, uploads=uploads, names=request.POST.getlist("paths")
    )
    return redirect("imaging:import_batch_detail", public_id=batch.public_id)


def _dataset_context(request: HttpRequest, *, error: str = "") -> dict[str, Any]:
    return {
        "error": error,
        "form": request.POST if request.method == "POST" else {},
        "layouts": dataset_layouts.LAYOUTS,
        "modalities": raster.MODALITIES,
        "limit_bytes": upload_limit_bytes(),
        "limit_text": human_size(upload_limit_bytes()),
    }


@csrf_exempt
@role_required(Role.COORDINATOR)
@require_http_methods(["GET", "POST"])
def dataset_upload(request: HttpRequest) -> HttpResponse:
    # CSRF-exempt only so the size check runs before anything parses the body.
    if request.method == "POST" and upload_too_large(request):
        return _dataset_refused(request)
    return _dataset_upload(request)


def _dataset_refused(request: HttpRequest) -> HttpResponse:
    message = upload_limit_message(sent=declared_length(request))
    return render(
        request, "imaging/dataset_upload.html", _dataset_context(request, error=message), status=413
    )


@csrf_protect
def _dataset_upload(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, "imaging/dataset_upload.html", _dataset_context(request))
    if upload_exceeded(request):
        return _dataset_refused(request)
    upload = request.FILES.get("file")
    error = "Choose the dataset's .zip."
    if upload is not None:
        try:
            batch = datasets.dataset_import_from_upload(
                created_by=request.user,
                upload=upload,
                options=datasets.DatasetOptions(
                    name=request.POST.get("name", ""),
                    layout=request.POST.get("layout", ""),
                    modality=request.POST.get("modality", "DX"),
                    table=request.POST.get("table", ""),
                    release=request.POST.get("release") == "yes",
                ),
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
        except ApplicationError as exc:
            error = exc.message
        else:
            return redirect("imaging:import_batch_detail", public_id=batch.public_id)
    return render(
        request, "imaging/dataset_upload.html", _dataset_context(request, error=error), status=400
    )


@role_required(Role.COORDINATOR)
def import_batch_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    batch = selectors.import_batch_get_for_user(user=request.user, public_id=public_id)
    return render(
        request,
        "imaging/import_batch.html",
        {
            "batch": batch,
            "problems": batch.problems.all(),
            "batch_api_url": reverse("api-import-batch-detail", args=[batch.public_id]),
        },
    )


@role_required(Role.COORDINATOR)
def quarantine_list(request: HttpRequest) -> HttpResponse:
    instances = selectors.instances_quarantined_for_user(user=request.user)
    return render(request, "imaging/quarantine.html", {"instances": instances})


@role_required(Role.COORDINATOR)
@require_http_methods(["GET", "HEAD"])
def quarantine_preview(request: HttpRequest, public_id: str) -> HttpResponse:
    instance = selectors.instance_quarantined_get_for_user(user=request.user, public_id=public_id)
    try:
        png = previews.instance_preview_png(instance=instance)
    except ApplicationError as exc:
        return HttpResponse(exc.message, status=422, content_type="text/plain; charset=utf-8")
    except FileNotFoundError:
        logger.error("quarantine preview: stored file missing: %s", instance.file.name)
        return HttpResponse(
            "The stored file of this image is missing.",
            status=404,
            content_type="text/plain; charset=utf-8",
        )
    response = HttpResponse(png, content_type="image/png")
    # Pixels that may show a patient's name: never kept by a shared cache or on disk for long.
    response["Cache-Control"] = "private, no-store"
    return response


@role_required(Role.COORDINATOR)
@require_POST
def quarantine_decide(request: HttpRequest, public_id: str) -> HttpResponse:
    instance = selectors.instance_quarantined_get_for_user(user=request.user, public_id=public_id)
    decision = request.POST.get("decision")
    try:
        if decision == "approve":
            services.instance_quarantine_approve(instance=instance, reviewed_by=request.user)
            messages.success(request, "The image is released to readers.")
        elif decision == "reject":
            services.instance_quarantine_reject(instance=instance, reviewed_by=request.user)
            messages.success(request, "The image was deleted from the archive.")
        else:
            messages.error(request, "Choose approve or reject.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("imaging:quarantine_list")
