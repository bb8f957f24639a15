"""Who may reach what in the archive: every page and endpoint, every persona.

alice and bob read, carol coordinates, dave analyses, eve has no role, root administers.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AbstractUser
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import Http404
from django.test import Client
from django.urls import reverse

from reviewapp.imaging import selectors
from reviewapp.imaging.ingest.services import import_batch_create
from reviewapp.imaging.models import ImportBatch, Instance, PseudonymMapping, Study
from tests.imaging.conftest import CT_FILES, import_files

pytestmark = pytest.mark.django_db

PERSONAS = ["reader", "second_reader", "coordinator", "analyst", "outsider", "admin_user"]


@pytest.fixture
def people(request) -> dict[str, AbstractUser]:
    return {name: request.getfixturevalue(name) for name in PERSONAS}


@pytest.fixture
def archive(archive_dirs, tmp_path) -> dict[str, object]:
    import pydicom

    _, outcomes = import_files(CT_FILES[:2])
    ds = pydicom.dcmread(CT_FILES[2])
    ds.BurnedInAnnotation = "YES"
    burned = tmp_path / "burned.dcm"
    ds.save_as(burned)
    import_files([burned])
    study = Study.objects.get(study_instance_uid=outcomes[0].study_instance_uid)
    batch = import_batch_create(source=ImportBatch.Source.UPLOAD, created_by=None)
    quarantined = Instance.objects.get(status=Instance.Status.QUARANTINED)
    return {"study": study, "batch": batch, "quarantined": quarantined}


# Page -> personas that get 200 (everyone else logged in gets 403; anonymous goes to login).
PAGE_ACCESS = {
    "study_list": {"coordinator", "analyst", "admin_user"},
    "study_detail": {"coordinator", "analyst", "admin_user"},
    "upload": {"coordinator", "admin_user"},
    "dataset_upload": {"coordinator", "admin_user"},
    "import_batch_detail": {"coordinator", "admin_user"},
    "quarantine_list": {"coordinator", "admin_user"},
    "quarantine_preview": {"coordinator", "admin_user"},
    "reports_upload": {"coordinator", "admin_user"},
}


def _page_url(page: str, archive: dict[str, object]) -> str:
    if page == "study_detail":
        return reverse("imaging:study_detail", args=[archive["study"].public_id])  # type: ignore[attr-defined]
    if page == "import_batch_detail":
        return reverse("imaging:import_batch_detail", args=[archive["batch"].public_id])  # type: ignore[attr-defined]
    if page == "quarantine_preview":
        return reverse("imaging:quarantine_preview", args=[archive["quarantined"].public_id])  # type: ignore[attr-defined]
    if page == "reports_upload":
        return reverse("reports:upload")
    return reverse(f"imaging:{page}")


@pytest.mark.parametrize("page", sorted(PAGE_ACCESS))
def test_pages_admit_only_their_roles(page: str, people, archive) -> None:
    url = _page_url(page, archive)
    anonymous = Client().get(url)
    assert anonymous.status_code == 302
    assert reverse("accounts:login") in anonymous["Location"]
    for name, user in people.items():
        client = Client()
        client.force_login(user)
        expected = 200 if name in PAGE_ACCESS[page] else 403
        assert client.get(url).status_code == expected, (page, name)


def test_only_coordinators_decide_on_quarantined_images(people, archive) -> None:
    instance = archive["quarantined"]
    url = reverse("imaging:quarantine_decide", args=[instance.public_id])  # type: ignore[attr-defined]
    for name in ("reader", "second_reader", "analyst", "outsider"):
        client = Client()
        client.force_login(people[name])
        assert client.post(url, {"decision": "approve"}).status_code == 403, name
    instance.refresh_from_db()  # type: ignore[attr-defined]
    assert instance.status == Instance.Status.QUARANTINED  # type: ignore[attr-defined]


def test_nobody_without_a_role_uploads(people, archive) -> None:
    before = ImportBatch.objects.count()
    for name in ("reader", "analyst", "outsider"):
        client = Client()
        client.force_login(people[name])
        response = client.post(
            reverse("imaging:upload"), {"files": [SimpleUploadedFile("a.dcm", b"x")]}
        )
        assert response.status_code == 403, name
    assert ImportBatch.objects.count() == before


# Endpoint -> (method, personas that succeed, success status)
def _api_cases(archive: dict[str, object]) -> list[tuple[str, str, set[str], int]]:
    study = archive["study"]
    batch = archive["batch"]
    return [
        ("get", "/api/v1/studies", {"coordinator", "analyst", "admin_user"}, 200),
        (
            "get",
            f"/api/v1/studies/{study.public_id}",  # type: ignore[attr-defined]
            {"coordinator", "analyst", "admin_user"},
            200,
        ),
        (
            "get",
            f"/api/v1/import-batches/{batch.public_id}",  # type: ignore[attr-defined]
            {"coordinator", "admin_user"},
            200,
        ),
    ]


def test_api_endpoints_admit_only_their_roles(people, archive, api_client_for) -> None:
    for method, url, allowed, ok in _api_cases(archive):
        assert getattr(api_client_for(None), method)(url).status_code in (401, 403), url
        for name, user in people.items():
            status = getattr(api_client_for(user), method)(url).status_code
            assert status == (ok if name in allowed else 403), (url, name, status)


def test_api_upload_and_reports_import_are_for_coordinators(
    people, archive, api_client_for
) -> None:
    before = ImportBatch.objects.count()
    for name in ("reader", "second_reader", "analyst", "outsider"):
        client = api_client_for(people[name])
        upload = client.post(
            "/api/v1/import-batches",
            {"files": [SimpleUploadedFile("a.dcm", b"x")]},
            format="multipart",
        )
        assert upload.status_code == 403, name
        reports = client.post(
            "/api/v1/reports/import",
            {"file": SimpleUploadedFile("r.csv", b"StudyInstanceUID,findings\n1,x\n")},
            format="multipart",
        )
        assert reports.status_code == 403, name
        dataset = client.post(
            "/api/v1/dataset-imports",
            {"file": SimpleUploadedFile("d.zip", b"PK"), "name": "X", "layout": "manifest"},
            format="multipart",
        )
        assert dataset.status_code == 403, name
        page = Client()
        page.force_login(people[name])
        dataset_page = page.post(
            reverse("imaging:dataset_upload"),
            {"file": SimpleUploadedFile("d.zip", b"PK"), "name": "X", "layout": "manifest"},
        )
        assert dataset_page.status_code == 403, name
    assert ImportBatch.objects.count() == before


def test_readers_see_only_the_studies_the_reader_study_app_grants(people, archive) -> None:
    # Until a reader has assignments, the reader-studies hook grants nothing.
    assert not selectors.studies_visible_to(user=people["reader"]).exists()
    assert not selectors.studies_visible_to(user=people["outsider"]).exists()
    assert selectors.studies_visible_to(user=people["analyst"]).count() == 1
    with pytest.raises(Http404):
        selectors.study_get_for_user(
            user=people["reader"],
            public_id=archive["study"].public_id,  # type: ignore[attr-defined]
        )


def test_the_pseudonym_map_is_for_administrators_only(people, archive) -> None:
    assert PseudonymMapping.objects.exists()
    url = reverse("admin:imaging_pseudonymmapping_changelist")
    admin = Client()
    admin.force_login(people["admin_user"])
    assert admin.get(url).status_code == 200
    for name in ("coordinator", "analyst", "reader", "outsider"):
        client = Client()
        client.force_login(people[name])
        response = client.get(url)
        # Not staff: the admin sends them to its login page; never the map.
        assert response.status_code == 302, name
        assert "/admin/login/" in response["Location"]


def test_the_api_schema_documents_every_archive_endpoint(admin_user, api_client_for) -> None:
    response = api_client_for(admin_user).get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/studies",
        "/api/v1/studies/{public_id}",
        "/api/v1/import-batches",
        "/api/v1/import-batches/{public_id}",
        "/api/v1/dataset-imports",
        "/api/v1/reports/import",
    ):
        assert path in paths, path
