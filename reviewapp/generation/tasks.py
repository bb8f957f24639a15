"""Celery adapters: ids in, one service call. Routing is per model (``gpu`` for local models)."""

from __future__ import annotations

from reviewapp.core.tasks import acks_late_task
from reviewapp.generation import services


@acks_late_task(queue="gpu")
def generation_run_execute_task(*, run_pk: int) -> str:
    return services.generation_run_execute(run_pk=run_pk)


@acks_late_task(queue="default", time_limit=120)
def generation_runs_reap_task() -> dict[str, int]:
    return services.generation_runs_reap()
