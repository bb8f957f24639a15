"""Through the real queue: Redis, real Celery worker processes, and a worker killed with
SIGKILL in the middle of a generation."""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.db import connection

from reviewapp.generation import services
from reviewapp.generation.models import GenerationRun, ModelConfig
from reviewapp.reports.models import Report
from tests.generation.conftest import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def baseline(db: None) -> ModelConfig:
    # Transactional tests flush the database, taking the migration-made baseline with them.
    config, _ = ModelConfig.objects.get_or_create(
        name="retrieval-baseline", defaults={"backend": "retrieval"}
    )
    return config


def test_a_killed_worker_loses_nothing_and_the_study_gets_exactly_one_report(
    start_worker, coordinator, two_radiographs, baseline
) -> None:
    config = baseline
    # Slow enough to kill mid-run: the throttle stands in for a long GPU generation.
    config.parameters = {"seed": 0, "throttle_seconds": 6}
    config.save()
    study = two_radiographs[0]
    first = start_worker("first")

    job = services.generation_job_create(user=coordinator, model_config=config, studies=[study]).job
    run = job.runs.get()
    wait_for(
        lambda: GenerationRun.objects.get(pk=run.pk).status == "running",
        timeout=90,
        what="the first worker to start the run",
    )
    time.sleep(1.0)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)

    run.refresh_from_db()
    assert (run.status, run.attempts) == ("running", 1)
    first_worker = run.worker
    assert not Report.objects.filter(study=study, kind=Report.Kind.AI).exists()

    start_worker("second")
    # The dead worker's database session (and with it the run's lock) goes away with it; the
    # reaper, which beat runs every minute in production, then hands the run back to the queue.
    reaped: dict[str, int] = {}

    def reap() -> bool:
        reaped.update(services.generation_runs_reap())
        return reaped["requeued"] == 1

    wait_for(reap, timeout=20, what="the reaper to notice the dead worker")
    wait_for(
        lambda: GenerationRun.objects.get(pk=run.pk).status == "succeeded",
        timeout=120,
        what="the second worker to finish the run",
    )

    run.refresh_from_db()
    assert run.attempts == 2
    assert run.worker != first_worker
    assert run.provenance["attempt"] == 2
    ai_reports = Report.objects.filter(study=study, kind=Report.Kind.AI)
    assert list(ai_reports) == [run.report]


def test_a_queued_job_is_worked_through_by_a_real_worker(
    start_worker, coordinator, two_radiographs, baseline
) -> None:
    config = baseline
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        test_started = cursor.fetchone()[0]
    start_worker("only")

    job = services.generation_job_create(
        user=coordinator, model_config=config, studies=two_radiographs
    ).job

    wait_for(
        lambda: job.runs.filter(status="succeeded").count() == 2,
        timeout=120,
        what="both runs to succeed",
    )
    assert Report.objects.filter(kind=Report.Kind.AI).count() == 2
    assert set(job.runs.values_list("attempts", flat=True)) == {1}
    # The worker did both runs on one database connection, kept open (a new connection per
    # task is slow), and that connection holds no run lock after the runs.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, backend_start FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND backend_start >= %s",
            [test_started],
        )
        sessions = cursor.fetchall()
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
        advisory_locks = cursor.fetchone()[0]
    first_started = min(job.runs.values_list("started_at", flat=True))
    assert len(sessions) == 1
    assert sessions[0][1] < first_started
    assert advisory_locks == 0
