"""Reads of report texts, with their permission checks.

Which report of a pair is the AI's is exactly what readers must not learn, so report kinds and
provenance are visible to coordinators, analysts and admins only; readers get report texts
through the reader-study selectors, which hide the source.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet

from reviewapp.core.roles import Role, user_has_role
from reviewapp.imaging.models import Study
from reviewapp.reports.models import Report, ReportSource


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


def report_sources_list(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[ReportSource]:
    """Every report source with ``report_count`` (latest versions) and ``study_count``
    (coordinators, analysts, admins only: sources are what blinding hides from readers)."""
    if not _sees_provenance(user):
        raise PermissionDenied
    latest = Q(reports__is_latest=True)
    return (
        ReportSource.objects.select_related("model_config")
        .annotate(
            report_count=Count("reports", filter=latest),
            study_count=Count("reports__study", filter=latest, distinct=True),
        )
        .order_by("kind", "name", "version", "id")
    )
