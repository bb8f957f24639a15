"""Users and roles."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AbstractUser, Group
from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.shortcuts import get_object_or_404
from rest_framework.authtoken.models import Token

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


@transaction.atomic
def api_token_issue(*, user: AbstractBaseUser) -> Token:
    """The user's API token; a new one where theirs has expired or there is none."""
    from reviewapp.accounts.authentication import token_is_expired

    token = Token.objects.select_for_update().filter(user_id=user.pk).first()
    if token is not None and not token_is_expired(token):
        return token
    if token is not None:
        token.delete()
    return Token.objects.create(user_id=user.pk)


def api_tokens_revoke(*, user: AbstractBaseUser) -> int:
    """Revoke the user's API token at once (every request with it is refused from now on);
    the number revoked (0 or 1)."""
    deleted, _ = Token.objects.filter(user_id=user.pk).delete()
    return deleted


def user_get_for_admin(*, username: str) -> AbstractBaseUser:
    """The user named ``username``; 404 when there is none (callers check the admin role)."""
    return get_object_or_404(get_user_model(), username=username)


class PasswordChangeRevokesApiToken:
    """Listed with the password validators for the one hook Django calls on every password
    change, whichever way it is made (the admin's form, ``changepassword``, a service):
    ``password_changed``. It judges no password; it revokes the user's API token, so a
    password changed because it leaked does not leave a script key working."""

    def validate(self, password: str, user: AbstractBaseUser | None = None) -> None:
        return None

    def get_help_text(self) -> str:
        return "Changing your password revokes your API token."

    def password_changed(self, password: str, user: AbstractBaseUser | None = None) -> None:
        if user is not None and user.pk is not None:
            api_tokens_revoke(user=user)
