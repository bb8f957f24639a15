"""The only way to declare a Celery task here.

Every task acknowledges late and is rejected back to the queue when its worker dies, so a
crash never loses work; the database row it works on decides whether a redelivery has
anything left to do (tasks must be idempotent). Bare ``shared_task`` is not used. Which queue a
task goes to is decided in one place, ``CELERY_TASK_ROUTES`` in settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from celery import shared_task
from django.conf import settings

F = TypeVar("F", bound=Callable[..., Any])


def acks_late_task(*, time_limit: int | None = None, **options: Any) -> Callable[[F], Any]:
    hard = time_limit or settings.CELERY_TASK_HARD_TIME_LIMIT

    def decorate(func: F) -> Any:
        return shared_task(
            acks_late=True,
            reject_on_worker_lost=True,
            time_limit=hard,
            soft_time_limit=max(hard - 30, 1),
            **options,
        )(func)

    return decorate
