"""Every write of AI report generation: jobs, runs, the run executor and the reaper.

Exactly-once reports under at-least-once delivery: a task may be delivered twice (a killed
worker's message comes back; the reaper re-sends) so each run is guarded by a PostgreSQL
session advisory lock held for the whole generation by the worker doing it. The lock dies with
the worker's database connection, so "running but unlocked" means its worker is gone, which
is how the reaper tells a dead run from a long one. The report is written in the same
transaction that marks the run succeeded, under a row lock, so a second delivery finds it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from inference.backends import BACKEND_KINDS, backend_get
from inference.backends.base import Backend
from inference.text import PROMPT_FIELDS, prompt_fields
from inference.types import GenerationRequest, InferenceError, RetryableInferenceError
from reviewapp.core.access import public_id_parse
from reviewapp.core.errors import ApplicationError
from reviewapp.core.events import send_on_commit
from reviewapp.core.roles import Role, user_has_role
from reviewapp.generation import selectors
from reviewapp.generation.inputs import retrieval_corpus_build, study_input_build, study_kind
from reviewapp.generation.models import GenerationJob, GenerationRun, ModelConfig
from reviewapp.generation.schemas import (
    KNOWN_PARAMETERS,
    MAX_THROTTLE_SECONDS,
    parameters_validate,
    provenance_validate,
)
from reviewapp.imaging.models import Study
from reviewapp.reports.models import Report
from reviewapp.reports.services import report_source_for_model

logger = logging.getLogger(__name__)
Actor = AbstractBaseUser | AnonymousUser | None  # None: the shell (manage.py generate_reports)

LOCK_NAMESPACE = 0x6765  # "ge": keeps our advisory-lock keys apart from other apps'
RETRY_DELAY_SECONDS = 30


def job_group_name(job_public_id: Any) -> str:
    return f"generation.job.{job_public_id}"


# --- model configurations ------------------------------------------------------------------


def model_config_check(
    *,
    backend: str,
    location: str,
    served_model_name: str,
    parameters: Any,
    prompt_cxr: str,
    prompt_ct: str,
    time_limit_seconds: int = 900,
) -> None:
    """Raise ValidationError naming each field that cannot work."""
    errors: dict[str, list[str]] = {}
    # Redis hands an unacknowledged task to another worker after the visibility timeout; a run
    # allowed to last longer would be delivered twice while still going.
    longest = settings.CELERY_VISIBILITY_TIMEOUT - 600
    if not 10 <= time_limit_seconds <= longest:
        errors.setdefault("time_limit_seconds", []).append(
            f"Choose 10 to {longest} seconds (the broker's visibility timeout less a margin)."
        )
    if backend not in BACKEND_KINDS:
        errors.setdefault("backend", []).append(f"Choose one of {', '.join(BACKEND_KINDS)}.")
    if backend == ModelConfig.Backend.TRANSFORMERS and not location:
        errors.setdefault("location", []).append("A transformers model needs its directory.")
    if backend == ModelConfig.Backend.OPENAI:
        if not location.startswith(("http://", "https://")):
            errors.setdefault("location", []).append("Give the server's http(s) base URL.")
        if not served_model_name:
            errors.setdefault("served_model_name", []).append("Name the model the server serves.")
    if not isinstance(parameters, dict):
        errors.setdefault("parameters", []).append("Parameters must be a JSON object.")
    else:
        unknown = sorted(set(parameters) - KNOWN_PARAMETERS)
        if unknown:
            # Said on its own: a misspelt name is the usual mistake, and the schema's message
            # would not list the names it knows.
            errors.setdefault("parameters", []).append(
                f"Unknown parameters {unknown}; known: {sorted(KNOWN_PARAMETERS)}."
            )
        else:
            try:
                parameters_validate(parameters)
            except ValidationError as exc:
                errors.setdefault("parameters", []).extend(exc.messages)
    for name, template in (("prompt_cxr", prompt_cxr), ("prompt_ct", prompt_ct)):
        try:
            unknown_fields = prompt_fields(template) - PROMPT_FIELDS
        except ValueError as exc:
            errors.setdefault(name, []).append(f"Broken template: {exc}.")
            continue
        if unknown_fields:
            errors.setdefault(name, []).append(
                f"Unknown fields {sorted(unknown_fields)}; allowed: {sorted(PROMPT_FIELDS)}."
            )
    if errors:
        raise ValidationError(errors)


MODEL_CONFIG_FIELDS = (
    "name", "backend", "location", "served_model_name", "parameters", "prompt_cxr",
    "prompt_ct", "max_attempts", "time_limit_seconds", "is_active",
)  # fmt: skip


@transaction.atomic
def model_config_save(
    *, user: Actor, model_config: ModelConfig | None = None, **values: Any
) -> ModelConfig:
    """Create a model configuration, or change one; every field is checked first."""
    _require_coordinator(user)
    unknown = set(values) - set(MODEL_CONFIG_FIELDS)
    if unknown:
        raise ValueError(f"not model configuration fields: {sorted(unknown)}")
    config = model_config or ModelConfig()
    for key, value in values.items():
        setattr(config, key, value)
    model_config_check(
        backend=config.backend,
        location=config.location,
        served_model_name=config.served_model_name,
        parameters=config.parameters,
        prompt_cxr=config.prompt_cxr,
        prompt_ct=config.prompt_ct,
        time_limit_seconds=config.time_limit_seconds,
    )
    config.full_clean()
    config.save()
    # Every configured model is a report source from the start, so coordinators see it listed.
    report_source_for_model(model_config=config)
    return config


# --- progress events -------------------------------------------------------------------------


def run_event(run: GenerationRun) -> dict[str, Any]:
    """The websocket/API view of one run: ids, status and our own error text, never PHI."""
    return {
        "run": str(run.public_id),
        "study": str(run.study.public_id),
        "status": run.status,
        "attempts": run.attempts,
        "max_attempts": run.max_attempts,
        "error": run.error_message,
        "report": str(run.report.public_id) if run.report_id and run.report else None,
    }


def job_counts(job: GenerationJob) -> dict[str, int]:
    counts = {status.value: 0 for status in GenerationRun.Status}
    for row in job.runs.order_by().values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    counts["total"] = sum(counts.values())
    counts["finished"] = sum(counts[s] for s in GenerationRun.FINISHED)
    return counts


def _progress_on_commit(job: GenerationJob, runs: list[GenerationRun]) -> None:
    """After commit, publish the job's counts and these runs as they were just saved.

    The runs are not read again: they were saved in the transaction that committed (callers
    select their study with them, which the event names).
    """
    send_on_commit(
        job_group_name(job.public_id),
        lambda: {
            "type": "generation.progress",
            "job": str(job.public_id),
            "counts": job_counts(job),
            "runs": [run_event(run) for run in runs],
        },
    )


# --- jobs ------------------------------------------------------------------------------------


@dataclass
class JobCreated:
    job: GenerationJob
    skipped: list[tuple[Study, str]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # listed ids that matched no study


def _enqueue_on_commit(runs: list[GenerationRun], config: ModelConfig) -> None:
    from reviewapp.generation.tasks import generation_run_execute_task

    def send() -> None:
        for run in runs:
            generation_run_execute_task.apply_async(
                kwargs={"run_pk": run.pk},
                queue=config.queue,
                time_limit=config.time_limit_seconds,
                soft_time_limit=max(config.time_limit_seconds - 30, 1),
            )

    transaction.on_commit(send)


def _require_coordinator(user: Actor) -> None:
    if user is not None and not user_has_role(user, Role.COORDINATOR):
        raise PermissionDenied("Only coordinators can generate AI reports.")


def studies_unreported(studies: QuerySet[Study], *, model_config: ModelConfig) -> QuerySet[Study]:
    """``studies`` less those ``model_config`` has already reported ("skip studies this model
    already reported"); an error saying so when that leaves none of them."""
    unreported = studies.exclude(
        generation_runs__job__model_config=model_config,
        generation_runs__status=GenerationRun.Status.SUCCEEDED,
    )
    if not unreported.exists() and studies.exists():
        raise ApplicationError(
            f"Nothing queued: every chosen study already has a report from {model_config.name} "
            "(studies this model already reported are skipped).",
            code="already_reported",
        )
    return unreported


@transaction.atomic
def generation_job_create(
    *, user: Actor, model_config: ModelConfig, studies: Iterable[Study]
) -> JobCreated:
    """Queue one run per study; studies that cannot be generated are skipped with a reason.

    ``user`` None means the shell (manage.py generate_reports).
    """
    _require_coordinator(user)
    if not model_config.is_active:
        raise ApplicationError(f"Model {model_config.name} is switched off.", code="inactive")
    result_skipped: list[tuple[Study, str]] = []
    wanted: list[Study] = []
    seen: set[int] = set()
    for study in studies:
        if study.pk in seen:
            continue
        seen.add(study.pk)
        if study_kind(study) is None:
            result_skipped.append(
                (study, f"modalities {study.modalities or 'unknown'} are neither CXR nor CT")
            )
        else:
            wanted.append(study)
    if not wanted:
        raise ApplicationError(
            "None of the chosen studies can be generated: "
            + "; ".join(f"{s.public_id}: {why}" for s, why in result_skipped[:10])
            if result_skipped
            else "Choose at least one study.",
            code="no_studies",
        )
    job = GenerationJob.objects.create(
        model_config=model_config,
        created_by_id=user.pk if user is not None and user.is_authenticated else None,
    )
    now = timezone.now()
    runs = GenerationRun.objects.bulk_create(
        [
            GenerationRun(
                job=job, study=study, max_attempts=model_config.max_attempts, queued_at=now
            )
            for study in wanted
        ]
    )
    _enqueue_on_commit(runs, model_config)
    _progress_on_commit(job, [])
    return JobCreated(job=job, skipped=result_skipped)


@transaction.atomic
def generation_job_create_from_selection(
    *,
    user: Actor,
    model_config: ModelConfig,
    modality: str = "",
    stratum: str = "",
    study_refs: list[str] | None = None,
    only_missing: bool = False,
    skip_unknown: bool = False,
) -> JobCreated:
    """Queue generation for the studies a coordinator selected: the one use case behind the
    generation page, the API and ``manage.py generate_reports``.

    ``study_refs``: public ids or StudyInstanceUIDs, narrowed by ``modality`` and
    ``stratum``. A listed id matching no such study refuses the whole request (code
    ``invalid``, field ``studies``) unless ``skip_unknown``, which queues the rest and names
    it in ``unknown``. ``user`` None means the shell.
    """
    studies = selectors.studies_for_generation(user=user, modality=modality, stratum=stratum)
    unknown: list[str] = []
    if study_refs:
        uuids = [ref for ref in study_refs if public_id_parse(ref) is not None]
        studies = studies.filter(Q(study_instance_uid__in=study_refs) | Q(public_id__in=uuids))
        found = set(studies.values_list("study_instance_uid", flat=True)) | {
            str(key) for key in studies.values_list("public_id", flat=True)
        }
        unknown = sorted({ref for ref in study_refs if ref not in found})
        if unknown and not skip_unknown:
            raise ValidationError(
                {"studies": [f"Unknown or excluded study {ref}" for ref in unknown]}
            )
    if only_missing:
        studies = studies_unreported(studies, model_config=model_config)
    created = generation_job_create(user=user, model_config=model_config, studies=studies)
    created.unknown = unknown
    return created


@transaction.atomic
def generation_job_cancel(*, user: Actor, job: GenerationJob) -> int:
    """Cancel every unfinished run; a run already generating has its result discarded."""
    _require_coordinator(user)
    job = GenerationJob.objects.select_for_update().get(pk=job.pk)
    runs = list(
        GenerationRun.objects.select_for_update(of=("self",))
        .select_related("study", "report")
        .filter(job=job)
        .exclude(status__in=GenerationRun.FINISHED)
    )
    now = timezone.now()
    for run in runs:
        run.status = GenerationRun.Status.CANCELLED
        run.finished_at = now
        run.error_message = "Cancelled by a coordinator."
    GenerationRun.objects.bulk_update(runs, ["status", "finished_at", "error_message"])
    job.cancelled_at = now
    job.save(update_fields=["cancelled_at", "updated_at"])
    _progress_on_commit(job, runs)
    return len(runs)


@transaction.atomic
def generation_run_retry(*, user: Actor, run: GenerationRun) -> GenerationRun:
    """Queue a failed or cancelled run again with a fresh attempt budget."""
    _require_coordinator(user)
    run = (
        GenerationRun.objects.select_for_update(of=("self",))
        .select_related("job__model_config", "study", "report")
        .get(pk=run.pk)
    )
    if run.status not in (GenerationRun.Status.FAILED, GenerationRun.Status.CANCELLED):
        raise ApplicationError(
            f"Only a failed or cancelled run can be re-run; this one is {run.status}.",
            code="not_retryable",
        )
    run.status = GenerationRun.Status.QUEUED
    run.attempts = 0
    run.max_attempts = run.job.model_config.max_attempts
    run.error_message = ""
    run.queued_at = timezone.now()
    run.started_at = run.finished_at = None
    run.save()
    _enqueue_on_commit([run], run.job.model_config)
    _progress_on_commit(run.job, [run])
    return run


# --- execution -------------------------------------------------------------------------------


def _try_session_lock(run_pk: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_NAMESPACE, run_pk])
        return bool(cursor.fetchone()[0])


def _release_session_lock(run_pk: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_NAMESPACE, run_pk])


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _claim(run_pk: int) -> GenerationRun | None:
    """Mark the run running and count the attempt, or return None when there is nothing to do."""
    with transaction.atomic():
        run = (
            # Lock the run row only, not the job, model and study rows joined to it.
            GenerationRun.objects.select_for_update(of=("self",))
            .select_related("job__model_config", "study")
            .filter(pk=run_pk)
            .first()
        )
        if run is None or run.is_finished:
            # None: deleted since it was queued (its study went); nothing is left to do.
            return None
        if run.attempts >= run.max_attempts:
            # A redelivery after the last attempt's worker died: give up, do not loop.
            run.status = GenerationRun.Status.FAILED
            run.error_message = (
                f"Gave up after {run.attempts} attempt(s): the worker stopped before finishing "
                "(killed, out of memory or over its time limit)."
            )
            run.finished_at = timezone.now()
            run.save()
            _progress_on_commit(run.job, [run])
            return None
        run.status = GenerationRun.Status.RUNNING
        run.attempts += 1
        run.started_at = timezone.now()
        run.finished_at = None
        run.worker = _worker_name()
        run.save()
        _progress_on_commit(run.job, [run])
        return run


def _locked_run_with_job(run_pk: int) -> GenerationRun:
    return (
        GenerationRun.objects.select_for_update(of=("self",))
        .select_related("job", "study")
        .get(pk=run_pk)
    )


def _finish(run_pk: int, *, status: str, error: str = "", **values: Any) -> bool:
    """Record the outcome unless the run was cancelled meanwhile; False if discarded."""
    with transaction.atomic():
        run = _locked_run_with_job(run_pk)
        if run.status != GenerationRun.Status.RUNNING:
            return False
        run.status = status
        run.error_message = error
        run.finished_at = timezone.now() if status in GenerationRun.FINISHED else None
        for key, value in values.items():
            setattr(run, key, value)
        run.save()
        _progress_on_commit(run.job, [run])
        return True


def _write_report(run_pk: int, *, findings: str, impression: str, record: dict) -> bool:
    with transaction.atomic():
        run = _locked_run_with_job(run_pk)
        if run.status != GenerationRun.Status.RUNNING or run.report_id is not None:
            return False
        report = Report.objects.create(
            study_id=run.study_id,
            kind=Report.Kind.AI,
            source=report_source_for_model(model_config=run.job.model_config),
            findings=findings,
            impression=impression,
        )
        run.report = report
        run.provenance = record
        run.status = GenerationRun.Status.SUCCEEDED
        run.error_message = ""
        run.finished_at = timezone.now()
        run.save()
        _progress_on_commit(run.job, [run])
        return True


def _request_for(run: GenerationRun) -> tuple[Backend, GenerationRequest]:
    config = run.job.model_config
    study_input = study_input_build(study=run.study)
    backend = backend_get(
        kind=config.backend,
        location=config.location,
        model_name=config.served_model_name,
        **{k: config.parameters[k] for k in ("device", "timeout_s", "retries", "backoff_s")
           if k in config.parameters},
    )  # fmt: skip
    corpus = retrieval_corpus_build(kind=study_input.kind) if backend.needs_corpus else ()
    params = {k: v for k, v in config.parameters.items() if k != "throttle_seconds"}
    return backend, GenerationRequest(
        study=study_input,
        prompt_template=config.prompt_ct if study_input.kind == "CT" else config.prompt_cxr,
        params=params,
        seed=int(config.parameters.get("seed", 0)),
        corpus=corpus,
    )


def generation_run_execute(*, run_pk: int) -> str:
    """Generate the AI report of one run; safe to call again for the same run (redelivery).

    Returns what happened: "busy" (another live worker has it), "skipped" (finished,
    cancelled or deleted), "succeeded", "failed", "requeued" or "discarded" (cancelled mid-run).
    """
    entered = time.perf_counter()
    if not _try_session_lock(run_pk):
        return "busy"
    try:
        run = _claim(run_pk)
        if run is None:
            return "skipped"
        config = run.job.model_config
        started = time.perf_counter()
        try:
            throttle = float(config.parameters.get("throttle_seconds", 0))
            if throttle > 0:
                time.sleep(min(throttle, MAX_THROTTLE_SECONDS))
            loaded = time.perf_counter()
            backend, request = _request_for(run)
            inputs_loaded = time.perf_counter()
            output = backend.generate(request)
            generated = time.perf_counter()
        except RetryableInferenceError as exc:
            if run.attempts < run.max_attempts:
                _finish(run_pk, status=GenerationRun.Status.QUEUED, error=str(exc))
                _requeue_later(run, config)
                return "requeued"
            _finish(run_pk, status=GenerationRun.Status.FAILED, error=str(exc))
            return "failed"
        except InferenceError as exc:
            _finish(run_pk, status=GenerationRun.Status.FAILED, error=str(exc))
            return "failed"
        except SoftTimeLimitExceeded:
            _finish(
                run_pk,
                status=GenerationRun.Status.FAILED,
                error=f"Stopped at the time limit of {config.time_limit_seconds} s.",
            )
            return "failed"
        except Exception as exc:
            logger.exception("Generation run %s crashed", run.public_id)
            _finish(
                run_pk,
                status=GenerationRun.Status.FAILED,
                error=f"Unexpected error ({type(exc).__name__}); the worker log has details.",
            )
            return "failed"
        record = dict(output.record)
        record["model_config"] = {
            "name": config.name,
            "public_id": str(config.public_id),
            "backend": config.backend,
            "parameters": config.parameters,
        }
        record.setdefault("timings_s", {})
        # The pipeline's own steps, beside the backend's: the benchmark reads them.
        record["timings_s"]["pipeline_claim"] = round(started - entered, 4)
        record["timings_s"]["pipeline_inputs"] = round(inputs_loaded - loaded, 4)
        record["timings_s"]["backend_call"] = round(generated - inputs_loaded, 4)
        record["timings_s"]["total"] = round(time.perf_counter() - started, 4)
        record["attempt"] = run.attempts
        record["worker"] = run.worker
        try:
            provenance_validate(record)
        except ValidationError as exc:
            # A backend whose record lacks what the schema promises analysts is our defect; the
            # run fails with the reason (the messages carry no values) instead of storing it.
            logger.error("Generation run %s: %s", run.public_id, "; ".join(exc.messages))
            _finish(
                run_pk,
                status=GenerationRun.Status.FAILED,
                error="The model's reproducibility record is incomplete; the worker log has "
                "details.",
            )
            return "failed"
        written = _write_report(
            run_pk, findings=output.findings, impression=output.impression, record=record
        )
        return "succeeded" if written else "discarded"
    finally:
        _release_session_lock(run_pk)


def _requeue_later(run: GenerationRun, config: ModelConfig) -> None:
    from reviewapp.generation.tasks import generation_run_execute_task

    generation_run_execute_task.apply_async(
        kwargs={"run_pk": run.pk}, queue=config.queue, countdown=RETRY_DELAY_SECONDS
    )


# --- the reaper ------------------------------------------------------------------------------

GRACE_SECONDS = 60


def generation_runs_reap() -> dict[str, int]:
    """Re-queue runs whose worker is gone; fail those out of attempts.

    A run is orphaned when it is "running" and nobody holds its advisory lock (the worker
    died, taking its database session with it). A run past its time limit whose lock is still
    held belongs to a live worker that Celery's hard time limit will stop; it is left to that.
    """
    requeued: list[GenerationRun] = []
    failed = 0
    touched: dict[int, tuple[GenerationJob, list[GenerationRun]]] = {}
    with transaction.atomic():
        candidates = (
            GenerationRun.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=GenerationRun.Status.RUNNING)
            .select_related("job__model_config", "study")
        )
        with connection.cursor() as cursor:
            for run in candidates:
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [LOCK_NAMESPACE, run.pk])
                if not cursor.fetchone()[0]:
                    limit = run.job.model_config.time_limit_seconds + GRACE_SECONDS
                    if run.started_at and timezone.now() - run.started_at > timedelta(
                        seconds=limit
                    ):
                        logger.warning("Run %s is past its time limit", run.public_id)
                    continue
                if run.attempts >= run.max_attempts:
                    run.status = GenerationRun.Status.FAILED
                    run.error_message = (
                        f"Gave up after {run.attempts} attempt(s): the worker stopped before "
                        "finishing (killed, out of memory or over its time limit)."
                    )
                    run.finished_at = timezone.now()
                    failed += 1
                else:
                    run.status = GenerationRun.Status.QUEUED
                    run.error_message = (
                        f"Attempt {run.attempts} was interrupted (worker lost); queued again."
                    )
                    run.queued_at = timezone.now()
                    requeued.append(run)
                run.save()
                touched.setdefault(run.job_id, (run.job, []))[1].append(run)
        by_config: dict[int, list[GenerationRun]] = {}
        for run in requeued:
            by_config.setdefault(run.job.model_config.pk, []).append(run)
        for runs in by_config.values():
            _enqueue_on_commit(runs, runs[0].job.model_config)
        for job, touched_runs in touched.values():
            _progress_on_commit(job, touched_runs)
    return {"requeued": len(requeued), "failed": failed}
