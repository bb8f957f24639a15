"""Through the real queue: Redis, real Celery worker processes, and a worker killed with
SIGKILL in the middle of a generation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from reviewapp.generation import services
from reviewapp.generation.models import GenerationRun, ModelConfig
from reviewapp.reports.models import Report
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen]]:
    """Start Celery workers on the test database and this test's Redis; stop them after."""
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    params = connection.settings_dict
    env = dict(os.environ)
    env["DATABASE_URL"] = (
        f"postgres://{params['USER']}@{params['HOST']}:{params['PORT']}/{params['NAME']}"
    )
    started: list[subprocess.Popen] = []

    def start(name: str) -> subprocess.Popen:
        log = (tmp_path / f"{name}.log").open("w")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "reviewapp",
                "worker",
                "-Q",
                "default,gpu",
                "--concurrency",
                "1",
                "-n",
                f"{name}@%h",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: SIGKILL reaches the pool child too
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    for log in sorted(tmp_path.glob("*.log")):
        sys.stderr.write(f"--- {log.name}\n{log.read_text()[-3000:]}\n")


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
    _wait_for(
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

    _wait_for(reap, timeout=20, what="the reaper to notice the dead worker")
    _wait_for(
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
    start_worker("only")

    job = services.generation_job_create(
        user=coordinator, model_config=config, studies=two_radiographs
    ).job

    _wait_for(
        lambda: job.runs.filter(status="succeeded").count() == 2,
        timeout=120,
        what="both runs to succeed",
    )
    assert Report.objects.filter(kind=Report.Kind.AI).count() == 2
    assert set(job.runs.values_list("attempts", flat=True)) == {1}
