"""The archive pages as a coordinator uses them (Django test client, real database)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from reviewapp.celery import app as celery_app
from reviewapp.imaging.models import ImportBatch, ImportProblem, Instance, Study
from reviewapp.reports.models import Report
from tests.imaging.conftest import CT_FILES, CXR_JPEG, import_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Run queued tasks in-process, as the worker would, when the transaction commits."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def _ct_zip() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in CT_FILES:
            zf.write(path, f"thorax/{path.name}")
    return SimpleUploadedFile("thorax.zip", buffer.getvalue(), content_type="application/zip")


def _upload_set() -> list[SimpleUploadedFile]:
    return [
        _ct_zip(),
        SimpleUploadedFile("chest_pa.dcm", CXR_JPEG.read_bytes()),
        SimpleUploadedFile("scan-notes.dcm", b"DICM? not really" * 64),
    ]


def _upload(client: Client, files: list[SimpleUploadedFile], capture) -> ImportBatch:
    with capture(execute=True):
        response = client.post(reverse("imaging:upload"), {"files": files})
    assert response.status_code == 302, response.content[:500]
    return ImportBatch.objects.get(public_id=response["Location"].rstrip("/").split("/")[-1])


def test_uploading_a_zip_a_radiograph_and_a_broken_file_imports_31_instances_into_2_studies(
    client: Client,
    coordinator,
    archive_dirs: Path,
    eager_tasks: None,
    django_capture_on_commit_callbacks,
) -> None:
    client.force_login(coordinator)
    batch = _upload(client, _upload_set(), django_capture_on_commit_callbacks)
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.DONE
    # The radiograph has no Burned In Annotation: stored, but held for a coordinator's review.
    assert (batch.imported_count, batch.quarantined_count) == (30, 1)
    assert (batch.failed_count, batch.files_done) == (1, 32)
    assert Instance.objects.count() == 31
    assert Study.objects.count() == 2
    assert sorted(Study.objects.values_list("modalities", flat=True)) == ["CR", "CT"]
    problem = ImportProblem.objects.get(batch=batch, kind=ImportProblem.Kind.REJECTED)
    assert problem.file_name == "scan-notes.dcm"
    # The batch page names the broken file and why; staged uploads are gone.
    page = client.get(reverse("imaging:import_batch_detail", args=[batch.public_id]))
    assert page.status_code == 200
    assert "scan-notes.dcm" in page.content.decode()
    assert problem.reason in page.content.decode()
    assert not any((archive_dirs / "imports").rglob("*.upload"))


def test_uploading_the_same_files_again_is_idempotent(
    client: Client,
    coordinator,
    archive_dirs: Path,
    eager_tasks: None,
    django_capture_on_commit_callbacks,
) -> None:
    client.force_login(coordinator)
    _upload(client, _upload_set(), django_capture_on_commit_callbacks)
    again = _upload(client, _upload_set(), django_capture_on_commit_callbacks)
    again.refresh_from_db()
    assert (again.imported_count, again.duplicate_count, again.failed_count) == (0, 31, 1)
    assert Instance.objects.count() == 31
    assert Study.objects.count() == 2


def test_folder_uploads_keep_their_relative_paths_in_messages(
    client: Client,
    coordinator,
    archive_dirs: Path,
    eager_tasks: None,
    django_capture_on_commit_callbacks,
) -> None:
    client.force_login(coordinator)
    files = [
        SimpleUploadedFile("1-01.dcm", CT_FILES[0].read_bytes()),
        SimpleUploadedFile("readme.txt", b"hello"),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("imaging:upload"),
            {"files": files, "paths": ["scan/ct/1-01.dcm", "scan/readme.txt"]},
        )
    assert ImportProblem.objects.get().file_name == "scan/readme.txt"


def test_an_upload_over_the_limit_is_refused_with_413_and_nothing_is_stored(
    client: Client, coordinator, archive_dirs: Path, settings
) -> None:
    client.force_login(coordinator)
    two_gb = str(2 * 1024**3)
    response = client.post(
        reverse("imaging:upload"),
        {"files": [SimpleUploadedFile("big.zip", b"x" * 1024)]},
        CONTENT_LENGTH=two_gb,
    )
    assert response.status_code == 413
    assert "too large" in response.content.decode()
    assert "2.0 GB sent" in response.content.decode()
    assert ImportBatch.objects.count() == 0
    assert not (archive_dirs / "imports").exists()
    # The limit is the setting's, whatever it is.
    settings.RADREVIEW_MAX_UPLOAD_BYTES = 4096
    response = client.post(
        reverse("imaging:upload"), {"files": [SimpleUploadedFile("big.zip", b"x" * 10000)]}
    )
    assert response.status_code == 413
    assert "4.0 KB per upload" in response.content.decode()
    assert ImportBatch.objects.count() == 0


def test_the_upload_page_offers_files_folder_and_drop_zone(client: Client, coordinator) -> None:
    client.force_login(coordinator)
    html = client.get(reverse("imaging:upload")).content.decode()
    assert 'type="file" name="files" multiple' in html
    assert "webkitdirectory" in html
    assert 'id="drop-zone"' in html
    assert "<script>" not in html  # CSP: page code comes from the bundle only


def test_the_upload_without_csrf_token_is_refused(coordinator, archive_dirs: Path) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(coordinator)
    response = client.post(
        reverse("imaging:upload"), {"files": [SimpleUploadedFile("a.dcm", b"x")]}
    )
    assert response.status_code == 403
    assert ImportBatch.objects.count() == 0


def test_study_list_filters_by_modality_date_text_ai_report_and_stratum(
    client: Client, coordinator, imported_ct_study: Study, imported_cxr_studies: list[Study]
) -> None:
    j2k, jpeg = imported_cxr_studies
    # Descriptions set here: what de-identification keeps of them is not this test's subject.
    Study.objects.filter(pk=imported_ct_study.pk).update(
        stratum="abnormal", description="CT chest staging"
    )
    Study.objects.filter(pk=j2k.pk).update(stratum="normal")
    Report.objects.create(study=jpeg, kind=Report.Kind.AI, findings="x", impression="y")
    client.force_login(coordinator)

    def listed(**params: str) -> set[str]:
        response = client.get(reverse("imaging:study_list"), params)
        assert response.status_code == 200
        return {str(s.public_id) for s in response.context["page"]}

    ct, cxr1, cxr2 = str(imported_ct_study.public_id), str(j2k.public_id), str(jpeg.public_id)
    assert listed() == {ct, cxr1, cxr2}
    assert listed(modality="CT") == {ct}
    assert listed(modality="CR") == {cxr1, cxr2}
    assert listed(stratum="normal") == {cxr1}
    assert listed(has_ai_report="yes") == {cxr2}
    assert listed(has_ai_report="no") == {ct, cxr1}
    assert listed(q="STAGING") == {ct}
    ct_date = Study.objects.get(pk=imported_ct_study.pk).study_date
    assert ct_date is not None
    assert ct in listed(date_from=ct_date.isoformat(), date_to=ct_date.isoformat())
    assert listed(date_from=date(2100, 1, 1).isoformat()) == set()
    # Series and image counts per study.
    page = client.get(reverse("imaging:study_list"), {"modality": "CT"})
    row = page.context["page"][0]
    assert (row.series_count, row.instance_count) == (1, 30)


def test_study_detail_lists_series_with_image_counts(
    client: Client, coordinator, imported_ct_study: Study
) -> None:
    client.force_login(coordinator)
    response = client.get(reverse("imaging:study_detail", args=[imported_ct_study.public_id]))
    assert response.status_code == 200
    series = list(response.context["series_list"])
    assert len(series) == 1
    assert series[0].instance_count == 30
    assert 'id="series-table"' in response.content.decode()
    assert "No reports yet." in response.content.decode()
    Report.objects.create(
        study=imported_ct_study, kind=Report.Kind.ORIGINAL, findings="Mass.", impression="Cancer."
    )
    html = client.get(reverse("imaging:study_detail", args=[imported_ct_study.public_id])).content
    assert "Original (radiologist)" in html.decode()
    assert "Mass." in html.decode()


def test_a_coordinator_approves_and_rejects_quarantined_images(
    client: Client,
    coordinator,
    archive_dirs: Path,
    tmp_path: Path,
    django_capture_on_commit_callbacks,
) -> None:
    import pydicom

    paths = []
    for index, source in enumerate(CT_FILES[:2]):
        ds = pydicom.dcmread(source)
        ds.BurnedInAnnotation = "YES"
        path = tmp_path / f"burned{index}.dcm"
        ds.save_as(path)
        paths.append(path)
    import_files(paths)
    keep, drop = Instance.objects.order_by("instance_number")
    client.force_login(coordinator)
    listing = client.get(reverse("imaging:quarantine_list"))
    assert str(keep.public_id) in listing.content.decode()
    client.post(
        reverse("imaging:quarantine_decide", args=[keep.public_id]), {"decision": "approve"}
    )
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("imaging:quarantine_decide", args=[drop.public_id]), {"decision": "reject"}
        )
    keep.refresh_from_db()
    assert keep.status == Instance.Status.AVAILABLE
    assert keep.quarantine_reviewed_by == coordinator
    assert not Instance.objects.filter(pk=drop.pk).exists()
    stored = {p.name for p in (archive_dirs / "media").rglob("*.dcm")}
    assert stored == {f"{keep.sop_instance_uid}.dcm"}


def _burned_in_ct_slice(tmp_path: Path) -> Path:
    """A CT slice that declares burned-in annotation and carries a bright label top-left."""
    import pydicom

    ds = pydicom.dcmread(CT_FILES[0])
    pixels = ds.pixel_array.copy()
    pixels[8:40, 8:120] = pixels.max()  # where scanners burn in a name
    ds.PixelData = pixels.tobytes()
    ds.BurnedInAnnotation = "YES"
    path = tmp_path / "burned.dcm"
    ds.save_as(path)
    return path


def test_the_quarantine_shows_the_image_being_approved_with_its_burned_in_text(
    client: Client, coordinator, archive_dirs: Path, tmp_path: Path
) -> None:
    from PIL import Image

    import_files([_burned_in_ct_slice(tmp_path)])
    instance = Instance.objects.get(status=Instance.Status.QUARANTINED)
    client.force_login(coordinator)

    listing = client.get(reverse("imaging:quarantine_list")).content.decode()
    preview_url = reverse("imaging:quarantine_preview", args=[instance.public_id])
    response = client.get(preview_url)

    assert f'<img class="quarantine-preview" src="{preview_url}"' in listing
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert "no-store" in response["Cache-Control"]
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (instance.columns, instance.rows)
    grey = image.convert("L")
    label = [grey.getpixel((x, y)) for x in range(12, 110, 8) for y in range(12, 36, 8)]
    empty_corner = [grey.getpixel((x, y)) for x in range(400, 500, 8) for y in range(12, 36, 8)]
    assert min(label) >= 250
    assert max(empty_corner) <= 60


def test_a_compressed_radiograph_previews_whole_and_windowed(
    client: Client, coordinator, archive_dirs: Path
) -> None:
    from PIL import Image, ImageStat

    from tests.imaging.conftest import CXR_J2K

    import_files([CXR_J2K])
    instance = Instance.objects.get(status=Instance.Status.QUARANTINED)
    client.force_login(coordinator)

    response = client.get(reverse("imaging:quarantine_preview", args=[instance.public_id]))

    image = Image.open(io.BytesIO(response.content))
    assert max(image.size) == 1024  # scaled to fit, aspect kept
    assert abs(image.width / image.height - instance.columns / instance.rows) < 0.01
    stats = ImageStat.Stat(image.convert("L"))
    assert stats.stddev[0] > 30  # a windowed radiograph, not a black or flat square
