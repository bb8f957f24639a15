"""Reads from the image archive, each with its permission check built in.

Coordinators, analysts and admins see the whole archive; a reader sees only the studies of
their own open assignments (decided by the reader-studies app); anyone else sees nothing.
"""

from __future__ import annotations

import uuid
from datetime import date

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import Http404

from reviewapp.core.access import public_id_get_or_404
from reviewapp.core.roles import Role, user_has_role
from reviewapp.imaging.models import ImportBatch, Instance, Series, Study
from reviewapp.reports.models import Report

User = AbstractBaseUser | AnonymousUser


def _sees_whole_archive(user: User) -> bool:
    return any(user_has_role(user, role) for role in (Role.COORDINATOR, Role.ANALYST, Role.ADMIN))


def dicom_header_is_full_for(*, user: User) -> bool:
    """Whether ``user`` receives the full de-identified DICOM header, or the reader's view.

    By role, with the rule that decides who sees the whole archive: a reader who is also a
    coordinator, analyst or admin gets the full header; everyone else (readers) gets only
    what display needs (dicomweb/reader_view.py)."""
    return _sees_whole_archive(user)


def studies_visible_to(*, user: User) -> QuerySet[Study]:
    """Studies ``user`` may see at all (images and metadata)."""
    if _sees_whole_archive(user):
        return Study.objects.all()
    if user_has_role(user, Role.READER):
        from reviewapp.studies.selectors_hooks import studies_readable_by_reader

        return studies_readable_by_reader(user=user)  # type: ignore[arg-type]
    return Study.objects.none()


def study_get_for_user(
    *,
    user: User,
    public_id: uuid.UUID | str | None = None,
    study_instance_uid: str | None = None,
) -> Study:
    """One study by public id or (de-identified) StudyInstanceUID, or Http404 when the user
    may not see it (the same answer as for a study that does not exist)."""
    if (public_id is None) == (study_instance_uid is None):
        raise ValueError("Give exactly one of public_id or study_instance_uid.")
    visible = studies_visible_to(user=user)
    if public_id is not None:
        return public_id_get_or_404(visible, public_id, what="study")
    found = visible.filter(study_instance_uid=study_instance_uid).first()
    if found is None:
        raise Http404("No such study.")
    return found


def _with_counts(queryset: QuerySet[Study]) -> QuerySet[Study]:
    return queryset.annotate(
        series_count=Count("series", distinct=True),
        instance_count=Count("series__instances", distinct=True),
        has_ai_report=Exists(Report.objects.filter(study=OuterRef("pk"), kind=Report.Kind.AI)),
        has_original_report=Exists(
            Report.objects.filter(study=OuterRef("pk"), kind=Report.Kind.ORIGINAL)
        ),
    )


def studies_search(
    *,
    user: User,
    modality: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
    text: str = "",
    has_ai_report: bool | None = None,
    stratum: str = "",
) -> QuerySet[Study]:
    """Studies visible to ``user`` matching every given filter, with series/instance counts.

    ``modality`` matches one modality of a study (CT finds "CT" and "CT\\PT"); ``text``
    searches study, series descriptions and the pseudonymised accession.
    """
    queryset = studies_visible_to(user=user)
    # Filters on series go through EXISTS so the counts below are never multiplied by joins.
    if modality.strip():
        queryset = queryset.filter(
            Exists(Series.objects.filter(study=OuterRef("pk"), modality__iexact=modality.strip()))
        )
    if date_from is not None:
        queryset = queryset.filter(study_date__gte=date_from)
    if date_to is not None:
        queryset = queryset.filter(study_date__lte=date_to)
    if text.strip():
        term = text.strip()
        queryset = queryset.filter(
            Q(description__icontains=term)
            | Q(body_part__icontains=term)
            | Q(accession_pseudonym__iexact=term)
            | Exists(Series.objects.filter(study=OuterRef("pk"), description__icontains=term))
        )
    if has_ai_report is not None:
        ai_report = Exists(Report.objects.filter(study=OuterRef("pk"), kind=Report.Kind.AI))
        queryset = queryset.filter(ai_report if has_ai_report else ~ai_report)
    queryset = _with_counts(queryset)
    if stratum.strip():
        queryset = queryset.filter(stratum__iexact=stratum.strip())
    return queryset.order_by("-study_date", "-created_at")


def study_modalities_known(*, user: User) -> list[str]:
    """Modalities present among the studies ``user`` sees (for the filter's choices)."""
    values = (
        Series.objects.filter(study__in=studies_visible_to(user=user))
        .exclude(modality="")
        .values_list("modality", flat=True)
        .distinct()
    )
    return sorted(set(values))


def study_strata_known(*, user: User) -> list[str]:
    """Strata present among the studies ``user`` sees."""
    values = (
        studies_visible_to(user=user).exclude(stratum="").values_list("stratum", flat=True)
    ).distinct()
    return sorted(set(values))


def study_series_list(*, user: User, study: Study) -> QuerySet[Series]:
    """The series of a study the user may see, with available and quarantined counts."""
    if not studies_visible_to(user=user).filter(pk=study.pk).exists():
        raise Http404("No such study.")
    return study.series.annotate(
        instance_count=Count("instances", filter=Q(instances__status=Instance.Status.AVAILABLE)),
        quarantined_count=Count(
            "instances", filter=Q(instances__status=Instance.Status.QUARANTINED)
        ),
    ).order_by("series_number", "id")


def _manages_imports(user: User) -> bool:
    return user_has_role(user, Role.COORDINATOR) or user_has_role(user, Role.ADMIN)


def import_batches_visible_to(*, user: User) -> QuerySet[ImportBatch]:
    """Import batches: coordinators and admins see all (imports are shared work)."""
    if _manages_imports(user):
        return ImportBatch.objects.select_related("created_by")
    return ImportBatch.objects.none()


def import_batch_get_for_user(*, user: User, public_id: uuid.UUID | str) -> ImportBatch:
    """One import batch or Http404."""
    return public_id_get_or_404(import_batches_visible_to(user=user), public_id, what="import")


def instances_quarantined_for_user(*, user: User) -> QuerySet[Instance]:
    """Instances waiting for a coordinator's decision (burned-in annotation)."""
    if not _manages_imports(user):
        return Instance.objects.none()
    return (
        Instance.objects.filter(status=Instance.Status.QUARANTINED)
        .select_related("series__study", "import_batch")
        .order_by("created_at", "id")
    )


def instance_quarantined_get_for_user(*, user: User, public_id: uuid.UUID | str) -> Instance:
    """One quarantined instance the user may decide on, or Http404."""
    return public_id_get_or_404(instances_quarantined_for_user(user=user), public_id, what="image")
