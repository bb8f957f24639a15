"""Celery adapters: ids in, one service call. Routing is per model (``gpu`` for local models,
see ``ModelConfig.queue``), with ``CELERY_TASK_ROUTES`` as the fallback."""

from __future__ import annotations

from reviewapp.core.tasks import acks_late_task
from reviewapp.generation import services


@acks_late_task()
def generation_run_execute_task(*, run_pk: int) -> str:
    return services.generation_run_execute(run_pk=run_pk)


@acks_late_task(time_limit=120)
def generation_runs_reap_task() -> dict[str, int]:
    return services.generation_runs_reap()
