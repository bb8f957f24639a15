"""What the archive asks of reader studies (filled in by the reader-studies app)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from reviewapp.imaging.models import Study


def studies_readable_by_reader(*, user: AbstractBaseUser) -> QuerySet[Study]:
    """Studies a reader may see images of: those in their assignments of open studies."""
    return Study.objects.none()
