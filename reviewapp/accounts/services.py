"""Users, roles and reader invitations.

Invitations: a study's coordinator (or an admin) invites a person by e-mail address, one by
one or from a CSV file, to read for one study with a cohort tag. The person gets a one-time
link (by e-mail; where no mail server is configured the coordinator's page shows it) that
expires and can be revoked or sent again (a new link: the old one stops working). Opening it,
a new person chooses a username and a password; the owner of an existing account with that
address logs in and accepts, and is never given a second account. Accepting grants the reader
role and a seat on the study's panel with the cohort.

Reading lists are drawn once from the panel and never redrawn, so the panel changes only in a
draft without lists (``studies.selectors.panel_closed_reason``): invitations are sent only
then, and a person who accepts after the lists were drawn gets an account but no seat (a seat
would hold nothing to read); the coordinator sees that outcome in the list of invitations.
"""

from __future__ import annotations

import logging
import secrets
import smtplib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractBaseUser, AbstractUser, Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.validators import validate_email
from django.db import transaction
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from reviewapp.accounts import selectors
from reviewapp.accounts.models import Invitation
from reviewapp.core.csv_input import CsvRefused, csv_rows, csv_text
from reviewapp.core.errors import ApplicationError, RateLimitedError
from reviewapp.core.history import history_context_set
from reviewapp.core.roles import Role

logger = logging.getLogger(__name__)


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


def user_role_grant(*, user: AbstractBaseUser, role: Role) -> None:
    """Give ``user`` ``role`` (kept if held); the user's remembered roles follow at once."""
    roles_ensure()
    user.groups.add(Group.objects.get(name=role.value))  # type: ignore[attr-defined]
    # user_has_role keeps the roles it loaded on the object: drop them so the next check
    # in this request sees the new role (delattr reaches through request.user's lazy proxy).
    if hasattr(user, "_role_cache"):
        del user._role_cache


# --- invitations ---------------------------------------------------------------------------

MAX_INVITATION_CSV_BYTES = 1024 * 1024
MAX_INVITATION_ROWS = 500
NAME_MAX = 150  # the user's first_name, where an accepted invitation puts it
COHORT_MAX = 64  # StudyReader.cohort
EMAIL_MAX = 254

# Accepted spellings of each CSV column (compared lower-cased, spaces, "_" and "-" removed).
_INVITATION_COLUMNS = {
    "email": {"email", "emailaddress", "mail"},
    "name": {"name", "fullname", "readername"},
    "cohort": {"cohort"},
}


@dataclass(frozen=True)
class InvitationSent:
    """An invitation whose new one-time link was just issued. The link exists only here (the
    invitation keeps its hash): pages show it once, where no mail server sends it."""

    invitation: Invitation
    link: str


@dataclass(frozen=True)
class InvitationRowProblem:
    row: int  # as a spreadsheet numbers it: the header is row 1
    reason: str


@dataclass
class InvitationsImported:
    sent: list[InvitationSent] = field(default_factory=list)
    problems: list[InvitationRowProblem] = field(default_factory=list)
    error: str = ""  # the whole file was refused (too large, no e-mail column, ...)


@dataclass(frozen=True)
class InvitationAccepted:
    invitation: Invitation
    user: AbstractBaseUser
    joined: bool  # seated on the study's panel (False: its reading lists were already drawn)
    message: str  # what the reader is told on arriving


def invitation_link(*, base_url: str, token: str) -> str:
    """The absolute one-time link of ``token`` on the site at ``base_url``."""
    return base_url.rstrip("/") + reverse("accounts:invitation", args=[token])


def _study_for_inviting(*, reader_study: Any, user: AbstractBaseUser) -> Any:
    """The study, locked against a concurrent draw of its reading lists, once ``user`` may
    invite to it now: its coordinators and admins, while its panel can change."""
    from reviewapp.studies import selectors as study_selectors
    from reviewapp.studies.models import ReaderStudy

    if not study_selectors.reader_study_is_managed_by(user=user, reader_study=reader_study):
        raise PermissionDenied
    study = ReaderStudy.objects.select_for_update().get(pk=reader_study.pk)
    reason = study_selectors.panel_closed_reason(reader_study=study)
    if reason:
        raise ApplicationError(f"No invitations can be sent: {reason}", code="panel_closed")
    return study


def _fields_clean(*, email: str, name: str, cohort: str) -> tuple[str, str, str]:
    email = BaseUserManager.normalize_email((email or "").strip())
    name = " ".join((name or "").split())
    cohort = (cohort or "").strip()
    errors: dict[str, str] = {}
    if not email:
        errors["email"] = "Give the reader's e-mail address."
    elif len(email) > EMAIL_MAX:
        errors["email"] = f"The e-mail address is longer than {EMAIL_MAX} characters."
    else:
        try:
            validate_email(email)
        except ValidationError:
            errors["email"] = f"{email[:80]!r} is not an e-mail address."
    if len(name) > NAME_MAX:
        errors["name"] = f"The name is longer than {NAME_MAX} characters."
    if len(cohort) > COHORT_MAX:
        errors["cohort"] = f"The cohort is longer than {COHORT_MAX} characters."
    if errors:
        raise ValidationError(errors)
    return email, name, cohort


def _address_taken(*, reader_study: Any, email: str) -> tuple[str, str] | None:
    """(code, reason) when ``email`` may not be invited to the study now, else None."""
    if reader_study.panel.filter(reader__email__iexact=email).exists():
        return "already_on_panel", "already on this study's panel"
    open_one = (
        Invitation.objects.filter(
            reader_study=reader_study,
            email__iexact=email,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
        )
        .order_by("-created_at")
        .first()
    )
    if open_one is None:
        return None
    invited = f"{open_one.created_at:%Y-%m-%d}"
    if open_one.status == Invitation.Status.EXPIRED:
        return "already_invited", (
            f"invited on {invited}; the link expired on {open_one.expires_at:%Y-%m-%d}: "
            "send it again from the list of invitations"
        )
    return "already_invited", (
        f"already invited on {invited} (the link is valid until "
        f"{open_one.expires_at:%Y-%m-%d %H:%M} UTC): send it again or revoke it from the list"
    )


def _sends_left(user: AbstractBaseUser) -> int:
    since = timezone.now() - timedelta(hours=1)
    sent = Invitation.objects.filter(sent_by_id=user.pk, sent_at__gte=since).count()
    return max(0, settings.RADREVIEW_INVITATIONS_PER_HOUR - sent)


def _limit_reached_text() -> str:
    return (
        f"You have sent {settings.RADREVIEW_INVITATIONS_PER_HOUR} invitations in the last hour, "
        "the most one person may send; send the others later."
    )


def _link_issue(invitation: Invitation, *, by: AbstractBaseUser, base_url: str) -> str:
    """Give ``invitation`` a new token (an earlier link stops working) and a new expiry;
    the caller saves it. Returns the link."""
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    invitation.token_sha256 = selectors.token_digest(token)
    invitation.expires_at = now + timedelta(days=settings.RADREVIEW_INVITATION_TTL_DAYS)
    invitation.sent_at = now
    invitation.sent_by = by  # type: ignore[assignment]
    invitation.mail_failed_at = None
    return invitation_link(base_url=base_url, token=token)


def _invitation_new(
    *, reader_study: Any, by: AbstractBaseUser, email: str, name: str, cohort: str, base_url: str
) -> InvitationSent:
    invitation = Invitation(
        reader_study=reader_study,
        email=email,
        name=name,
        cohort=cohort,
        invited_by=by,  # type: ignore[misc]
    )
    link = _link_issue(invitation, by=by, base_url=base_url)
    invitation.full_clean()
    invitation.save()
    return InvitationSent(invitation=invitation, link=link)


def _mail_text(sent: InvitationSent, *, inviter: AbstractBaseUser) -> EmailMessage:
    invitation = sent.invitation
    study_name = " ".join(invitation.reader_study.name.split())  # no line break in a header
    who = (getattr(inviter, "get_full_name", lambda: "")() or inviter.get_username()).strip()
    greeting = f"Hello {invitation.name}," if invitation.name else "Hello,"
    body = (
        f"{greeting}\n\n"
        f'{who} invites you to read for the reader study "{study_name}" on radreview.\n\n'
        f"Open this link to accept (you choose a password, or log in if you already have an "
        f"account):\n{sent.link}\n\n"
        f"The link works once and expires on {invitation.expires_at:%Y-%m-%d %H:%M} UTC.\n"
        "If you did not expect this message, ignore it.\n"
    )
    return EmailMessage(
        subject=f'Invitation to read for "{study_name}"', body=body, to=[invitation.email]
    )


def _mail_on_commit(sent: list[InvitationSent], *, inviter: AbstractBaseUser) -> None:
    """E-mail the links once the invitations are committed (a rolled-back invitation must
    not have a link in someone's inbox). A mail server that refuses marks them, for the
    coordinator to see and send again."""
    if not sent:
        return
    messages = [_mail_text(s, inviter=inviter) for s in sent]
    ids = [s.invitation.pk for s in sent]

    def send() -> None:
        try:
            with get_connection() as connection:
                connection.send_messages(messages)
        except (smtplib.SMTPException, OSError) as error:
            # No addresses in the log: the exception's text may quote them.
            logger.warning(
                "Invitation e-mail not sent (%d invitation(s)): %s", len(ids), type(error).__name__
            )
            Invitation.objects.filter(pk__in=ids).update(mail_failed_at=timezone.now())

    transaction.on_commit(send)


@transaction.atomic
def invitation_create(
    *,
    reader_study: Any,
    invited_by: AbstractBaseUser,
    email: str,
    name: str = "",
    cohort: str = "",
    base_url: str,
) -> InvitationSent:
    """Invite one person by e-mail address to read for ``reader_study`` with ``cohort``.

    Refused unless ``invited_by`` coordinates the study (or administers) and its panel can
    change (code ``panel_closed``); an address on the panel or with an open invitation
    (``already_on_panel``, ``already_invited``); past the hourly limit (``rate_limited``).
    """
    study = _study_for_inviting(reader_study=reader_study, user=invited_by)
    email, name, cohort = _fields_clean(email=email, name=name, cohort=cohort)
    taken = _address_taken(reader_study=study, email=email)
    if taken is not None:
        code, reason = taken
        raise ApplicationError(f"{email}: {reason}.", code=code)
    if _sends_left(invited_by) < 1:
        raise RateLimitedError(_limit_reached_text(), code="rate_limited")
    history_context_set(user=invited_by.pk, action="invitation_create")
    sent = _invitation_new(
        reader_study=study, by=invited_by, email=email, name=name, cohort=cohort, base_url=base_url
    )
    _mail_on_commit([sent], inviter=invited_by)
    return sent


def _normalise_header(header: str) -> str:
    return header.strip().lower().replace(" ", "").replace("_", "").replace("-", "")


def _csv_rows(data: bytes, result: InvitationsImported) -> list[tuple[int, dict[str, str]]]:
    """The file's data rows as (spreadsheet row, {column: value}); problems and a refusal
    of the whole file go into ``result``."""
    if len(data) > MAX_INVITATION_CSV_BYTES:
        result.error = f"The file is larger than {MAX_INVITATION_CSV_BYTES // 1024} KB."
        return []
    try:
        headers, read = csv_rows(csv_text(data))
    except CsvRefused as exc:
        result.error = str(exc)
        return []
    columns: dict[str, int] = {}
    for index, header in enumerate(headers):
        for name, spellings in _INVITATION_COLUMNS.items():
            if _normalise_header(header) in spellings and name not in columns:
                columns[name] = index
    if "email" not in columns:
        result.error = (
            "The header row needs an email column (and optionally name and cohort), "
            "e.g. name,email,cohort."
        )
        return []
    rows: list[tuple[int, dict[str, str]]] = []
    for row in read:
        if len(rows) + len(result.problems) >= MAX_INVITATION_ROWS:
            result.problems.clear()
            result.error = (
                f"The file has more than {MAX_INVITATION_ROWS} rows; split it into smaller files."
            )
            return []
        if row.problem:
            result.problems.append(InvitationRowProblem(row.number, row.problem))
            continue
        rows.append((row.number, {name: row.values[i] for name, i in columns.items()}))
    return rows


def invitations_import_csv(
    *, reader_study: Any, invited_by: AbstractBaseUser, data: bytes, base_url: str
) -> InvitationsImported:
    """Invite every person a CSV row names (header row: email, optionally name and cohort).

    Each bad row is named with its reason and the good rows are still invited; the whole
    file is refused when it is too large, has more than MAX_INVITATION_ROWS rows or lacks an
    email column. The study's rules are ``invitation_create``'s.
    """
    result = InvitationsImported()
    rows = _csv_rows(data, result)
    if result.error:
        return result
    with transaction.atomic():
        study = _study_for_inviting(reader_study=reader_study, user=invited_by)
        left = _sends_left(invited_by)
        history_context_set(user=invited_by.pk, action="invitation_create")
        seen: dict[str, int] = {}
        for row_number, values in rows:
            try:
                email, name, cohort = _fields_clean(
                    email=values.get("email", ""),
                    name=values.get("name", ""),
                    cohort=values.get("cohort", ""),
                )
            except ValidationError as error:
                reason = "; ".join(m[0].lower() + m[1:].rstrip(".") for m in error.messages)
                result.problems.append(InvitationRowProblem(row_number, reason))
                continue
            if email.lower() in seen:
                result.problems.append(
                    InvitationRowProblem(
                        row_number, f"{email}: the same address as row {seen[email.lower()]}"
                    )
                )
                continue
            seen[email.lower()] = row_number
            taken = _address_taken(reader_study=study, email=email)
            if taken is not None:
                result.problems.append(InvitationRowProblem(row_number, f"{email}: {taken[1]}"))
                continue
            if left < 1:
                result.problems.append(
                    InvitationRowProblem(row_number, f"{email}: not sent. {_limit_reached_text()}")
                )
                continue
            try:
                sent = _invitation_new(
                    reader_study=study,
                    by=invited_by,
                    email=email,
                    name=name,
                    cohort=cohort,
                    base_url=base_url,
                )
            except ValidationError as error:  # e.g. invited a moment ago by someone else
                result.problems.append(
                    InvitationRowProblem(row_number, f"{email}: {' '.join(error.messages)}")
                )
                continue
            result.sent.append(sent)
            left -= 1
        _mail_on_commit(result.sent, inviter=invited_by)
    logger.info("Invitations CSV: %d sent, %d rows refused", len(result.sent), len(result.problems))
    return result


def _invitation_lock_open(invitation: Invitation) -> Invitation:
    locked = (
        Invitation.objects.select_for_update().select_related("reader_study").get(pk=invitation.pk)
    )
    if locked.accepted_at is not None:
        raise ApplicationError(
            f"This invitation was accepted on {locked.accepted_at:%Y-%m-%d}.",
            code="invitation_used",
        )
    return locked


@transaction.atomic
def invitation_resend(
    *, invitation: Invitation, user: AbstractBaseUser, base_url: str
) -> InvitationSent:
    """Send a pending or expired invitation again with a new link and a new expiry (the
    old link stops working). Refused once accepted or revoked (invite the address again),
    and under ``invitation_create``'s rules of the study and the hourly limit."""
    _study_for_inviting(reader_study=invitation.reader_study, user=user)
    locked = _invitation_lock_open(invitation)
    if locked.revoked_at is not None:
        raise ApplicationError(
            "This invitation was revoked; invite the address again instead.",
            code="invitation_revoked",
        )
    if _sends_left(user) < 1:
        raise RateLimitedError(_limit_reached_text(), code="rate_limited")
    history_context_set(user=user.pk, action="invitation_resend")
    link = _link_issue(locked, by=user, base_url=base_url)
    locked.send_count += 1
    locked.save()
    sent = InvitationSent(invitation=locked, link=link)
    _mail_on_commit([sent], inviter=user)
    return sent


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, user: AbstractBaseUser) -> Invitation:
    """Withdraw an invitation: its link stops working at once. Allowed whenever it is not
    accepted (an accepted reader leaves through the panel); revoking twice changes nothing."""
    from reviewapp.studies import selectors as study_selectors

    if not study_selectors.reader_study_is_managed_by(
        user=user, reader_study=invitation.reader_study
    ):
        raise PermissionDenied
    locked = _invitation_lock_open(invitation)
    if locked.revoked_at is not None:
        return locked
    history_context_set(user=user.pk, action="invitation_revoke")
    locked.revoked_at = timezone.now()
    locked.revoked_by = user  # type: ignore[assignment]
    locked.save(update_fields=["revoked_at", "revoked_by", "updated_at"])
    return locked


def _account_create(*, invitation: Invitation, username: str, password: str) -> AbstractUser:
    """A new reader account for the invited address; every problem of the username and the
    password at once, by Django's validators."""
    candidate = get_user_model()(
        username=username.strip(), email=invitation.email, first_name=invitation.name
    )
    errors: dict[str, list[str]] = {}
    try:
        candidate.full_clean(exclude=["password"])
    except ValidationError as error:
        errors.update(error.message_dict)
    try:
        validate_password(password, candidate)
    except ValidationError as error:
        errors["password"] = list(error.messages)
    if errors:
        raise ValidationError(errors)
    return user_create(
        username=username.strip(),
        password=password,
        roles=[Role.READER],
        email=invitation.email,
        first_name=invitation.name,
        check_password=False,  # checked above, with the other problems
    )


@transaction.atomic
def invitation_accept(
    *, token: str, user: Any, username: str = "", password: str = ""
) -> InvitationAccepted:
    """Accept the invitation whose link carries ``token``, once.

    Anonymous: create the reader account (``username``, ``password``) unless the address
    already has one (then log in first: ``invitation_log_in``). Logged in: as the invited
    address only. Grants the reader role and seats the reader with the invitation's cohort;
    once the study's reading lists are drawn, the account is made but not seated.
    Refusals carry ``invitation_<reason>`` codes (unknown, used, revoked, expired, ...).
    """
    from reviewapp.studies import services as study_services

    invitation = (
        Invitation.objects.select_for_update(of=("self",))
        .select_related("reader_study")
        .filter(token_sha256=selectors.token_digest(token))
        .first()
    )
    way = selectors.invitation_acceptance(invitation=invitation, user=user)
    if way in selectors.REFUSALS:
        raise ApplicationError(selectors.REFUSALS[way], code=f"invitation_{way}")
    assert invitation is not None  # invitation_acceptance refuses a missing one
    if way == selectors.NEW_ACCOUNT:
        account: AbstractBaseUser = _account_create(
            invitation=invitation, username=username, password=password
        )
    else:
        account = user
    history_context_set(user=account.pk, action="invitation_accept")
    user_role_grant(user=account, role=Role.READER)
    study = invitation.reader_study
    try:
        study_services.panel_reader_add(
            reader_study=study, reader=account, cohort=invitation.cohort
        )
    except ApplicationError as error:
        if error.code not in ("assigned", "not_draft"):
            raise
        joined = False
    else:
        joined = True
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = account  # type: ignore[assignment]
    invitation.outcome = Invitation.Outcome.JOINED if joined else Invitation.Outcome.AFTER_LISTS
    invitation.save(update_fields=["accepted_at", "accepted_by", "outcome", "updated_at"])
    if joined:
        cohort = f" (cohort {invitation.cohort})" if invitation.cohort else ""
        message = (
            f'Welcome. You are on the panel of "{study.name}"{cohort}. Its cases appear on '
            "this page once the coordinator opens the study."
        )
    else:
        message = (
            f'Your account is ready, but the reading lists of "{study.name}" were drawn '
            "before you accepted, so you are not on its panel (lists are never redrawn). "
            "Its coordinator sees this and can add you to another study."
        )
    return InvitationAccepted(invitation=invitation, user=account, joined=joined, message=message)
