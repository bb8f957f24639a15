"""Research datasets without DICOM: PNG/JPEG studies in three layouts, through the one path."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.contrib.auth.models import AbstractUser
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from PIL import Image

from reviewapp.celery import app as celery_app
from reviewapp.core.errors import ApplicationError
from reviewapp.imaging.ingest import dataset_layouts
from reviewapp.imaging.ingest.datasets import DatasetOptions, dataset_import_run
from reviewapp.imaging.ingest.services import import_batch_create
from reviewapp.imaging.models import ImportBatch, ImportProblem, Instance, Study
from reviewapp.reports.models import Report
from reviewapp.reports.services import candidates_import, reports_import_csv
from tests.imaging import dataset_builders as build
from tests.imaging.test_dicomweb import OCTET_ANY, _split_multipart

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def run(
    root: Path,
    layout: str,
    *,
    user: AbstractUser | None = None,
    release: bool = False,
    name: str = "Synthetic CXR",
    table: str = "",
):
    batch = import_batch_create(source=ImportBatch.Source.DATASET, created_by=user)
    return dataset_import_run(
        batch=batch,
        root=root,
        options=DatasetOptions(name=name, layout=layout, release=release, table=table),
        requested_by=user,
    )


def stored(instance: Instance) -> pydicom.Dataset:
    with default_storage.open(instance.file.name, "rb") as handle:
        return pydicom.dcmread(handle)


def test_a_manifest_dataset_becomes_studies_of_one_series_per_view_with_reports(
    archive_dirs: Path, tmp_path: Path, coordinator: AbstractUser
) -> None:
    root = build.manifest_dataset(tmp_path / "ds", studies=3)
    result = run(root, "manifest", user=coordinator, release=True)

    assert [o.status for o in result.outcomes] == ["imported"] * 6
    assert result.studies == result.studies_stored == 3
    studies = Study.objects.order_by("dataset_study_id")
    assert [s.dataset_study_id for s in studies] == ["st0000", "st0001", "st0002"]
    assert {s.dataset_name for s in studies} == {"Synthetic CXR"}
    first = studies[0]
    assert first.modalities == "DX"
    assert first.indication == "Cough for two weeks."
    assert [(s.series_number, s.instances.get().view_position) for s in first.series.all()] == [
        (1, "PA"),
        (2, "LATERAL"),
    ]
    # The first two studies share the dataset's patient, so they share one pseudonym.
    assert studies[0].patient_pseudonym == studies[1].patient_pseudonym
    assert studies[0].patient_pseudonym != studies[2].patient_pseudonym
    report = Report.objects.get(study=first, kind=Report.Kind.ORIGINAL)
    assert report.findings.endswith(build.FINDINGS)
    assert report.impression.startswith(build.IMPRESSION)
    batch = ImportBatch.objects.get()
    assert (batch.status, batch.files_total, batch.files_done) == ("done", 6, 6)
    assert batch.origin == "dataset Synthetic CXR (manifest)"


def test_stored_pixels_equal_the_png_and_the_header_is_a_de_identified_secondary_capture(
    archive_dirs: Path, tmp_path: Path
) -> None:
    root = tmp_path / "ds"
    eight, sixteen = build.gray8(7), build.gray16(8)
    colour = np.random.default_rng(9).integers(0, 256, size=(20, 24, 3), dtype=np.uint8)
    grey_rgb = np.repeat(build.gray8(10, (16, 18))[..., None], 3, axis=2)
    build.write_png(root / "a.png", eight)
    build.write_png(root / "b.png", sixteen)
    build.write_png(root / "c.png", colour)
    build.write_png(root / "d.png", grey_rgb)
    (root / "manifest.csv").write_text(
        "study_id,image,view,patient_id,study_date\n"
        "s1,a.png,PA,John Doe 123,2020-01-02\n"
        "s2,b.png,AP,,\n"
        "s3,c.png,,,\n"
        "s4,d.png,,,\n"
    )
    result = run(root, "manifest")

    assert [o.status for o in result.outcomes] == ["quarantined"] * 4
    by_study = {
        i.series.study.dataset_study_id: i for i in Instance.objects.select_related("series__study")
    }
    a, b, c, d = (stored(by_study[s]) for s in ("s1", "s2", "s3", "s4"))
    assert np.array_equal(a.pixel_array, eight)
    assert a.BitsAllocated == 8
    assert np.array_equal(b.pixel_array, sixteen)
    assert b.BitsAllocated == 16
    assert np.array_equal(c.pixel_array, colour)
    assert c.PhotometricInterpretation == "RGB"
    assert np.array_equal(d.pixel_array, grey_rgb[..., 0])
    assert d.PhotometricInterpretation == "MONOCHROME2"
    assert a.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    assert list(a.ImageType) == ["DERIVED", "SECONDARY"]
    assert a.ConversionType == "WSD"
    assert a.PatientIdentityRemoved == "YES"
    assert "John" not in str(a.PatientID)
    assert "DerivationDescription" not in a
    assert a.StudyDate != "20200102"  # shifted like every date of that patient
    assert a.ViewPosition == "PA"
    assert b.ViewPosition == "AP"


def test_a_second_import_stores_nothing_new_and_a_changed_report_is_a_new_version(
    archive_dirs: Path, tmp_path: Path, coordinator: AbstractUser
) -> None:
    root = build.manifest_dataset(tmp_path / "ds", studies=2)
    run(root, "manifest", user=coordinator, release=True)
    files = sorted(p.name for p in (archive_dirs / "media" / "dicom").rglob("*.dcm"))

    manifest = root / "manifest.csv"
    manifest.write_text(manifest.read_text().replace("No acute", "No new acute", 1))
    again = run(root, "manifest", user=coordinator, release=True)

    assert [o.status for o in again.outcomes] == ["duplicate"] * 4
    assert (again.reports_created, again.reports_versioned, again.reports_unchanged) == (0, 1, 1)
    assert Instance.objects.count() == 4
    assert Study.objects.count() == 2
    assert sorted(p.name for p in (archive_dirs / "media" / "dicom").rglob("*.dcm")) == files
    versions = Report.objects.filter(kind=Report.Kind.ORIGINAL).order_by("study_id", "version")
    assert [r.version for r in versions] == [1, 2, 1]


def test_images_wait_in_quarantine_unless_a_coordinator_releases_the_dataset(
    archive_dirs: Path, tmp_path: Path, coordinator: AbstractUser, reader: AbstractUser
) -> None:
    root = build.manifest_dataset(tmp_path / "ds", studies=1)
    with pytest.raises(ApplicationError) as refused:
        run(root, "manifest", user=reader, release=True)
    assert refused.value.code == "release_needs_coordinator"

    held = run(root, "manifest", name="Held")
    assert {o.status for o in held.outcomes} == {"quarantined"}
    assert ImportProblem.objects.filter(kind=ImportProblem.Kind.QUARANTINED).count() == 2

    released = run(root, "manifest", user=coordinator, release=True, name="Released")
    assert {o.status for o in released.outcomes} == {"imported"}
    instances = Instance.objects.filter(series__study__dataset_name="Released")
    assert {(i.status, i.quarantine_reviewed_by_id) for i in instances} == {
        ("available", coordinator.pk)
    }
    assert all(i.quarantine_reason.startswith("secondary capture") for i in instances)


def test_each_bad_row_and_file_is_named_and_the_good_ones_import(
    archive_dirs: Path, tmp_path: Path
) -> None:
    root = tmp_path / "ds"
    build.write_png(root / "good.png", build.gray8(1))
    build.write_png(root / "good2.png", build.gray8(2))
    (root / "not-an-image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (root / "notes.png").write_text("hello")
    alpha = np.zeros((8, 8, 4), dtype=np.uint8)
    build.write_png(root / "transparent.png", alpha)
    huge = root / "huge.png"
    Image.new("L", (9000, 10)).save(huge)
    (tmp_path / "outside.png").write_bytes((root / "good.png").read_bytes())
    (root / "manifest.csv").write_text(
        "study_id,image,study_date\n"
        "s1,good.png,\n"
        "s2,not-an-image.png,\n"
        "s3,notes.png,\n"
        "s4,transparent.png,\n"
        "s5,huge.png,\n"
        "s6,../outside.png,\n"
        "s7,missing.png,\n"
        "s8,good.png,\n"
        ",good.png,\n"
        "s9,good2.png,2020-02-31\n"
    )
    result = run(root, "manifest")

    reasons = {o.name: o.reason for o in result.outcomes if o.status == "rejected"}
    assert reasons.pop("not-an-image.png").startswith("not a readable PNG or JPEG image (")
    assert reasons == {
        "row 7": "the image path leads outside the dataset folder",
        "row 8": "image missing.png was not found",
        "row 9": "names an image already listed on an earlier row",
        "row 10": "the study id is empty",
        "row 11": "the study date is not a date (use YYYY-MM-DD or YYYYMMDD)",
        "notes.png": "not a PNG or JPEG file",
        "transparent.png": "image has transparent pixels",
        "huge.png": "image is 9000 x 10; each side must be 1 to 8192 pixels",
    }
    assert [o.name for o in result.outcomes if o.status != "rejected"] == ["good.png"]
    assert ImportProblem.objects.filter(kind=ImportProblem.Kind.REJECTED).count() == 9


def test_the_rexrank_layout_brings_views_reports_and_context(
    archive_dirs: Path, tmp_path: Path, coordinator: AbstractUser
) -> None:
    root = build.rexrank_dataset(tmp_path / "rex")
    # ReXrank's JSON sits beside the images folder; its paths are relative to that folder.
    (root / "test.json").rename(root / "images" / "test.json")
    result = run(root / "images", "rexrank", user=coordinator, release=True)

    assert [o.status for o in result.outcomes] == ["imported"] * 3
    one = Study.objects.get(dataset_study_id="CXR1_IM-1")
    two = Study.objects.get(dataset_study_id="CXR2_IM-2")
    assert (one.indication, one.comparison, one.patient_sex) == ("Chest pain.", "None.", "F")
    assert two.indication == "Fever."
    assert sorted(i.view_position for i in Instance.objects.filter(series__study=one)) == [
        "",
        "LATERAL",
    ]
    assert Instance.objects.get(series__study=two).view_position == "PA"
    report = Report.objects.get(study=two, kind=Report.Kind.ORIGINAL)
    assert (report.findings, report.impression) == (build.FINDINGS, build.IMPRESSION)

    # Predictions keyed by the dataset's study id find these studies.
    predictions = build.rexrank_predictions(tmp_path / "pred.json", ["CXR1_IM-1", "CXR2_IM-2"])
    imported = candidates_import(
        data=predictions.read_bytes(), file_name="pred.json", source_name="Model A"
    )
    assert (imported.created, imported.problems) == (2, [])


def test_the_mimic_cxr_jpg_layout_reads_metadata_and_reports(
    archive_dirs: Path, tmp_path: Path, coordinator: AbstractUser
) -> None:
    root = build.mimic_dataset(tmp_path / "mimic")
    result = run(root, "mimic-cxr-jpg", user=coordinator, release=True)

    assert [o.status for o in result.outcomes] == ["imported"] * 3
    first = Study.objects.get(dataset_study_id="50000001")
    second = Study.objects.get(dataset_study_id="50000002")
    assert first.patient_pseudonym == second.patient_pseudonym
    assert (second.study_date - first.study_date).days == 240  # shifted alike
    assert first.study_time == "213014"
    assert first.technique == "Chest PA and lateral"
    assert first.comparison == "None."
    assert first.indication == "___ with cough."
    report = Report.objects.get(study=first, kind=Report.Kind.ORIGINAL)
    assert (report.findings, report.impression) == (build.FINDINGS, build.IMPRESSION)
    assert not Report.objects.filter(study=second).exists()
    jpeg = np.asarray(Image.open(next(root.glob("files/p10/p10000032/s50000002/*.jpg"))))
    assert np.array_equal(stored(Instance.objects.get(series__study=second)).pixel_array, jpeg)


def test_a_dataset_without_its_table_fails_the_batch_with_the_reason(
    archive_dirs: Path, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ApplicationError, match=r"manifest\.csv was not found"):
        run(tmp_path / "empty", "manifest")
    batch = ImportBatch.objects.get()
    assert batch.status == "failed"
    assert "manifest.csv was not found" in batch.error_message


def test_context_strings_split_into_their_sections() -> None:
    assert dataset_layouts.sections_split(
        "Age:50-60.Gender:M.Indication: Fever.Comparison: Chest radiograph of ___."
    ) == {
        "indication": "Fever.",
        "comparison": "Chest radiograph of ___.",
        "technique": "",
        "sex": "M",
        "findings": "",
        "impression": "",
    }
    assert dataset_layouts.sections_split("Shortness of breath")["indication"] == (
        "Shortness of breath"
    )


def test_import_dataset_command_prints_a_summary_and_each_problem(
    archive_dirs: Path, tmp_path: Path, coordinator: AbstractUser, capsys
) -> None:
    root = build.manifest_dataset(tmp_path / "ds", studies=2)
    (root / "manifest.csv").write_text(
        (root / "manifest.csv").read_text() + "st9999,images/none.png,PA,,,,,,\n"
    )
    call_command(
        "import_dataset",
        str(root),
        "--layout",
        "manifest",
        "--name",
        "Synthetic",
        "--release",
        "--user",
        coordinator.username,
        "--no-progress",
    )
    out = capsys.readouterr().out
    assert "2 of 2 studies stored; images: 4 imported" in out
    assert "reports: 2 created" in out
    assert "not imported: row 6: image images/none.png was not found" in out
    with pytest.raises(CommandError, match="no such folder"):
        call_command("import_dataset", "nowhere", "--layout", "manifest", "--name", "X")


# --- served and uploaded like any study ------------------------------------------------------


def test_a_png_study_is_served_by_dicomweb_with_the_png_pixels(
    archive_dirs: Path, tmp_path: Path, coordinator: AbstractUser, api_client_for
) -> None:
    root = build.manifest_dataset(tmp_path / "ds", studies=1)
    run(root, "manifest", user=coordinator, release=True)
    instance = Instance.objects.select_related("series__study").get(view_position="PA")
    study = instance.series.study
    client = api_client_for(coordinator)

    found = client.get("/dicomweb/studies", {"StudyInstanceUID": study.study_instance_uid})
    assert found.status_code == 200
    assert len(found.json()) == 1
    url = (
        f"/dicomweb/studies/{study.study_instance_uid}/series/"
        f"{instance.series.series_instance_uid}/instances/{instance.sop_instance_uid}"
    )
    response = client.get(f"{url}/frames/1", HTTP_ACCEPT=OCTET_ANY)
    assert response.status_code == 200
    ((_, frame),) = _split_multipart(response["Content-Type"], response.content)
    png = np.asarray(Image.open(root / "images/st0000_pa.png"))
    assert np.array_equal(np.frombuffer(frame, dtype=np.uint8).reshape(png.shape), png)


def _zip_of(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{folder.name}/{path.relative_to(folder).as_posix()}")
    return target


def test_a_script_uploads_a_zipped_dataset_and_follows_the_batch_to_the_end(
    archive_dirs: Path,
    tmp_path: Path,
    coordinator: AbstractUser,
    api_client_for,
    eager_tasks,
    django_capture_on_commit_callbacks,
) -> None:
    root = build.rexrank_dataset(tmp_path / "rexrank")
    archive = _zip_of(root, tmp_path / "rexrank.zip")
    client = api_client_for(coordinator)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/dataset-imports",
            {
                "file": SimpleUploadedFile("rexrank.zip", archive.read_bytes()),
                "name": "ReXrank IU",
                "layout": "rexrank",
                "table": "test.json",
                "release": "true",
            },
            format="multipart",
        )
    assert response.status_code == 202, response.content
    detail = client.get(f"/api/v1/import-batches/{response.json()['public_id']}").json()
    # The JSON names images relative to its own folder here, so they are all missing.
    assert detail["status"] == "done", detail
    assert detail["source"] == "dataset"
    assert detail["origin"] == "dataset ReXrank IU (rexrank)"
    assert [p["reason"] for p in detail["problems"]][:1] == ["image was not found"]

    (root / "images").rename(tmp_path / "images")
    (root / "test.json").rename(tmp_path / "images" / "test.json")
    archive = _zip_of(tmp_path / "images", tmp_path / "images.zip")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/dataset-imports",
            {
                "file": SimpleUploadedFile("images.zip", archive.read_bytes()),
                "name": "ReXrank IU",
                "layout": "rexrank",
                "release": "true",
            },
            format="multipart",
        )
    detail = client.get(f"/api/v1/import-batches/{response.json()['public_id']}").json()
    assert (detail["status"], detail["files_total"], detail["imported_count"]) == ("done", 3, 3)
    assert detail["problems"] == []
    assert Study.objects.filter(dataset_name="ReXrank IU").count() == 2
    assert not list((archive_dirs / "imports").iterdir())  # the staged upload is gone


@pytest.mark.parametrize(
    ("persona", "expected"),
    [("reader", 403), ("analyst", 403), ("outsider", 403), ("coordinator", 400)],
)
def test_only_coordinators_may_import_datasets_and_bad_options_are_named(
    request, persona: str, expected: int, api_client_for, archive_dirs: Path
) -> None:
    user = request.getfixturevalue(persona)
    response = api_client_for(user).post(
        "/api/v1/dataset-imports",
        {"file": SimpleUploadedFile("d.zip", b"PK"), "name": "X", "layout": "dicom"},
        format="multipart",
    )
    assert response.status_code == expected
    if expected == 400:
        assert "layout" in response.json()
    assert not ImportBatch.objects.exists()


def test_the_dataset_page_uploads_a_zip_and_redirects_to_the_batch(
    archive_dirs: Path,
    tmp_path: Path,
    coordinator: AbstractUser,
    client,
    eager_tasks,
    django_capture_on_commit_callbacks,
) -> None:
    root = build.mimic_dataset(tmp_path / "mimic")
    archive = _zip_of(root, tmp_path / "mimic.zip")
    client.force_login(coordinator)
    page = client.get("/imaging/datasets/")
    assert page.status_code == 200
    assert b"mimic-cxr-jpg" in page.content
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/imaging/datasets/",
            {
                "name": "MIMIC sample",
                "layout": "mimic-cxr-jpg",
                "modality": "CR",
                "file": SimpleUploadedFile("mimic.zip", archive.read_bytes()),
            },
        )
    batch = ImportBatch.objects.get()
    assert response.status_code == 302
    assert response["Location"].endswith(f"/imports/{batch.public_id}/")
    batch.refresh_from_db()
    assert (batch.status, batch.quarantined_count) == ("done", 3)
    assert set(Study.objects.values_list("modalities", flat=True)) == {"CR"}
    study = Study.objects.get(dataset_study_id="50000001")
    detail = client.get(f"/imaging/studies/{study.public_id}/")
    assert b"MIMIC sample, study 50000001" in detail.content


def test_a_reports_csv_keyed_by_the_dataset_study_id_brings_reports_and_indications(
    archive_dirs: Path, tmp_path: Path, coordinator: AbstractUser
) -> None:
    root = build.manifest_dataset(tmp_path / "ds", studies=2, with_reports=False)
    run(root, "manifest", user=coordinator, release=True)
    assert not Report.objects.exists()
    csv_text = (
        "study_id,findings,impression,indication\n"
        f'st0000,"{build.FINDINGS}",{build.IMPRESSION},Fever.\n'
        f'st0001,"{build.FINDINGS}",{build.IMPRESSION},\n'
        "st9999,x,y,\n"
    )
    result = reports_import_csv(data=csv_text.encode(), source_name="reports.csv")
    assert result.created == 2
    assert [(p.row, p.reason) for p in result.problems] == [
        (4, "no study in the archive has this dataset study id")
    ]
    assert Study.objects.get(dataset_study_id="st0000").indication == "Fever."


def test_a_list_of_study_ids_keeps_only_those_studies_of_a_large_dataset(tmp_path: Path) -> None:
    root = build.mimic_dataset(tmp_path / "mimic")
    read = dataset_layouts.layout_read(
        layout="mimic-cxr-jpg", root=root, study_ids={"50000002", "59999999"}
    )
    assert [s.study_id for s in read.studies] == ["50000002"]
    assert read.problems == []
