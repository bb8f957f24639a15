"""Celery adapters: ids in, one service call (queue ``default``: the weight-free metrics are
light CPU work)."""

from __future__ import annotations

from reviewapp.core.tasks import acks_late_task
from reviewapp.metrics import services


@acks_late_task()
def metric_job_execute_task(*, job_pk: int) -> str:
    return services.metric_job_execute(job_pk=job_pk)
