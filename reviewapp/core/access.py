"""The two access helpers every app shares: the role gate of a page and the public-id fetch.

Object-level rules (which study, whose assignment) stay in each app's selectors, named
``<noun>_get_for_<role>`` or ``access_<noun>``; they fetch through ``public_id_get_or_404`` so
that a malformed id, a row that does not exist and a row the user may not see all answer the
same 404, and nobody can tell the three apart.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache

from reviewapp.core.roles import Role, user_has_role

M = TypeVar("M", bound=Model)
View = Callable[..., HttpResponse]


def public_id_parse(value: Any) -> uuid.UUID | None:
    """``value`` as a UUID, or None when it is not one."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def public_id_or_404(value: Any, *, what: str = "object") -> uuid.UUID:
    """``value`` as a UUID, else Http404 (a malformed id answers like a missing row)."""
    key = public_id_parse(value)
    if key is None:
        raise Http404(f"No such {what}.")
    return key


def public_id_get_or_404(queryset: QuerySet[M], public_id: Any, *, what: str = "object") -> M:
    """The row of ``queryset`` (already narrowed to what the user may see) with this public
    id, else Http404 with the same message whether it is missing, hidden or malformed."""
    found = queryset.filter(public_id=public_id_or_404(public_id, what=what)).first()
    if found is None:
        raise Http404(f"No such {what}.")
    return found


def role_required(*roles: Role) -> Callable[[View], View]:
    """Gate a page: anonymous visitors go to the login page, a user with none of ``roles``
    gets 403, and no cache keeps the page (it is built for one person and role)."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not any(user_has_role(request.user, role) for role in roles):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return login_required(never_cache(wrapped))

    return decorate
