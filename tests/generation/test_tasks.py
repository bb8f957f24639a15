"""Task declarations: which queue each task goes to, and the delivery guarantees they carry."""

from __future__ import annotations

import pytest

from reviewapp.celery import app
from reviewapp.generation import tasks
from reviewapp.imaging.tasks import dicom_import_task


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        (tasks.generation_run_execute_task, "gpu"),
        (tasks.generation_runs_reap_task, "default"),
        (dicom_import_task, "default"),
    ],
)
def test_each_task_goes_to_its_queue_through_the_routes_setting(task, queue: str) -> None:  # type: ignore[no-untyped-def]
    # Routed by the setting, not by the per-task ``queue`` attribute (deprecated in Celery,
    # ignored from 6.0): the router alone must give the right queue.
    assert app.amqp.router.route({}, task.name)["queue"].name == queue
    assert task.acks_late
    assert task.reject_on_worker_lost


def test_a_run_sent_to_a_named_queue_goes_there() -> None:
    # The retrieval baseline and HTTP models run on "default": the sender names the queue.
    route = app.amqp.router.route({"queue": "default"}, tasks.generation_run_execute_task.name)
    assert route["queue"].name == "default"
