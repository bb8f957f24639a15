"""Reports pages: upload a CSV of original reports or an external model's candidate reports and
see what became of them (coordinators); the list of report sources (coordinators, analysts)."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from reviewapp.core.access import role_required
from reviewapp.core.roles import Role
from reviewapp.reports.candidate_formats import FORMATS
from reviewapp.reports.selectors import report_sources_list
from reviewapp.reports.services import (
    MAX_CANDIDATES_BYTES,
    MAX_CSV_BYTES,
    candidates_import,
    reports_import_csv,
)


@role_required(Role.COORDINATOR)
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    context: dict[str, object] = {
        "max_mb": MAX_CSV_BYTES // (1024 * 1024),
        "max_bytes": MAX_CSV_BYTES,
    }
    if request.method == "POST":
        upload_file = request.FILES.get("file")
        if upload_file is None:
            context["error"] = "Choose a CSV file to import."
            return render(request, "reports/upload.html", context, status=400)
        if upload_file.size and upload_file.size > MAX_CSV_BYTES:
            context["error"] = f"The file is larger than {context['max_mb']} MB."
            return render(request, "reports/upload.html", context, status=413)
        result = reports_import_csv(
            data=upload_file.read(),
            source_name=upload_file.name or "upload.csv",
            author=request.user,
        )
        context.update(result=result, file_name=upload_file.name)
        status = 400 if result.error else 200
        return render(request, "reports/upload.html", context, status=status)
    return render(request, "reports/upload.html", context)


# Source names and import results are for staff eyes: never kept by a shared cache.
@never_cache
@role_required(Role.COORDINATOR)
@require_http_methods(["GET", "POST"])
def candidates_upload(request: HttpRequest) -> HttpResponse:
    context: dict[str, object] = {
        "max_mb": MAX_CANDIDATES_BYTES // (1024 * 1024),
        "max_bytes": MAX_CANDIDATES_BYTES,
        "formats": FORMATS,
        "form": request.POST,
    }
    if request.method == "POST":
        upload_file = request.FILES.get("file")
        if upload_file is None:
            context["error"] = "Choose a file to import."
            return render(request, "reports/candidates_upload.html", context, status=400)
        if upload_file.size and upload_file.size > MAX_CANDIDATES_BYTES:
            context["error"] = f"The file is larger than {context['max_mb']} MB."
            return render(request, "reports/candidates_upload.html", context, status=413)
        provenance = None
        if request.POST.get("provenance", "").strip():
            try:
                provenance = json.loads(request.POST["provenance"])
            except ValueError:
                context["error"] = 'Provenance must be a JSON object, e.g. {"paper": "..."}.'
                return render(request, "reports/candidates_upload.html", context, status=400)
        fmt = request.POST.get("format", "")
        result = candidates_import(
            data=upload_file.read(),
            file_name=upload_file.name or "upload",
            source_name=request.POST.get("source", ""),
            source_version=request.POST.get("version", ""),
            source_description=request.POST.get("description") or None,
            source_provenance=provenance,
            fmt=fmt if fmt in FORMATS else "",
            author=request.user,
        )
        context.update(result=result, file_name=upload_file.name)
        return render(
            request,
            "reports/candidates_upload.html",
            context,
            status=400 if result.error else 200,
        )
    return render(request, "reports/candidates_upload.html", context)


@never_cache
@role_required(Role.COORDINATOR, Role.ANALYST)
def sources(request: HttpRequest) -> HttpResponse:
    return render(
        request, "reports/sources.html", {"sources": report_sources_list(user=request.user)}
    )
