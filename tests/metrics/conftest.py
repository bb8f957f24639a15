"""Rated studies for the metrics tests: the analysis tests' builders, with report sources."""

from __future__ import annotations

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

__all__ = ["RatedStudy", "build_error_study", "build_pairwise_study"]
