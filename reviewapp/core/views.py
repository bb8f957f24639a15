from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from reviewapp.core.roles import Role, user_has_role


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send each person to the page of their role."""
    if user_has_role(request.user, Role.COORDINATOR):
        return redirect("imaging:study_list")
    if user_has_role(request.user, Role.READER):
        return redirect("studies:worklist")
    return render(request, "core/home.html")


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")
