"""Reads of accounts: invitations, for the coordinators of their study and for the person
holding a link."""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.utils.text import slugify

from reviewapp.accounts.models import Invitation
from reviewapp.core.access import public_id_get_or_404

UserLike = AbstractBaseUser | AnonymousUser

# What the holder of a link may do with it (invitation_acceptance): the refusals first.
UNKNOWN = "unknown"
USED = "used"
REVOKED = "revoked"
EXPIRED = "expired"
OTHER_ACCOUNT = "other_account"  # logged in as someone the invitation is not for
LOG_IN = "log_in"  # the address has an account: log in with it to accept
NEW_ACCOUNT = "new_account"  # choose a username and a password
JOIN = "join"  # logged in as the invited address: one click
REFUSALS = {
    UNKNOWN: "This invitation link is not valid. Check that you copied the whole link, or ask "
    "the study's coordinator for a new one.",
    USED: "This invitation was already used. Log in with the account it created.",
    REVOKED: "This invitation was withdrawn by the study's coordinator. If you expected it, "
    "ask them for a new one.",
    EXPIRED: "This invitation has expired. Ask the study's coordinator to send it again.",
    OTHER_ACCOUNT: "You are logged in with an account this invitation is not for (it was sent "
    "to another e-mail address). Log out, then open the link again.",
    LOG_IN: "An account with this e-mail address exists: log in with it to accept.",
}


def token_digest(token: str) -> str:
    """What an invitation stores of its link's token (the SHA-256, hex)."""
    return hashlib.sha256(token.encode("utf-8", errors="replace")).hexdigest()


def invitation_links_shown() -> bool:
    """Whether pages show the one-time links: only where no mail server is configured, so
    that the link otherwise reaches nobody but the invited address."""
    return not settings.EMAIL_HOST


def invitation_list(*, reader_study: Any) -> QuerySet[Invitation]:
    """The study's invitations, newest first (the caller has checked the study)."""
    return (
        Invitation.objects.filter(reader_study=reader_study)
        .select_related("invited_by", "accepted_by")
        .order_by("-created_at", "-id")
    )


def invitation_get(*, reader_study: Any, public_id: Any) -> Invitation:
    """One invitation of a study the caller has checked, else 404."""
    return public_id_get_or_404(
        invitation_list(reader_study=reader_study), public_id, what="invitation"
    )


def invitation_get_by_token(*, token: str) -> Invitation | None:
    """The invitation whose link carries ``token``, or None."""
    if not token or len(token) > 200:
        return None
    return (
        Invitation.objects.select_related("reader_study", "invited_by")
        .filter(token_sha256=token_digest(token))
        .first()
    )


def accounts_with_email(email: str) -> QuerySet[AbstractBaseUser]:
    """Active accounts whose e-mail address is ``email`` (in any letter case)."""
    return get_user_model().objects.filter(email__iexact=email, is_active=True)


def invitation_acceptance(*, invitation: Invitation | None, user: UserLike | None) -> str:
    """What the holder of an invitation's link, browsing as ``user``, may do with it: one of
    the refusals (``REFUSALS``) or JOIN (logged in as the invited address) or NEW_ACCOUNT.

    An address that already has an account is never given a new one and never has its
    password set through a link: its owner logs in and accepts.
    """
    if invitation is None:
        return UNKNOWN
    status = invitation.status
    if status == Invitation.Status.ACCEPTED:
        return USED
    if status == Invitation.Status.REVOKED:
        return REVOKED
    if status == Invitation.Status.EXPIRED:
        return EXPIRED
    if user is not None and user.is_authenticated:
        email = getattr(user, "email", "") or ""
        return JOIN if email.lower() == invitation.email.lower() else OTHER_ACCOUNT
    if accounts_with_email(invitation.email).exists():
        return LOG_IN
    return NEW_ACCOUNT


def username_suggest(*, invitation: Invitation) -> str:
    """A free username for the invited person, from their name or else their address."""
    base = slugify(invitation.name).replace("-", ".") or slugify(
        invitation.email.partition("@")[0]
    ).replace("-", ".")
    base = (base or "reader")[:140]
    taken = set(
        get_user_model()
        .objects.filter(username__istartswith=base)
        .values_list("username", flat=True)
    )
    taken = {name.lower() for name in taken}
    candidate, number = base, 1
    while candidate.lower() in taken:
        number += 1
        candidate = f"{base}{number}"
    return candidate
