"""How requests prove who they are: Django's sessions and DRF's tokens, each loading the user
and the user's roles in one query (every API call checks a role)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AbstractBaseUser, User
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from reviewapp.core.roles import group_names, roles_remember


class RolesModelBackend(ModelBackend):
    """Django's model backend; a session's user comes with their roles."""

    def get_user(self, user_id: Any) -> User | None:
        user_model = get_user_model()
        user = (
            user_model._default_manager.annotate(role_names=group_names())
            .filter(pk=user_id)
            .first()
        )
        if user is None or not self.user_can_authenticate(user):
            return None
        roles_remember(user, user.role_names)
        return user


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token authentication (``Authorization: Token <key>``); the token, its user and
    the user's roles in one query."""

    def authenticate_credentials(self, key: str) -> tuple[AbstractBaseUser, Token]:
        token = (
            Token.objects.select_related("user")
            .annotate(role_names=group_names("user_id"))
            .filter(key=key)
            .first()
        )
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        roles_remember(token.user, token.role_names)
        return token.user, token
