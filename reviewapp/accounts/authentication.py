"""How requests prove who they are: Django's sessions and DRF's tokens, each loading the user
and the user's roles in one query (every API call checks a role).

``credential_user`` is the same check for code that runs in front of Django (the body
limits): it calls the code below and Django's session code, so there is one
rule for what a valid credential is, and a revoked token or ended session stops there at once.
"""

from __future__ import annotations

from datetime import timedelta
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user, get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AbstractBaseUser, User
from django.http import HttpRequest
from django.utils import timezone
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


def token_expires_at(token: Token) -> Any:
    return token.created + timedelta(days=settings.RADREVIEW_TOKEN_TTL_DAYS)


def token_is_expired(token: Token) -> bool:
    return token_expires_at(token) <= timezone.now()


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token authentication (``Authorization: Token <key>``); the token, its user and
    the user's roles in one query. Tokens older than RADREVIEW_TOKEN_TTL_DAYS are refused."""

    def authenticate_credentials(self, key: str) -> tuple[AbstractBaseUser, Token]:
        token = (
            Token.objects.select_related("user")
            .annotate(role_names=group_names("user_id"))
            .filter(key=key)
            .first()
        )
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if token_is_expired(token):
            raise exceptions.AuthenticationFailed(
                _("Token expired: exchange your username and password for a new one.")
            )
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        roles_remember(token.user, token.role_names)
        return token.user, token


class BearerTokenAuthentication(TokenAuthentication):
    """The same API token sent as ``Authorization: Bearer <key>``: the scheme DICOMweb viewers
    send (OHIF passes a ``?token=`` from its URL on that way); checked exactly as above."""

    keyword = "Bearer"


def credential_user(*, authorization: str | None, cookie: str | None) -> AbstractBaseUser | None:
    """The active user behind a request's ``Authorization`` or session cookie header, by the
    same code Django and DRF run; None when there is none or it is not valid (any more).

    An Authorization header decides alone, as in DRF: a bad token is not rescued by a cookie.
    """
    if authorization:
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != TokenAuthentication.keyword.lower() or not key.strip():
            return None
        try:
            user, _token = TokenAuthentication().authenticate_credentials(key.strip())
        except exceptions.AuthenticationFailed:
            return None
        return user
    session_key = _cookie_value(cookie or "", settings.SESSION_COOKIE_NAME)
    if not session_key:
        return None
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    session_user = get_user(request)  # verifies the session's auth hash, as the middleware does
    if not isinstance(session_user, AbstractBaseUser) or not session_user.is_active:
        return None
    return session_user


def _cookie_value(header: str, name: str) -> str | None:
    wanted = name + "="
    for part in header.split(";"):
        part = part.strip()
        if part.startswith(wanted):
            return part[len(wanted) :] or None
    return None
