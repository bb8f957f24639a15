"""Pages of invitations: a study's "Invite readers" page for its coordinators (invite one
person, import a CSV, send again, revoke) and the page a one-time link opens. Thin: parse,
authorise, call one service or selector, render."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from reviewapp.accounts import selectors, services
from reviewapp.core.access import role_required
from reviewapp.core.errors import ApplicationError
from reviewapp.core.roles import Role
from reviewapp.studies import selectors as study_selectors


def _base_url(request: HttpRequest) -> str:
    # The host is one of ALLOWED_HOSTS (Django refuses others), so a link cannot be pointed
    # at a stranger's site by a forged Host header.
    return request.build_absolute_uri("/")


def _page(
    request: HttpRequest,
    study: Any,
    *,
    sent: list[services.InvitationSent] | None = None,
    imported: services.InvitationsImported | None = None,
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> HttpResponse:
    invitations = list(selectors.invitation_list(reader_study=study))
    return render(
        request,
        "accounts/invitations.html",
        {
            "study": study,
            "invitations": invitations,
            "pending_count": sum(i.status == i.Status.PENDING for i in invitations),
            "closed_reason": study_selectors.panel_closed_reason(reader_study=study),
            "links_shown": selectors.invitation_links_shown(),
            "mail_from": settings.DEFAULT_FROM_EMAIL,
            "sent": sent or [],
            "imported": imported,
            "form": request.POST if errors else {},
            "errors": errors or {},
            "ttl_days": settings.RADREVIEW_INVITATION_TTL_DAYS,
            "per_hour": settings.RADREVIEW_INVITATIONS_PER_HOUR,
            "max_rows": services.MAX_INVITATION_ROWS,
            "max_kb": services.MAX_INVITATION_CSV_BYTES // 1024,
        },
        status=status,
    )


def _form_errors(error: ValidationError, fields: tuple[str, ...]) -> dict[str, list[str]]:
    """Each message under its form field; whole-form problems under "page"."""
    errors: dict[str, list[str]] = {}
    for key, texts in error.message_dict.items():
        errors.setdefault(key if key in fields else "page", []).extend(texts)
    return errors


def _sent_message(
    request: HttpRequest, sent: list[services.InvitationSent], *, what: str = "made"
) -> None:
    if not sent:
        return
    if selectors.invitation_links_shown():
        messages.success(
            request,
            f"{len(sent)} invitation(s) {what}. No mail server is configured: copy each link "
            "below and send it to its reader yourself (it is shown only now).",
        )
    else:
        messages.success(request, f"{len(sent)} invitation(s) e-mailed.")


@require_http_methods(["GET", "POST"])
@role_required(Role.COORDINATOR)
def invitations(request: HttpRequest, study_id: str) -> HttpResponse:
    """GET: the study's invitations and the forms; POST: invite one person. The new link is
    shown in the answer itself (no redirect): it exists nowhere else."""
    study = study_selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
    if request.method == "GET":
        return _page(request, study)
    try:
        sent = services.invitation_create(
            reader_study=study,
            invited_by=request.user,  # type: ignore[arg-type]
            email=request.POST.get("email", ""),
            name=request.POST.get("name", ""),
            cohort=request.POST.get("cohort", ""),
            base_url=_base_url(request),
        )
    except ValidationError as error:
        return _page(
            request, study, errors=_form_errors(error, ("email", "name", "cohort")), status=400
        )
    except ApplicationError as error:
        status = 429 if error.code == "rate_limited" else 400
        return _page(request, study, errors={"page": [error.message]}, status=status)
    _sent_message(request, [sent])
    return _page(request, study, sent=[sent])


@require_POST
@role_required(Role.COORDINATOR)
def invitations_import(request: HttpRequest, study_id: str) -> HttpResponse:
    """Invite everyone a CSV file names; the page lists each refused row with its reason."""
    study = study_selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
    upload = request.FILES.get("file")
    if upload is None:
        return _page(request, study, errors={"file": ["Choose a CSV file."]}, status=400)
    if upload.size and upload.size > services.MAX_INVITATION_CSV_BYTES:
        limit = services.MAX_INVITATION_CSV_BYTES // 1024
        return _page(
            request, study, errors={"file": [f"The file is larger than {limit} KB."]}, status=413
        )
    try:
        result = services.invitations_import_csv(
            reader_study=study,
            invited_by=request.user,  # type: ignore[arg-type]
            data=upload.read(),
            base_url=_base_url(request),
        )
    except ApplicationError as error:
        return _page(request, study, errors={"file": [error.message]}, status=400)
    _sent_message(request, result.sent)
    return _page(
        request, study, sent=result.sent, imported=result, status=400 if result.error else 200
    )


@require_POST
@role_required(Role.COORDINATOR)
def invitation_resend(request: HttpRequest, study_id: str, invitation_id: str) -> HttpResponse:
    study = study_selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
    invitation = selectors.invitation_get(reader_study=study, public_id=invitation_id)
    try:
        sent = services.invitation_resend(
            invitation=invitation,
            user=request.user,  # type: ignore[arg-type]
            base_url=_base_url(request),
        )
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("invitations:list", study_id=study.public_id)
    _sent_message(request, [sent], what="sent again with a new link (the old one no longer works)")
    return _page(request, study, sent=[sent])


@require_POST
@role_required(Role.COORDINATOR)
def invitation_revoke(request: HttpRequest, study_id: str, invitation_id: str) -> HttpResponse:
    study = study_selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
    invitation = selectors.invitation_get(reader_study=study, public_id=invitation_id)
    try:
        services.invitation_revoke(invitation=invitation, user=request.user)  # type: ignore[arg-type]
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request, f"Invitation of {invitation.email} revoked: its link no longer works."
        )
    return redirect("invitations:list", study_id=study.public_id)


@never_cache
@require_http_methods(["GET", "POST"])
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """The page a one-time link opens, for anyone holding it: choose a username and a
    password (or log in, or accept as the logged-in invited address), or a plain page saying
    why the link no longer works."""
    found = selectors.invitation_get_by_token(token=token)
    way = selectors.invitation_acceptance(invitation=found, user=request.user)
    errors: dict[str, list[str]] = {}
    if request.method == "POST" and way in (selectors.NEW_ACCOUNT, selectors.JOIN):
        password = request.POST.get("password1", "")
        if way == selectors.NEW_ACCOUNT and password != request.POST.get("password2", ""):
            errors["password2"] = ["The two passwords differ."]
        else:
            try:
                accepted = services.invitation_accept(
                    token=token,
                    user=request.user,
                    username=request.POST.get("username", ""),
                    password=password,
                )
            except ValidationError as error:
                errors = _form_errors(error, ("username", "password"))
            except ApplicationError as error:
                errors = {"page": [error.message]}
            else:
                if not request.user.is_authenticated:
                    login(
                        request,
                        accepted.user,  # type: ignore[arg-type]
                        backend="reviewapp.accounts.authentication.RolesModelBackend",
                    )
                messages.success(request, accepted.message)
                return redirect("studies:worklist")
    if way == selectors.UNKNOWN:
        status = 404
    elif way in (selectors.USED, selectors.REVOKED, selectors.EXPIRED):
        status = 410
    else:
        status = 400 if errors else 200
    return render(
        request,
        "accounts/invitation.html",
        {
            "invitation": found,
            "way": way,
            "refusal": selectors.REFUSALS.get(way, ""),
            "errors": errors,
            "username": (
                request.POST.get("username", "")
                if errors or found is None or way != selectors.NEW_ACCOUNT
                else selectors.username_suggest(invitation=found)
            ),
            "login_url": reverse("accounts:login") + "?" + urlencode({"next": request.path}),
        },
        status=status,
    )
