"""What the archive asks of reader studies: which images a reader may load."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from reviewapp.imaging.models import Study


def studies_readable_by_reader(*, user: AbstractBaseUser) -> QuerySet[Study]:
    """Studies a reader may see images of: those of their assignments in every reader study
    they may see (open, paused or locked), so that a case page a reader can open, even read-only,
    never shows a viewer that cannot load its images."""
    from reviewapp.studies.selectors import assignments_visible_to_reader

    if not user.is_authenticated:
        return Study.objects.none()
    case_studies = assignments_visible_to_reader(user=user).values("case__imaging_study_id")
    return Study.objects.filter(id__in=case_studies)
