"""One name for an imaging study on every staff page, with links between the pages.

carol coordinates; alice and bob read; frank coordinates other studies.
"""

from __future__ import annotations

import datetime
import uuid

import pytest
from django.test import Client

from reviewapp.generation import services as generation
from reviewapp.generation.models import ModelConfig
from reviewapp.imaging.models import Study
from reviewapp.studies import services
from reviewapp.studies.models import Assignment
from tests.studies.conftest import build_study, make_case_study, make_imaging_study

pytestmark = pytest.mark.django_db


def test_a_study_is_named_by_date_modality_description_and_short_id() -> None:
    study = make_imaging_study(1, modality="CR\\DX")
    Study.objects.filter(pk=study.pk).update(
        study_date=datetime.date(2024, 3, 5),
        description="  CHEST PA AND LATERAL   VIEWS WITH A VERY LONG PROTOCOL NAME ATTACHED ",
    )
    study.refresh_from_db()
    undated = make_imaging_study(2, modality="")
    Study.objects.filter(pk=undated.pk).update(description="")
    undated.refresh_from_db()

    assert study.label == (
        f"2024-03-05 · CR/DX · CHEST PA AND LATERAL VIEWS WITH A VERY… · {str(study.public_id)[:8]}"
    )
    assert undated.label == f"undated · ? · no description · {str(undated.public_id)[:8]}"


def test_the_study_page_names_each_case_and_each_rating_and_links_the_archive(
    coordinator, reader
) -> None:
    imaging = [make_case_study(i) for i in range(2)]
    study = build_study(coordinator=coordinator, readers=[reader], imaging=imaging)
    assignment = Assignment.objects.filter(reader_study=study).order_by("position").first()
    services.rating_submit(
        assignment=assignment,
        reader=reader,
        answers={"comparison": "c"},
        idempotency_key=uuid.uuid4(),
    )
    rated = assignment.case
    client = Client()
    client.force_login(coordinator)

    page = client.get(f"/studies/{study.public_id}/").content.decode()

    for item in imaging:
        assert f'href="/imaging/studies/{item.public_id}/">{item.label}</a>' in page
    ratings = page[page.index("<h2>Ratings</h2>") :]
    assert f'<a href="#case-{rated.public_id}">{rated.imaging_study.label}</a>' in ratings


def test_the_archive_page_links_the_studies_and_runs_a_study_went_into(
    coordinator, reader, frank
) -> None:
    imaging = make_case_study(0)
    mine = build_study(coordinator=coordinator, readers=[reader], imaging=[imaging], name="Mine")
    build_study(coordinator=frank, readers=[reader], imaging=[imaging], name="Franks")
    model = generation.model_config_save(
        user=coordinator, name="links-baseline", backend=ModelConfig.Backend.RETRIEVAL
    )
    created = generation.generation_job_create(
        user=coordinator, model_config=model, studies=[imaging]
    )
    run = created.job.runs.get()
    case = mine.cases.get()

    page = _client(coordinator).get(f"/imaging/studies/{imaging.public_id}/").content.decode()

    assert f'href="/studies/{mine.public_id}/#case-{case.public_id}">Mine</a>' in page
    assert "Franks" not in page
    assert f'href="/generation/runs/{run.public_id}/">links-baseline' in page


def test_the_rating_history_names_the_case_and_links_it(coordinator, reader) -> None:
    study = build_study(coordinator=coordinator, readers=[reader], imaging=[make_case_study(0)])
    assignment = Assignment.objects.get(reader_study=study)
    services.rating_submit(
        assignment=assignment,
        reader=reader,
        answers={"comparison": "c"},
        idempotency_key=uuid.uuid4(),
    )
    case = assignment.case

    page = (
        _client(coordinator)
        .get(f"/studies/{study.public_id}/ratings/{assignment.public_id}/history/")
        .content.decode()
    )

    assert (
        f'href="/studies/{study.public_id}/#case-{case.public_id}">{case.imaging_study.label}</a>'
        in page
    )
    assert f'href="/imaging/studies/{case.imaging_study.public_id}/"' in page


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client
