"""What the archive asks of reader studies: which images a reader may load."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from reviewapp.imaging.models import Study


def studies_readable_by_reader(*, user: AbstractBaseUser) -> QuerySet[Study]:
    """Studies a reader may see images of: those in their assignments of open studies."""
    from reviewapp.studies.models import Assignment, ReaderStudy

    if not user.is_authenticated:
        return Study.objects.none()
    case_studies = Assignment.objects.filter(
        reader_id=user.pk, reader_study__status=ReaderStudy.Status.OPEN
    ).values("case__imaging_study_id")
    return Study.objects.filter(id__in=case_studies)
