"""The only way to declare a Celery task here.

Every task acknowledges late and is rejected back to the queue when its worker dies, so a
crash never loses work; the database row it works on decides whether a redelivery has
anything left to do (tasks must be idempotent). Bare ``shared_task`` is not used. Which queue a
task goes to is decided in one place, ``CELERY_TASK_ROUTES`` in settings.

Database connections in a worker: Celery's Django fixup closes every connection before and
after each task unless ``CELERY_DB_REUSE_MAX`` is set, so each task paid for a new PostgreSQL
connection (3-13 ms measured, a large part of a generation run's bookkeeping). A prefork pool
child runs one task at a time on one thread, so it keeps its connection instead, and treats
each task the way Django treats a request: before and after it, a broken or old connection is
closed (``close_old_connections``) and the next first query health-checks it. Session-level
advisory locks must not outlive the task that took them on a kept connection, so each task
ends by releasing them all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from celery import shared_task
from celery.signals import task_postrun, task_prerun, worker_process_init
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections

F = TypeVar("F", bound=Callable[..., Any])

# How long a pool child keeps one database connection (seconds); then it opens a fresh one.
WORKER_CONNECTION_MAX_AGE = 600


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


@worker_process_init.connect
def _keep_connections_in_pool_child(**_: Any) -> None:
    # Only here, in the pool child: web processes keep CONN_MAX_AGE from settings (ASGI runs
    # sync views on a thread pool, where kept connections would pile up per thread).
    for connection in connections.all():
        connection.settings_dict["CONN_MAX_AGE"] = WORKER_CONNECTION_MAX_AGE


def _in_worker(task: Any) -> bool:
    # An eager task runs inside its caller (a request, a test), whose connection and
    # transaction are not the task's to close or unlock.
    return not getattr(task.request, "is_eager", False)


@task_prerun.connect
def _check_connections_before_task(*, task: Any, **_: Any) -> None:
    if _in_worker(task):
        close_old_connections()


@task_postrun.connect
def _release_session_state_after_task(*, task: Any, **_: Any) -> None:
    if not _in_worker(task):
        return
    for connection in connections.all(initialized_only=True):
        if connection.connection is None or connection.vendor != "postgresql":
            continue
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock_all()")
        except DatabaseError:
            connection.close()  # broken: the server dropped its locks with the session
    close_old_connections()
