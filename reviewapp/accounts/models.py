"""Accounts.

Glossary:
- Invitation: a coordinator's invitation of one person (by e-mail address) to read for one
  reader study, with the cohort they will join with. It carries a one-time link to set a
  password (or, for an address that already has an account, to log in and accept); the
  link's token is stored only as its SHA-256, so the database never holds a working link.
  An invitation is pending until it is accepted, revoked or past its expiry; every change is
  kept by database triggers in the append-only InvitationEvent table.
"""

from __future__ import annotations

import pghistory
from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from reviewapp.core.models import TimestampedModel


@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
    model_name="InvitationEvent",
    append_only=True,
)
class Invitation(TimestampedModel):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"

    class Outcome(models.TextChoices):
        NONE = "", "Not accepted yet"
        JOINED = "joined", "Joined the panel"
        # Reading lists are drawn once and never redrawn: a reader who accepts after the draw
        # gets an account, not a seat with nothing to read (services.invitation_accept).
        AFTER_LISTS = "after_lists", "Account ready; not on the panel (lists already drawn)"

    reader_study = models.ForeignKey(
        "studies.ReaderStudy", on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField(max_length=254)
    name = models.CharField(max_length=150, blank=True)  # becomes the reader's first_name
    cohort = models.CharField(max_length=64, blank=True)  # as StudyReader.cohort
    # SHA-256 of the link's random token: enough for a 256-bit secret (no slow hash needed),
    # and a leaked database or backup holds no link that works.
    token_sha256 = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The last time a link was issued (created or sent again) and by whom: the hourly limit
    # counts these.
    sent_at = models.DateTimeField()
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    send_count = models.PositiveIntegerField(default=1)
    mail_failed_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One open invitation per address and study: a second one would leave two links
            # and two cohorts for one person.
            models.UniqueConstraint(
                Lower("email"),
                "reader_study",
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_open_per_address",
            ),
            models.CheckConstraint(
                condition=models.Q(accepted_at__isnull=True) | models.Q(revoked_at__isnull=True),
                name="invitation_not_accepted_and_revoked",
            ),
        ]
        indexes = [models.Index(fields=["sent_by", "sent_at"])]

    def __str__(self) -> str:
        return f"Invitation {self.public_id} ({self.status})"

    @property
    def status(self) -> str:
        if self.accepted_at is not None:
            return self.Status.ACCEPTED
        if self.revoked_at is not None:
            return self.Status.REVOKED
        if self.expires_at <= timezone.now():
            return self.Status.EXPIRED
        return self.Status.PENDING

    @property
    def status_label(self) -> str:
        return self.Status(self.status).label

    @property
    def is_open(self) -> bool:
        """Neither accepted nor revoked (it may have expired: sending it again renews it)."""
        return self.accepted_at is None and self.revoked_at is None
