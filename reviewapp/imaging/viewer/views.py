"""The standalone study viewer: a quick look at any study for the people who manage the
archive. Readers see images only inside their reading page, never by browsing study ids."""

from __future__ import annotations

import uuid

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import get_script_prefix
from django.views.decorators.http import require_GET

from reviewapp.core.roles import Role, user_has_role
from reviewapp.imaging.selectors import study_get_for_user

_ROLES_WITH_QUICK_LOOK = (Role.COORDINATOR, Role.ANALYST, Role.ADMIN)


@login_required
@require_GET
def study_viewer(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    if not any(user_has_role(request.user, role) for role in _ROLES_WITH_QUICK_LOOK):
        raise PermissionDenied("The study viewer is for coordinators, analysts and admins.")
    study = study_get_for_user(user=request.user, public_id=public_id)
    return render(
        request,
        "imaging/viewer_page.html",
        {"study": study, "dicomweb_root": f"{get_script_prefix()}dicomweb"},
    )
