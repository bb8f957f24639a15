"""Celery adapters of the analysis: ids and parameters in, one service call (queue
``default``: CPU work of seconds)."""

from __future__ import annotations

from typing import Any

from reviewapp.analysis import results
from reviewapp.core.tasks import acks_late_task


@acks_late_task()
def analysis_rest_compute_task(*, reader_study_pk: int, params: dict[str, Any], key: str) -> str:
    return results.analysis_rest_compute(reader_study_pk=reader_study_pk, params=params, key=key)
