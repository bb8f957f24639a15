"""The coordinator builds, opens and watches a study through the pages; the schema is whole."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from reviewapp.reports.models import Report
from reviewapp.studies import services
from reviewapp.studies.models import Assignment, ReaderStudy
from reviewapp.studies.selectors_hooks import studies_readable_by_reader
from tests.studies.conftest import build_study, make_case_study

pytestmark = pytest.mark.django_db


def test_sampling_on_the_page_keeps_the_report_to_rate(coordinator) -> None:
    # The page once dropped "Report to rate" when a sample was asked for, so an
    # error-correction study sampled to rate the originals rated the AI reports instead.
    for i in range(4):
        make_case_study(i, stratum="normal")
    study = services.reader_study_create(
        user=coordinator, name="Originals", protocol_key="error_correction"
    )
    client = Client()
    client.force_login(coordinator)
    client.post(
        f"/studies/{study.public_id}/cases/add/",
        {
            "sample": "normal: 2",
            "sample_seed": "5",
            "rate_source": "original",
        },
    )
    kinds = list(study.cases.values_list("first_report__kind", flat=True))
    assert kinds == [Report.Kind.ORIGINAL, Report.Kind.ORIGINAL]


def test_a_coordinator_builds_a_medgemini_study_for_two_readers_in_the_pages(
    coordinator, reader, second_reader
) -> None:
    studies = [make_case_study(i) for i in range(4)]
    missing = make_case_study(9)
    Report.objects.filter(study=missing, kind="ai").delete()
    client = Client()
    client.force_login(coordinator)
    response = client.post(
        "/studies/new/",
        {"name": "Demo CXR", "protocol_key": "medgemini_cxr", "allow_revisions": "on"},
    )
    study = ReaderStudy.objects.get(name="Demo CXR")
    assert response["Location"] == f"/studies/{study.public_id}/"
    base = f"/studies/{study.public_id}"
    uids = "\n".join([s.study_instance_uid for s in studies] + [missing.study_instance_uid])
    page = client.post(f"{base}/cases/add/", {"study_uids": uids}, follow=True)
    text = page.content.decode()
    assert "4 case(s) added." in text
    assert (
        f"{missing.study_instance_uid}: no such study, or it lacks the reports this protocol needs"
        in text
    )
    panel = {
        "panel_shown": "1",
        "reader": [str(reader.pk), str(second_reader.pk)],
        f"cohort_{reader.pk}": "US",
        f"cohort_{second_reader.pk}": "India",
    }
    client.post(f"{base}/panel/", panel)
    client.post(f"{base}/reading-lists/", {**panel, "seed": "42"})
    page = client.post(f"{base}/open/", follow=True)
    assert "Run the blinding check and acknowledge its tells" in page.content.decode()
    client.post(f"/studies/{study.public_id}/blinding/check/")
    client.post(f"/studies/{study.public_id}/blinding/acknowledge/")
    page = client.post(f"{base}/open/", follow=True)
    study.refresh_from_db()
    assert study.status == "open"
    assert study.assignment_seed == 42
    assert Assignment.objects.filter(reader_study=study).count() == 8
    assert dict(study.panel.values_list("reader__username", "cohort")) == {
        "alice": "US",
        "bob": "India",
    }
    assert "0 of 8 reads submitted" in page.content.decode()
    # Opening the study lets its readers load those images, and only those.
    assert set(studies_readable_by_reader(user=reader)) == set(studies)


def test_a_reader_sees_the_images_of_their_cases_while_the_study_is_paused_or_locked(
    coordinator, reader, second_reader
) -> None:
    imaging = [make_case_study(i) for i in range(2)]
    study = build_study(coordinator=coordinator, readers=[reader], imaging=imaging, open_it=False)
    assert set(studies_readable_by_reader(user=reader)) == set()  # a draft shows nothing yet
    services.reader_study_open(reader_study=study, acknowledged_by=coordinator)
    services.reader_study_pause(reader_study=study)
    assert set(studies_readable_by_reader(user=reader)) == set(imaging)
    services.reader_study_lock(reader_study=study)
    assert set(studies_readable_by_reader(user=reader)) == set(imaging)
    assert set(studies_readable_by_reader(user=second_reader)) == set()  # not on the panel


def test_a_reader_who_has_finished_is_offered_a_way_back_only_while_revisions_are_allowed(
    coordinator, reader
) -> None:
    study = build_study(
        coordinator=coordinator, readers=[reader], imaging=[make_case_study(i) for i in range(2)]
    )
    assignments = Assignment.objects.filter(reader_study=study).order_by("position")
    for assignment in assignments:
        services.rating_submit(
            assignment=assignment,
            reader=reader,
            answers={"comparison": "c"},
            idempotency_key=uuid.uuid4(),
            active_seconds=3.0,
        )
    client = Client()
    client.force_login(reader)
    text = client.get("/studies/reading/").content.decode()
    assert "All cases rated" in text
    assert f'href="/studies/read/{assignments[0].public_id}/">review or revise' in text

    ReaderStudy.objects.filter(pk=study.pk).update(allow_revisions=False)
    text = client.get("/studies/reading/").content.decode()
    assert "All cases rated" in text
    assert "review or revise" not in text
    ReaderStudy.objects.filter(pk=study.pk).update(allow_revisions=True)
    services.reader_study_lock(reader_study=study)
    assert "review or revise" not in client.get("/studies/reading/").content.decode()


def test_a_refused_step_says_why_on_the_page(coordinator, reader) -> None:
    client = Client()
    client.force_login(coordinator)
    study = services.reader_study_create(user=coordinator, name="s", protocol_key="radpeer")
    page = client.post(f"/studies/{study.public_id}/open/")
    assert page.status_code == 400
    assert "Generate the assignments before opening the study." in page.content.decode()


def test_the_history_page_shows_each_revision(coordinator, reader) -> None:
    from tests.studies.conftest import build_study

    study = build_study(coordinator=coordinator, readers=[reader], imaging=[make_case_study(1)])
    assignment = Assignment.objects.get(reader_study=study)
    services.rating_submit(
        assignment=assignment,
        reader=reader,
        answers={"comparison": "c"},
        idempotency_key=uuid.uuid4(),
    )
    services.rating_revise(
        assignment=assignment,
        reader=reader,
        expected_version=1,
        answers={"comparison": "f"},
        idempotency_key=uuid.uuid4(),
    )
    client = Client()
    client.force_login(coordinator)
    page = client.get(
        f"/studies/{study.public_id}/ratings/{assignment.public_id}/history/"
    ).content.decode()
    assert "rating_submit" in page
    assert "rating_revise" in page
    assert "similar" in page
    assert "neither_correct" in page


def test_the_openapi_schema_documents_every_study_endpoint(api_client_for, coordinator) -> None:
    schema = api_client_for(coordinator).get("/api/schema/?format=json").json()
    paths = set(schema["paths"])
    for path in [
        "/api/v1/reader-studies",
        "/api/v1/reader-studies/{study_id}/cases",
        "/api/v1/reader-studies/{study_id}/progress",
        "/api/v1/my/assignments/{assignment_id}/rating",
        "/api/v1/my/assignments/{assignment_id}/rating/history",
    ]:
        assert path in paths
    submit = schema["paths"]["/api/v1/my/assignments/{assignment_id}/rating"]["post"]
    assert "requestBody" in submit
