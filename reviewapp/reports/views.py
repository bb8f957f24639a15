"""Reports pages for coordinators: upload a CSV of original reports and see what became of it."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from reviewapp.core.access import role_required
from reviewapp.core.roles import Role
from reviewapp.reports.services import MAX_CSV_BYTES, reports_import_csv


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
