"""The generation services: exactly one AI report per run whatever the delivery, the reaper,
cancel and re-run, and the reproducibility record."""

from __future__ import annotations

import psycopg
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from reviewapp.core.errors import ApplicationError
from reviewapp.generation import selectors, services
from reviewapp.generation.models import GenerationRun, ModelConfig
from reviewapp.imaging.models import Study
from reviewapp.reports.models import Report
from tests.generation.conftest import CT_FILES, CXR_JPEG


@pytest.fixture
def baseline(db: None) -> ModelConfig:
    return ModelConfig.objects.get(name="retrieval-baseline")


def _queue(coordinator, config: ModelConfig, *studies: Study) -> list[GenerationRun]:
    created = services.generation_job_create(user=coordinator, model_config=config, studies=studies)
    return list(created.job.runs.order_by("id"))


def _other_session_holding_lock(run_pk: int) -> psycopg.Connection:
    """A second database session that holds a run's lock, as a live worker would."""
    params = connection.get_connection_params()
    other = psycopg.connect(
        dbname=params["dbname"],
        user=params.get("user"),
        host=params.get("host"),
        port=params.get("port"),
        autocommit=True,
    )
    other.execute("SELECT pg_advisory_lock(%s, %s)", [services.LOCK_NAMESPACE, run_pk])
    return other


def test_baseline_answers_with_the_nearest_other_studys_report(
    coordinator, baseline, two_radiographs
) -> None:
    normal, nodule = two_radiographs
    (run,) = _queue(coordinator, baseline, normal)

    assert services.generation_run_execute(run_pk=run.pk) == "succeeded"

    run.refresh_from_db()
    assert run.status == GenerationRun.Status.SUCCEEDED
    assert run.attempts == 1
    report = run.report
    assert report.kind == Report.Kind.AI
    assert report.study == normal
    assert (report.findings, report.impression) == (
        "Right upper lobe nodule.",
        "Nodule; CT advised.",
    )
    record = run.provenance
    assert record["is_baseline"] is True
    assert "baseline" in record["label"]
    assert record["retrieved"]["study"] == str(nodule.public_id)
    sops = list(normal.series.get().instances.values_list("sop_instance_uid", flat=True))
    assert record["inputs"]["sop_instance_uids"] == sops
    assert record["model_config"]["name"] == "retrieval-baseline"
    assert record["software"]["torch"]
    assert record["timings_s"]["total"] >= 0
    assert record["attempt"] == 1


def test_a_second_delivery_of_a_finished_run_writes_no_second_report(
    coordinator, baseline, two_radiographs
) -> None:
    (run,) = _queue(coordinator, baseline, two_radiographs[0])
    services.generation_run_execute(run_pk=run.pk)

    assert services.generation_run_execute(run_pk=run.pk) == "skipped"

    assert Report.objects.filter(study=two_radiographs[0], kind=Report.Kind.AI).count() == 1
    run.refresh_from_db()
    assert run.attempts == 1


def test_a_run_a_live_worker_holds_is_left_to_it_by_deliveries_and_reaper(
    coordinator, baseline, two_radiographs
) -> None:
    (run,) = _queue(coordinator, baseline, two_radiographs[0])
    GenerationRun.objects.filter(pk=run.pk).update(status="running", attempts=1)
    other = _other_session_holding_lock(run.pk)
    try:
        assert services.generation_run_execute(run_pk=run.pk) == "busy"
        assert services.generation_runs_reap() == {"requeued": 0, "failed": 0}
    finally:
        other.close()
    run.refresh_from_db()
    assert (run.status, run.attempts) == ("running", 1)
    assert not Report.objects.filter(kind=Report.Kind.AI).exists()


def test_the_reaper_requeues_a_run_whose_worker_died_and_the_retry_succeeds(
    coordinator, baseline, two_radiographs
) -> None:
    (run,) = _queue(coordinator, baseline, two_radiographs[0])
    # What a worker killed mid-generation leaves behind: running, one attempt, no lock holder.
    GenerationRun.objects.filter(pk=run.pk).update(status="running", attempts=1)

    assert services.generation_runs_reap() == {"requeued": 1, "failed": 0}
    run.refresh_from_db()
    assert run.status == "queued"
    assert "interrupted" in run.error_message

    assert services.generation_run_execute(run_pk=run.pk) == "succeeded"
    run.refresh_from_db()
    assert (run.status, run.attempts) == ("succeeded", 2)
    assert Report.objects.filter(kind=Report.Kind.AI).count() == 1


def test_the_reaper_fails_a_dead_run_that_is_out_of_attempts(
    coordinator, baseline, two_radiographs
) -> None:
    (run,) = _queue(coordinator, baseline, two_radiographs[0])
    GenerationRun.objects.filter(pk=run.pk).update(status="running", attempts=2)

    assert services.generation_runs_reap() == {"requeued": 0, "failed": 1}

    run.refresh_from_db()
    assert run.status == "failed"
    assert "Gave up after 2 attempt(s)" in run.error_message
    assert services.generation_run_execute(run_pk=run.pk) == "skipped"


def test_a_redelivery_after_the_last_attempt_died_fails_instead_of_looping(
    coordinator, baseline, two_radiographs
) -> None:
    (run,) = _queue(coordinator, baseline, two_radiographs[0])
    GenerationRun.objects.filter(pk=run.pk).update(status="running", attempts=2)

    assert services.generation_run_execute(run_pk=run.pk) == "skipped"

    run.refresh_from_db()
    assert run.status == "failed"
    assert not Report.objects.filter(kind=Report.Kind.AI).exists()


def test_cancelling_a_job_stops_its_queued_runs(coordinator, baseline, two_radiographs) -> None:
    runs = _queue(coordinator, baseline, *two_radiographs)

    assert services.generation_job_cancel(user=coordinator, job=runs[0].job) == 2

    assert services.generation_run_execute(run_pk=runs[0].pk) == "skipped"
    assert set(GenerationRun.objects.values_list("status", flat=True)) == {"cancelled"}
    assert not Report.objects.filter(kind=Report.Kind.AI).exists()


def test_a_study_with_nothing_to_retrieve_fails_clearly_and_can_be_rerun(
    coordinator, baseline, archive
) -> None:
    ct = archive(CT_FILES[:6], findings="Left lower lobe mass.", impression="Mass.")
    (run,) = _queue(coordinator, baseline, ct)

    assert services.generation_run_execute(run_pk=run.pk) == "failed"
    run.refresh_from_db()
    assert run.error_message == (
        "The retrieval baseline needs another CT study with an original report in the "
        "archive; there is none."
    )

    archive(CT_FILES[10:16], findings="Emphysema.", impression="No mass.")
    services.generation_run_retry(user=coordinator, run=run)
    run.refresh_from_db()
    assert (run.status, run.attempts, run.error_message) == ("queued", 0, "")
    assert services.generation_run_execute(run_pk=run.pk) == "succeeded"
    run.refresh_from_db()
    assert run.report.findings == "Emphysema."
    assert run.provenance["inputs"]["study"] == str(ct.public_id)


def test_only_failed_or_cancelled_runs_can_be_rerun(coordinator, baseline, two_radiographs) -> None:
    (run,) = _queue(coordinator, baseline, two_radiographs[0])
    with pytest.raises(ApplicationError, match="this one is queued"):
        services.generation_run_retry(user=coordinator, run=run)


def test_unsupported_studies_are_skipped_by_name_and_the_rest_are_queued(
    coordinator, baseline, archive, two_radiographs
) -> None:
    odd = archive([CXR_JPEG], modality="MR")

    created = services.generation_job_create(
        user=coordinator, model_config=baseline, studies=[odd, *two_radiographs]
    )

    assert created.job.runs.count() == 2
    assert [(s, why) for s, why in created.skipped] == [
        (odd, "modalities MR are neither CXR nor CT")
    ]


def test_only_coordinators_queue_generation(reader, analyst, baseline, two_radiographs) -> None:
    for user in (reader, analyst):
        with pytest.raises(PermissionDenied):
            services.generation_job_create(
                user=user, model_config=baseline, studies=two_radiographs
            )


def test_a_switched_off_model_cannot_be_queued(coordinator, baseline, two_radiographs) -> None:
    baseline.is_active = False
    baseline.save()
    with pytest.raises(ApplicationError, match="switched off"):
        _queue(coordinator, baseline, *two_radiographs)


def test_model_configurations_name_each_broken_field() -> None:
    with pytest.raises(ValidationError) as caught:
        services.model_config_check(
            backend="openai",
            location="vllm-host:8000",
            served_model_name="",
            parameters={"max_new_tokens": 10, "temprature": 0.2},
            prompt_cxr="Report {modality} for {patient_name}",
            prompt_ct="{",
        )
    errors = caught.value.message_dict
    assert set(errors) == {"location", "served_model_name", "parameters", "prompt_cxr", "prompt_ct"}
    assert "temprature" in errors["parameters"][0]
    assert "patient_name" in errors["prompt_cxr"][0]


def test_ai_reports_of_one_model_are_selectable_for_reader_studies(
    coordinator, baseline, two_radiographs
) -> None:
    other = ModelConfig.objects.create(name="other", backend="retrieval")
    for config in (baseline, other):
        for run in _queue(coordinator, config, *two_radiographs):
            services.generation_run_execute(run_pk=run.pk)

    reports = selectors.ai_reports_for_model(model_config=baseline)

    assert reports.count() == 2
    assert {r.generation_run.job.model_config for r in reports} == {baseline}


def test_readers_cannot_read_runs_or_provenance(
    reader, coordinator, baseline, two_radiographs
) -> None:
    (run,) = _queue(coordinator, baseline, two_radiographs[0])
    with pytest.raises(PermissionDenied):
        selectors.run_get_for_staff(user=reader, public_id=run.public_id)
    with pytest.raises(PermissionDenied):
        selectors.job_list_for_staff(user=reader)


def test_shell_jobs_need_no_user(baseline, two_radiographs) -> None:
    created = services.generation_job_create(
        user=None, model_config=baseline, studies=two_radiographs
    )
    assert created.job.created_by is None


def test_a_message_for_a_run_deleted_since_is_dropped(coordinator, baseline, archive) -> None:
    study = archive([CXR_JPEG])
    (run,) = _queue(coordinator, baseline, study)
    study.delete()

    assert services.generation_run_execute(run_pk=run.pk) == "skipped"
