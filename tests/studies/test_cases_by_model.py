"""A coordinator compares the originals with the AI reports of one chosen model."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from reviewapp.generation import services as generation
from reviewapp.generation.models import GenerationRun, ModelConfig
from reviewapp.reports.models import Report
from reviewapp.studies import services
from reviewapp.studies.models import Case
from tests.generation.conftest import two_radiographs  # noqa: F401

pytestmark = pytest.mark.django_db


def _generate(model_config: ModelConfig, studies, coordinator) -> None:
    created = generation.generation_job_create(
        user=coordinator, model_config=model_config, studies=studies
    )
    for run in GenerationRun.objects.filter(job=created.job):
        assert generation.generation_run_execute(run_pk=run.pk) == "succeeded"


def test_cases_pair_each_original_with_the_chosen_models_report(
    coordinator,
    two_radiographs,  # noqa: F811
) -> None:
    baseline = ModelConfig.objects.get(name="retrieval-baseline")
    other = generation.model_config_save(
        user=coordinator, name="second-baseline", backend=ModelConfig.Backend.RETRIEVAL
    )
    _generate(baseline, two_radiographs, coordinator)
    _generate(other, two_radiographs, coordinator)
    study = services.reader_study_create(
        user=coordinator, name="By model", protocol_key="medgemini_cxr"
    )
    client = Client()
    client.force_login(coordinator)
    action = reverse("studies:cases_add", kwargs={"study_id": study.public_id})

    # Any model: every study has two AI reports, so none can be paired and each is named.
    response = client.post(action, {"modality": "CR"}, follow=True)
    assert Case.objects.filter(reader_study=study).count() == 0
    assert "choose one model run" in response.content.decode()

    client.post(action, {"modality": "CR", "model": str(other.public_id)})
    cases = Case.objects.filter(reader_study=study)
    assert cases.count() == 2
    chosen = Report.objects.filter(generation_run__job__model_config=other)
    assert {c.second_report_id for c in cases} == set(chosen.values_list("pk", flat=True))


def test_an_unknown_model_is_refused_with_a_message(coordinator) -> None:
    study = services.reader_study_create(
        user=coordinator, name="By model", protocol_key="medgemini_cxr"
    )
    client = Client()
    client.force_login(coordinator)
    response = client.post(
        reverse("studies:cases_add", kwargs={"study_id": study.public_id}),
        {"model": "not-a-model"},
    )
    assert response.status_code == 400
    assert "Choose one of the configured models." in response.content.decode()
