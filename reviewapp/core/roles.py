"""Roles are Django groups; this module is the one place that names them."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from django.contrib.postgres.expressions import ArraySubquery
from django.db import models
from django.db.models import OuterRef


class Role(models.TextChoices):
    READER = "reader", "Reader (radiologist)"
    COORDINATOR = "coordinator", "Study coordinator"
    ANALYST = "analyst", "Analyst"
    ADMIN = "admin", "Administrator"


def user_has_role(user: AbstractBaseUser | AnonymousUser, role: Role) -> bool:
    if not user.is_authenticated:
        return False
    if getattr(user, "is_superuser", False):
        return True
    cache = getattr(user, "_role_cache", None)
    if cache is None:
        cache = set(user.groups.values_list("name", flat=True))  # type: ignore[attr-defined]
        user._role_cache = cache  # type: ignore[attr-defined]
    return role.value in cache or Role.ADMIN.value in cache


def users_with_role(role: Role) -> models.QuerySet[AbstractBaseUser]:
    """Users who hold ``role`` by the rule of ``user_has_role`` (admins and superusers
    hold every role): who counts as a reader on the study page, the API and the services."""
    from django.contrib.auth import get_user_model

    return (
        get_user_model()
        .objects.filter(
            models.Q(groups__name__in=[role.value, Role.ADMIN.value]) | models.Q(is_superuser=True)
        )
        .distinct()
        .order_by("username")
    )


def group_names(user_ref: str = "pk") -> ArraySubquery:
    """The names of a user's groups as one array column (``user_ref`` names the user's id in
    the outer query), so that loading a user loads their roles: one query per request, not
    two."""
    return ArraySubquery(Group.objects.filter(user=OuterRef(user_ref)).values("name"))


def roles_remember(user: AbstractBaseUser, names: Iterable[str]) -> None:
    """Keep the group names loaded with ``user`` for ``user_has_role``."""
    user._role_cache = set(names)  # type: ignore[attr-defined]


def user_roles(user: AbstractBaseUser | AnonymousUser) -> set[str]:
    return {role.value for role in Role if user_has_role(user, role)}
