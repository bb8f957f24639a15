"""Users and roles."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.contrib.auth.password_validation import validate_password
from django.db import transaction

from reviewapp.core.roles import Role


def roles_ensure() -> None:
    """Create the role groups if they are missing."""
    for role in Role:
        Group.objects.get_or_create(name=role.value)


@transaction.atomic
def user_create(
    *,
    username: str,
    password: str,
    roles: list[Role],
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    check_password: bool = True,
) -> AbstractUser:
    """Create a user holding the given roles; admins also get Django's staff flags."""
    user_model = get_user_model()
    user = user_model(username=username, email=email, first_name=first_name, last_name=last_name)
    if check_password:
        validate_password(password, user)
    user.set_password(password)
    if Role.ADMIN in roles:
        user.is_staff = True
        user.is_superuser = True
    user.full_clean(exclude=["password"])
    user.save()
    roles_ensure()
    user.groups.set(Group.objects.filter(name__in=[r.value for r in roles]))
    return user
