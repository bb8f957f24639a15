"""The analysis page's count of practice ratings it leaves out.

A tag rather than a value from the page's view: the view and its cached results compute the
analysis; this one count is what the page says about rows the analysis never sees.
"""

from __future__ import annotations

from django import template

from reviewapp.analysis.selectors import practice_ratings_count
from reviewapp.studies.models import ReaderStudy

register = template.Library()


@register.simple_tag
def practice_ratings_excluded(study: ReaderStudy) -> int:
    """How many of ``study``'s ratings are of practice cases (the page got the study through
    ``reader_study_get_for_analyst``)."""
    return practice_ratings_count(reader_study=study)
