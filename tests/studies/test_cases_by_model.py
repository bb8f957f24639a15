"""A coordinator compares the originals with the AI reports of one chosen source: a configured
model that generated them here, or a model whose outputs were imported."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from reviewapp.generation import services as generation
from reviewapp.generation.models import GenerationRun, ModelConfig
from reviewapp.reports.models import Report, ReportSource
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


def _import(source: ReportSource, studies) -> list[Report]:
    return [
        Report.objects.create(
            study=study,
            kind=Report.Kind.AI,
            source=source,
            findings=f"Imported findings {n}.",
            impression="No acute abnormality.",
        )
        for n, study in enumerate(studies)
    ]


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

    # Any source: every study has two AI reports, so none can be paired and each is named
    # the way staff pages name a study, with what to do.
    page = client.post(action, {"modality": "CR"}, follow=True).content.decode()
    assert Case.objects.filter(reader_study=study).count() == 0
    for imaging in two_radiographs:
        assert f"Study {imaging.label}: AI reports from 2 sources or runs" in page
    assert "choose one under &quot;AI reports from&quot;" in page

    client.post(action, {"modality": "CR", "candidate_source": str(other.report_source.public_id)})
    cases = Case.objects.filter(reader_study=study)
    assert cases.count() == 2
    chosen = Report.objects.filter(generation_run__job__model_config=other)
    assert {c.second_report_id for c in cases} == set(chosen.values_list("pk", flat=True))


def test_imported_models_are_offered_and_one_is_chosen_on_the_page_and_by_the_api(
    coordinator,
    two_radiographs,  # noqa: F811
) -> None:
    first = ReportSource.objects.create(kind="external", name="model-a", version="1.0")
    second = ReportSource.objects.create(kind="external", name="model-b", version="1.0")
    first_reports = _import(first, two_radiographs)
    second_reports = _import(second, two_radiographs)
    client = Client()
    client.force_login(coordinator)

    study = services.reader_study_create(
        user=coordinator, name="Page", protocol_key="medgemini_cxr"
    )
    detail = client.get(reverse("studies:detail", kwargs={"study_id": study.public_id}))
    page = detail.content.decode()
    # Both imported models, named with their study counts; the original is not a candidate.
    assert f'<option value="{first.public_id}">model-a 1.0 (2 studies)</option>' in page
    assert f'<option value="{second.public_id}">model-b 1.0 (2 studies)</option>' in page
    original = ReportSource.objects.get(kind=ReportSource.Kind.ORIGINAL)
    assert f'<option value="{original.public_id}"' not in page

    client.post(
        reverse("studies:cases_add", kwargs={"study_id": study.public_id}),
        {"modality": "CR", "candidate_source": str(second.public_id)},
    )
    assert {c.second_report_id for c in Case.objects.filter(reader_study=study)} == {
        r.pk for r in second_reports
    }

    api = APIClient()
    api.force_authenticate(coordinator)
    by_api = services.reader_study_create(
        user=coordinator, name="API", protocol_key="medgemini_cxr"
    )
    url = f"/api/v1/reader-studies/{by_api.public_id}/cases"
    response = api.post(url, {"candidate_source": str(first.public_id)}, format="json")
    assert response.status_code == 201, response.json()
    assert {c.second_report_id for c in Case.objects.filter(reader_study=by_api)} == {
        r.pk for r in first_reports
    }
    refused = api.post(url, {"candidate_source": str(original.public_id)}, format="json")
    assert refused.status_code == 400
    assert "Choose one of the listed report sources." in str(refused.json())


def test_an_unknown_source_is_refused_in_the_cases_step(coordinator) -> None:
    study = services.reader_study_create(
        user=coordinator, name="By model", protocol_key="medgemini_cxr"
    )
    client = Client()
    client.force_login(coordinator)
    response = client.post(
        reverse("studies:cases_add", kwargs={"study_id": study.public_id}),
        {"modality": "CR", "candidate_source": "not-a-source"},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Choose one of the listed report sources." in page
    assert 'name="candidate_source" aria-invalid="true"' in page
    assert 'name="modality" placeholder="e.g. CR, DX or CT" value="CR"' in page
