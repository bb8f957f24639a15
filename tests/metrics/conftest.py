"""Rated studies for the metrics tests: the analysis tests' builders, with report sources."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import AbstractUser

from reviewapp.core.roles import Role
from tests.analysis.conftest import (  # noqa: F401 (fixtures used by name)
    RatedStudy,
    build_error_study,
    build_pairwise_study,
    error_study,
    other_coordinator,
    pairwise,
    third_reader,
)
from tests.generation.conftest import start_worker  # noqa: F401 (fixture used by name)


@pytest.fixture
def frank_coordinator(make_user: Callable[..., AbstractUser]) -> AbstractUser:
    """Coordinates other studies, not this one."""
    return make_user("hank", Role.COORDINATOR)


__all__ = ["RatedStudy", "build_error_study", "build_pairwise_study"]
