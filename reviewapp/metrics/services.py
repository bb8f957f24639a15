"""Every write of automated metrics: queue a job per source, run it, store its results.

At-least-once delivery, exactly one result per thing computed: a job's results are upserted on
their identity (candidate version, reference version, metric, metric version, parameter
digest), so a redelivered or repeated job rewrites the same rows with the same values; a job
that is already finished does nothing. Progress is saved after every batch, in its own
transaction, and pushed to the study's channel group after commit.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from inference.metrics import (
    FAILED,
    SCORED,
    SKIPPED,
    Metric,
    MetricError,
    metric_create,
    metric_names,
)
from reviewapp.analysis.selectors import user_may_analyse
from reviewapp.core.events import send_on_commit
from reviewapp.metrics.models import MetricJob, MetricResult
from reviewapp.metrics.schemas import (
    metric_detail_validate,
    metric_params_validate,
    metric_specs_validate,
    metric_values_validate,
)
from reviewapp.metrics.selectors import (
    MetricPair,
    metric_job_counts,
    metric_sources,
    report_text,
    source_key,
)
from reviewapp.studies.models import ReaderStudy

logger = logging.getLogger(__name__)
Actor = AbstractBaseUser | AnonymousUser | None  # None: the shell


def study_group_name(reader_study_public_id: Any) -> str:
    return f"metrics.study.{reader_study_public_id}"


def metric_specs() -> list[dict[str, Any]]:
    """The metrics a new job runs: every weight-free metric, then each model-based metric
    whose local model is configured (``RADREVIEW_BERTSCORE_DIR``, ``RADREVIEW_CHEXBERT_DIR``,
    ``RADREVIEW_RADGRAPH_DIR``, ``RADREVIEW_JUDGE_*``; never downloaded)."""
    specs: list[dict[str, Any]] = [
        {"name": name, "params": {}} for name in metric_names(tier="weight-free")
    ]
    device = settings.METRICS_DEVICE
    if settings.METRICS_BERTSCORE_DIR:
        specs.append({"name": "bertscore", "params": {"model_dir": settings.METRICS_BERTSCORE_DIR}})
    if settings.METRICS_CHEXBERT_DIR:
        specs.append(
            {
                "name": "f1chexbert",
                "params": {"model_dir": settings.METRICS_CHEXBERT_DIR, "device": device},
            }
        )
    if settings.METRICS_RADGRAPH_DIR:
        specs.append(
            {
                "name": "radgraph_f1",
                "params": {"model_dir": settings.METRICS_RADGRAPH_DIR, "device": device},
            }
        )
    if settings.METRICS_JUDGE_BACKEND:
        specs.append(
            {
                "name": "green_judge",
                "params": {
                    "backend": settings.METRICS_JUDGE_BACKEND,
                    "location": settings.METRICS_JUDGE_LOCATION,
                    "model_name": settings.METRICS_JUDGE_MODEL,
                    "max_new_tokens": settings.METRICS_JUDGE_MAX_NEW_TOKENS,
                },
            }
        )
    return specs


def params_digest(params: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a metric's parameters (part of a result's identity)."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _progress_on_commit(job: MetricJob) -> None:
    send_on_commit(
        study_group_name(job.reader_study.public_id),
        lambda: {"type": "metrics.progress", **metric_job_counts(job)},
    )


# --- queue -----------------------------------------------------------------------------------


@transaction.atomic
def metric_jobs_create(*, user: Actor, reader_study: ReaderStudy) -> list[MetricJob]:
    """Queue one job per candidate source of the study; a source whose job is still queued or
    running keeps that job (returned too) instead of getting a second one.

    Precondition: ``reader_study`` came from ``reader_study_get_for_analyst`` for ``user``.
    """
    if user is not None and not user_may_analyse(user):
        raise PermissionDenied("Only analysts, coordinators of the study and admins may do this.")
    specs = metric_specs()
    metric_specs_validate(specs)
    jobs: list[MetricJob] = []
    queued: list[MetricJob] = []
    for group in metric_sources(reader_study=reader_study):
        existing = MetricJob.objects.filter(
            reader_study=reader_study,
            source=group.source,
            status__in=[MetricJob.Status.QUEUED, MetricJob.Status.RUNNING],
        ).first()
        if existing is not None:
            jobs.append(existing)
            continue
        job = MetricJob(
            reader_study=reader_study,
            source=group.source,
            metrics=specs,
            total=len(group.pairs) * len(specs),
            created_by=user if isinstance(user, User) else None,
        )
        try:
            with transaction.atomic():
                job.save()
        except IntegrityError:  # a concurrent request queued it first: join that one
            jobs.append(
                MetricJob.objects.get(
                    reader_study=reader_study,
                    source=group.source,
                    status__in=[MetricJob.Status.QUEUED, MetricJob.Status.RUNNING],
                )
            )
            continue
        jobs.append(job)
        queued.append(job)
        _progress_on_commit(job)
    if queued:
        from reviewapp.metrics.tasks import metric_job_execute_task

        def send() -> None:
            for job in queued:
                metric_job_execute_task.apply_async(
                    kwargs={"job_pk": job.pk}, queue=settings.METRICS_QUEUE
                )

        transaction.on_commit(send)
    return jobs


# --- run -------------------------------------------------------------------------------------


def _rows(
    job: MetricJob, metric: Metric, batch: Sequence[MetricPair], results: list[dict[str, Any]]
) -> list[MetricResult]:
    params = metric.describe()["params"]
    metric_params_validate(params)
    digest = params_digest(params)
    rows = []
    statuses = {
        SCORED: MetricResult.Status.SCORED,
        SKIPPED: MetricResult.Status.SKIPPED,
        FAILED: MetricResult.Status.FAILED,
    }
    for pair, result in zip(batch, results, strict=True):
        scored = result["status"] == SCORED
        values = result["values"] if scored else {}
        detail = result["detail"] if scored else {}
        metric_values_validate(values)
        metric_detail_validate(detail)
        rows.append(
            MetricResult(
                report=pair.candidate,
                reference=pair.reference,
                metric=metric.name,
                metric_version=metric.version,
                params=params,
                params_sha256=digest,
                status=statuses[result["status"]],
                reason="" if scored else result["reason"],
                values=values,
                detail=detail,
                job=job,
            )
        )
    return rows


@transaction.atomic
def _results_store(
    *, job: MetricJob, rows: list[MetricResult], scored: int, skipped: int, failed: int
) -> None:
    MetricResult.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["report", "reference", "metric", "metric_version", "params_sha256"],
        update_fields=["params", "status", "reason", "values", "detail", "job", "computed_at"],
    )
    MetricJob.objects.filter(pk=job.pk).update(
        done=F("done") + len(rows),
        scored=F("scored") + scored,
        skipped=F("skipped") + skipped,
        failed=F("failed") + failed,
    )
    job.refresh_from_db(fields=["done", "scored", "skipped", "failed"])
    _progress_on_commit(job)


@transaction.atomic
def _job_set(job: MetricJob, **fields: Any) -> None:
    for name, value in fields.items():
        setattr(job, name, value)
    job.save(update_fields=[*fields, "updated_at"])
    _progress_on_commit(job)


def metric_job_execute(*, job_pk: int) -> str:
    """Score every candidate report of the job's source with each of its metrics and store
    the results; a metric that cannot run (a model directory missing a file) fails the job
    with its message. Returns the job's final status."""
    job = MetricJob.objects.select_related("reader_study", "source").filter(pk=job_pk).first()
    if job is None or job.is_finished:
        return job.status if job else "missing"
    wanted = source_key(job.source_id)
    pairs = [
        pair
        for group in metric_sources(reader_study=job.reader_study)
        if group.key == wanted
        for pair in group.pairs
    ]
    # A redelivered job starts again from nothing; the upserts make the rerun harmless.
    _job_set(
        job,
        status=MetricJob.Status.RUNNING,
        started_at=timezone.now(),
        total=len(pairs) * len(job.metrics),
        done=0,
        scored=0,
        skipped=0,
        failed=0,
        error_code="",
        error_message="",
    )
    texts = [(report_text(p.candidate), report_text(p.reference)) for p in pairs]
    try:
        for index, spec in enumerate(job.metrics):
            metric = metric_create(spec["name"], spec["params"])
            # Each metric's own batch: the vectorised ones take many pairs per call, a judge a
            # few, so the progress bar moves every few seconds either way.
            step = metric.batch_pairs
            for start in range(0, len(pairs), step):
                batch = pairs[start : start + step]
                results = metric.score(texts[start : start + step])
                rows = _rows(job, metric, batch, results)
                # Pairs are counted once, by the first metric: a skip is the pair's, not the
                # metric's (every metric skips the same blank or missing references). A
                # failure is one metric's, so each is counted.
                first = index == 0
                _results_store(
                    job=job,
                    rows=rows,
                    scored=sum(r.status == MetricResult.Status.SCORED for r in rows)
                    if first
                    else 0,
                    skipped=sum(r.status == MetricResult.Status.SKIPPED for r in rows)
                    if first
                    else 0,
                    failed=sum(r.status == MetricResult.Status.FAILED for r in rows),
                )
    except MetricError as exc:
        logger.warning("Metric job %s failed: %s", job.public_id, exc.code)
        _job_set(
            job,
            status=MetricJob.Status.FAILED,
            error_code=exc.code,
            error_message=str(exc),
            finished_at=timezone.now(),
        )
        return job.status
    except SoftTimeLimitExceeded:
        _job_set(
            job,
            status=MetricJob.Status.FAILED,
            error_code="metric_time_limit",
            error_message="The job ran past its time limit; run it again, or ask an "
            "administrator to raise RADREVIEW_TASK_TIME_LIMIT.",
            finished_at=timezone.now(),
        )
        return job.status
    except Exception:
        # Not left "running": a running job is joined by the next request, never re-queued.
        _job_set(
            job,
            status=MetricJob.Status.FAILED,
            error_code="metric_internal_error",
            error_message="An unexpected error stopped the job; the worker log has the details.",
            finished_at=timezone.now(),
        )
        raise
    _job_set(job, status=MetricJob.Status.SUCCEEDED, finished_at=timezone.now())
    return job.status
