"""Reads of report texts, with their permission checks.

Which report of a pair is the AI's is exactly what readers must not learn, so report kinds and
provenance are visible to coordinators, analysts and admins only; readers get report texts
through the reader-study selectors, which hide the source.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from reviewapp.core.roles import Role, user_has_role
from reviewapp.imaging.models import Study
from reviewapp.reports.models import Report


def _sees_provenance(user: AbstractBaseUser | AnonymousUser) -> bool:
    return any(user_has_role(user, role) for role in (Role.COORDINATOR, Role.ANALYST, Role.ADMIN))


def reports_for_study(*, user: AbstractBaseUser | AnonymousUser, study: Study) -> QuerySet[Report]:
    """All reports on a study with their kind (coordinators, analysts, admins only)."""
    if not _sees_provenance(user):
        return Report.objects.none()
    return Report.objects.filter(study=study).order_by("kind", "lineage", "version", "created_at")


def report_original_for_study(
    *, user: AbstractBaseUser | AnonymousUser, study: Study
) -> Report | None:
    """The latest version of a study's original report, or None (coordinators, analysts,
    admins only)."""
    return (
        reports_for_study(user=user, study=study)
        .filter(kind=Report.Kind.ORIGINAL, is_latest=True)
        .first()
    )
