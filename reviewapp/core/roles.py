"""Roles are Django groups; this module is the one place that names them."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models


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


def user_roles(user: AbstractBaseUser | AnonymousUser) -> set[str]:
    return {role.value for role in Role if user_has_role(user, role)}
