"""API and pages of report generation: who may do what, status codes, and what comes back."""

from __future__ import annotations

import html
import json
import re

import pytest
from django.test import Client
from django.urls import reverse

from reviewapp.generation import services
from reviewapp.generation.models import GenerationJob, GenerationRun, ModelConfig

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "reader", "outsider", "analyst", "coordinator"]


@pytest.fixture
def people(reader, outsider, analyst, coordinator):
    return {
        "anonymous": None,
        "reader": reader,
        "outsider": outsider,
        "analyst": analyst,
        "coordinator": coordinator,
    }


@pytest.fixture
def finished_run(coordinator, two_radiographs) -> GenerationRun:
    config = ModelConfig.objects.get(name="retrieval-baseline")
    created = services.generation_job_create(
        user=coordinator, model_config=config, studies=[two_radiographs[0]]
    )
    run = created.job.runs.get()
    services.generation_run_execute(run_pk=run.pk)
    run.refresh_from_db()
    return run


READ_EXPECTED = {
    "anonymous": 403,
    "reader": 403,
    "outsider": 403,
    "analyst": 200,
    "coordinator": 200,
}


@pytest.mark.parametrize("role", ROLES)
def test_reading_jobs_runs_and_provenance_is_for_coordinators_and_analysts(
    role, people, api_client_for, finished_run
) -> None:
    client = api_client_for(people[role])
    urls = [
        "/api/v1/generation/models/",
        "/api/v1/generation/jobs/",
        f"/api/v1/generation/jobs/{finished_run.job.public_id}/",
        f"/api/v1/generation/runs/{finished_run.public_id}/",
    ]
    for url in urls:
        assert client.get(url).status_code == READ_EXPECTED[role], url


WRITE_EXPECTED = {"anonymous": 403, "reader": 403, "outsider": 403, "analyst": 403}


@pytest.mark.parametrize("role", list(WRITE_EXPECTED))
def test_only_coordinators_queue_cancel_and_rerun(
    role, people, api_client_for, finished_run, two_radiographs
) -> None:
    client = api_client_for(people[role])
    model = ModelConfig.objects.get(name="retrieval-baseline")
    job = finished_run.job
    assert (
        client.post(
            "/api/v1/generation/jobs/",
            {"model": str(model.public_id), "studies": [str(two_radiographs[1].public_id)]},
            format="json",
        ).status_code
        == WRITE_EXPECTED[role]
    )
    assert (
        client.post(f"/api/v1/generation/jobs/{job.public_id}/cancel/").status_code
        == (WRITE_EXPECTED[role])
    )
    retry = f"/api/v1/generation/runs/{finished_run.public_id}/retry/"
    assert client.post(retry).status_code == WRITE_EXPECTED[role]
    assert GenerationRun.objects.count() == 1


def test_a_coordinator_queues_by_filter_and_sees_the_runs(
    api_client_for, coordinator, two_radiographs
) -> None:
    model = ModelConfig.objects.get(name="retrieval-baseline")

    response = api_client_for(coordinator).post(
        "/api/v1/generation/jobs/",
        {"model": str(model.public_id), "modality": "CXR", "stratum": "abnormal"},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert body["counts"]["queued"] == 1
    assert [run["study"] for run in body["runs"]] == [str(two_radiographs[1].public_id)]
    assert body["skipped"] == []


def test_queueing_by_filter_when_the_model_reported_every_study_is_a_clear_400(
    api_client_for, coordinator, finished_run, two_radiographs
) -> None:
    model = finished_run.job.model_config
    client = api_client_for(coordinator)
    body = {"model": str(model.public_id), "stratum": "normal", "only_missing": True}
    assert finished_run.study.stratum == "normal"

    response = client.post("/api/v1/generation/jobs/", body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "already_reported"
    assert "already has a report from retrieval-baseline" in response.json()["detail"]
    del body["stratum"]  # the other study has none yet: it alone is queued
    response = client.post("/api/v1/generation/jobs/", body, format="json")
    assert response.status_code == 201, response.json()
    assert [run["study"] for run in response.json()["runs"]] == [str(two_radiographs[1].public_id)]


def test_unknown_studies_are_named(api_client_for, coordinator, two_radiographs) -> None:
    model = ModelConfig.objects.get(name="retrieval-baseline")
    missing = "00000000-0000-0000-0000-000000000001"
    response = api_client_for(coordinator).post(
        "/api/v1/generation/jobs/",
        {"model": str(model.public_id), "studies": [missing, str(two_radiographs[0].public_id)]},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {"studies": [f"Unknown or excluded study {missing}"]}


def test_the_page_names_an_unknown_study_and_queues_nothing_as_the_api_does(
    coordinator, two_radiographs
) -> None:
    # The page once dropped the ids it did not know and queued the rest without a word.
    client = Client()
    client.force_login(coordinator)
    model = ModelConfig.objects.get(name="retrieval-baseline")
    missing = "00000000-0000-0000-0000-000000000001"
    response = client.post(
        reverse("generation:job_list"),
        {"model": str(model.public_id), "studies": [missing, str(two_radiographs[0].public_id)]},
        follow=True,
    )
    assert f"Unknown or excluded study {missing}" in response.content.decode()
    assert not GenerationJob.objects.exists()


def test_rerunning_a_run_that_succeeded_is_a_clear_400(
    api_client_for, coordinator, finished_run
) -> None:
    response = api_client_for(coordinator).post(
        f"/api/v1/generation/runs/{finished_run.public_id}/retry/"
    )
    assert response.status_code == 400
    assert "this one is succeeded" in response.json()["detail"]


def test_an_analyst_reads_the_report_with_its_provenance(
    api_client_for, analyst, finished_run
) -> None:
    body = api_client_for(analyst).get(f"/api/v1/generation/runs/{finished_run.public_id}/").json()
    assert body["status"] == "succeeded"
    assert body["model"] == "retrieval-baseline"
    assert body["findings"] == "Right upper lobe nodule."
    assert body["provenance"]["is_baseline"] is True
    assert body["report"] == str(finished_run.report.public_id)


def test_the_schema_documents_every_generation_endpoint(api_client_for, coordinator) -> None:
    schema = api_client_for(coordinator).get("/api/schema/", {"format": "json"}).json()
    paths = [p for p in schema["paths"] if "/generation/" in p]
    assert sorted(paths) == [
        "/api/v1/generation/jobs/",
        "/api/v1/generation/jobs/{job_id}/",
        "/api/v1/generation/jobs/{job_id}/cancel/",
        "/api/v1/generation/models/",
        "/api/v1/generation/runs/{run_id}/",
        "/api/v1/generation/runs/{run_id}/retry/",
    ]


PAGE_EXPECTED = {"reader": 403, "outsider": 403, "analyst": 200, "coordinator": 200}


@pytest.mark.parametrize("role", list(PAGE_EXPECTED))
def test_generation_pages_are_closed_to_readers(role, people, finished_run) -> None:
    client = Client()
    client.force_login(people[role])
    for url in (
        reverse("generation:job_list"),
        reverse("generation:job_detail", args=[finished_run.job.public_id]),
        reverse("generation:run_detail", args=[finished_run.public_id]),
    ):
        assert client.get(url).status_code == PAGE_EXPECTED[role], url


def test_anonymous_visitors_are_sent_to_log_in(finished_run) -> None:
    response = Client().get(reverse("generation:job_list"))
    assert response.status_code == 302
    assert "/accounts/login" in response["Location"]


def test_the_coordinator_page_queues_a_job_and_shows_its_progress(
    coordinator, two_radiographs
) -> None:
    client = Client()
    client.force_login(coordinator)
    model = ModelConfig.objects.get(name="retrieval-baseline")

    response = client.post(
        reverse("generation:job_list"),
        {"model": str(model.public_id), "studies": [str(s.public_id) for s in two_radiographs]},
        follow=True,
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="job-progress" max="2" value="0"' in page
    assert page.count('class="run-status">queued<') == 2
    assert 'id="generation-job-data"' in page


def test_queueing_only_studies_already_reported_says_so_and_queues_nothing(
    coordinator, finished_run
) -> None:
    client = Client()
    client.force_login(coordinator)
    model = finished_run.job.model_config

    response = client.post(
        reverse("generation:job_list"),
        {"model": str(model.public_id), "studies": [str(finished_run.study.public_id)],
         "only_missing": "1"},
        follow=True,
    )  # fmt: skip

    page = response.content.decode()
    assert "every chosen study already has a report from retrieval-baseline" in page
    assert "Choose at least one study" not in page
    assert GenerationRun.objects.filter(study=finished_run.study).count() == 1
    response = client.post(  # unticking the box generates it again
        reverse("generation:job_list"),
        {"model": str(model.public_id), "studies": [str(finished_run.study.public_id)]},
    )
    assert response.status_code == 302
    assert GenerationRun.objects.filter(study=finished_run.study).count() == 2


def test_the_run_page_shows_the_report_and_its_record(coordinator, finished_run) -> None:
    client = Client()
    client.force_login(coordinator)
    page = client.get(reverse("generation:run_detail", args=[finished_run.public_id]))
    text = page.content.decode()
    assert "Right upper lobe nodule." in text
    assert "baseline: image nearest-neighbour retrieval" in text
    assert "sop_instance_uids" in text


def test_the_run_page_shows_the_record_as_formatted_json(coordinator, finished_run) -> None:
    client = Client()
    client.force_login(coordinator)
    page = client.get(reverse("generation:run_detail", args=[finished_run.public_id]))

    shown = re.search(r'<pre id="run-provenance"[^>]*>(.*?)</pre>', page.content.decode(), re.S)

    assert shown is not None
    record = html.unescape(shown.group(1))
    assert json.loads(record) == finished_run.provenance
    assert '\n  "' in record  # indented, one key a line


def test_generation_pages_name_the_study_and_link_the_archive(coordinator, finished_run) -> None:
    client = Client()
    client.force_login(coordinator)
    study = finished_run.study
    link = f'href="/imaging/studies/{study.public_id}/">{study.label}</a>'

    run_page = client.get(f"/generation/runs/{finished_run.public_id}/").content.decode()
    job_page = client.get(f"/generation/jobs/{finished_run.job.public_id}/").content.decode()
    archive_page = client.get(f"/imaging/studies/{study.public_id}/").content.decode()

    assert link in run_page
    assert link in job_page
    assert f"<h1>{study.label}</h1>" in archive_page


def test_a_coordinator_configures_a_model_on_the_page(coordinator) -> None:
    client = Client()
    client.force_login(coordinator)
    form = {
        "name": "medgemma-4b",
        "backend": "openai",
        "location": "http://gpu-box:8000/v1",
        "served_model_name": "google/medgemma-4b-it",
        "parameters": '{"max_new_tokens": 300, "ct_slices": 12}',
        "prompt_cxr": "Report this {modality}.",
        "prompt_ct": "Report these {num_images} slices.",
        "max_attempts": "2",
        "time_limit_seconds": "600",
        "is_active": "on",
    }

    response = client.post(reverse("generation:model_create"), form)

    assert response.status_code == 302
    config = ModelConfig.objects.get(name="medgemma-4b")
    assert config.queue == "default"
    assert config.parameters == {"max_new_tokens": 300, "ct_slices": 12}


def test_a_broken_model_configuration_is_refused_field_by_field(coordinator) -> None:
    client = Client()
    client.force_login(coordinator)
    form = {
        "name": "broken",
        "backend": "transformers",
        "location": "",
        "parameters": '{"temprature": 0.2}',
        "prompt_cxr": "Report {patient_name}",
        "prompt_ct": "",
        "max_attempts": "2",
        "time_limit_seconds": "999999",
    }

    page = client.post(reverse("generation:model_create"), form).content.decode()

    assert "A transformers model needs its directory." in page
    assert "Unknown parameters [&#x27;temprature&#x27;]" in page
    assert "Unknown fields [&#x27;patient_name&#x27;]" in page
    assert "the broker&#x27;s visibility timeout" in page
    assert not ModelConfig.objects.filter(name="broken").exists()


@pytest.mark.parametrize("role", ["reader", "analyst", "outsider"])
def test_only_coordinators_configure_models(role, people) -> None:
    client = Client()
    client.force_login(people[role])
    assert client.get(reverse("generation:model_create")).status_code == 403
    response = client.post(
        reverse("generation:model_create"), {"name": "x", "backend": "retrieval"}
    )
    assert response.status_code == 403
    assert not ModelConfig.objects.filter(name="x").exists()


def test_a_form_without_a_model_says_so(coordinator, two_radiographs) -> None:
    client = Client()
    client.force_login(coordinator)
    response = client.post(reverse("generation:job_list"), {"studies": ["not-a-uuid"]}, follow=True)
    assert response.status_code == 200
    assert "Choose a model." in response.content.decode()
    assert not GenerationRun.objects.exists()
