from __future__ import annotations

import zipfile
from pathlib import Path

import pydicom
import pytest
from django.core.files.storage import default_storage
from django.db import transaction

from reviewapp.imaging.ingest.deid import pseudonymize_uid
from reviewapp.imaging.ingest.services import import_batch_create, import_batch_run, slice_position
from reviewapp.imaging.ingest.types import FileOutcome, IncomingFile
from reviewapp.imaging.models import (
    ImportBatch,
    ImportProblem,
    Instance,
    PseudonymMapping,
    Series,
    Study,
)
from tests.imaging.conftest import CT_DIR, CT_FILES, CXR_J2K, CXR_JPEG, import_files

pytestmark = pytest.mark.django_db


def test_the_ct_folder_becomes_one_study_of_thirty_ordered_slices(archive_dirs: Path) -> None:
    batch, outcomes = import_files(CT_FILES, root=CT_DIR)
    assert [o.status for o in outcomes] == ["imported"] * 30
    assert (batch.status, batch.files_total, batch.files_done, batch.imported_count) == (
        ImportBatch.Status.DONE,
        30,
        30,
        30,
    )
    study = Study.objects.get()
    assert study.modalities == "CT"
    series = Series.objects.get()
    instances = list(series.instances.all())
    assert len(instances) == 30
    # Ordered by position along the slice normal (here z, which falls as the instance number
    # rises in this series), so the order comes from geometry, not numbering.
    originals = {
        pydicom.dcmread(p).InstanceNumber: float(pydicom.dcmread(p).ImagePositionPatient[2])
        for p in CT_FILES
    }
    zs = [originals[i.instance_number] for i in instances]
    assert zs == sorted(zs)
    assert all(i.position is not None for i in instances)


def test_stored_files_are_de_identified_and_named_by_their_new_uid(archive_dirs: Path) -> None:
    _, outcomes = import_files([CXR_JPEG])
    original = pydicom.dcmread(CXR_JPEG)
    instance = Instance.objects.get()
    assert instance.sop_instance_uid != original.SOPInstanceUID
    assert instance.sop_instance_uid == outcomes[0].sop_instance_uid
    assert instance.file.name.endswith(f"{instance.sop_instance_uid}.dcm")
    assert CXR_JPEG.stem not in instance.file.name
    stored = pydicom.dcmread(default_storage.path(instance.file.name))
    assert stored.SOPInstanceUID == instance.sop_instance_uid
    assert stored.PatientID != original.PatientID
    assert instance.frame_ranges
    assert instance.dicom_json
    assert instance.file_size == Path(default_storage.path(instance.file.name)).stat().st_size


def test_pseudonym_mapping_records_original_identifiers(archive_dirs: Path, settings) -> None:
    import_files([CXR_J2K])
    original = pydicom.dcmread(CXR_J2K)
    study = Study.objects.get()
    mapping = PseudonymMapping.objects.get(kind=PseudonymMapping.Kind.STUDY_UID)
    assert mapping.original == original.StudyInstanceUID
    assert mapping.pseudonym == study.study_instance_uid
    assert study.study_instance_uid == pseudonymize_uid(
        original.StudyInstanceUID, secret=settings.RADREVIEW_DEID_SECRET.encode()
    )
    accession = PseudonymMapping.objects.get(kind=PseudonymMapping.Kind.ACCESSION)
    assert accession.original == str(original.AccessionNumber)
    assert accession.pseudonym == study.accession_pseudonym


def test_importing_the_same_files_again_adds_nothing(archive_dirs: Path) -> None:
    import_files([CXR_J2K, CXR_JPEG, *CT_FILES[:3]])
    stored_before = sorted(Path(default_storage.path("dicom")).rglob("*.dcm"))
    batch, outcomes = import_files([CXR_J2K, CXR_JPEG, *CT_FILES[:3]])
    assert [o.status for o in outcomes] == ["duplicate"] * 5
    assert (batch.imported_count, batch.duplicate_count) == (0, 5)
    assert Instance.objects.count() == 5
    assert Study.objects.count() == 3
    assert sorted(Path(default_storage.path("dicom")).rglob("*.dcm")) == stored_before


def test_our_own_de_identified_instances_pushed_back_are_recognised_not_stored_again(
    archive_dirs: Path, tmp_path: Path
) -> None:
    _, first = import_files(CT_FILES[:2])
    stored = Instance.objects.select_related("series__study").get(
        sop_instance_uid=first[0].sop_instance_uid
    )
    # What a PACS or Orthanc sends back after retrieving it: the stored file itself.
    copy = tmp_path / "round-trip.dcm"
    with stored.file.open("rb") as handle:
        copy.write_bytes(handle.read())
    batch, (outcome,) = import_files([copy])
    assert outcome.status == "duplicate"
    assert outcome.sop_instance_uid == stored.sop_instance_uid
    assert outcome.study_instance_uid == stored.series.study.study_instance_uid
    assert outcome.series_instance_uid == stored.series.series_instance_uid
    assert batch.duplicate_count == 1
    assert Instance.objects.count() == 2
    assert Study.objects.count() == 1
    # Nothing of ours was taken for an original to map.
    ours = [
        stored.sop_instance_uid,
        stored.series.study.study_instance_uid,
        stored.series.study.patient_pseudonym,
    ]
    assert not PseudonymMapping.objects.filter(original__in=ours).exists()

    # A file that merely claims to be de-identified is de-identified like any other.
    claimed = pydicom.dcmread(CT_FILES[2])
    claimed.PatientIdentityRemoved = "YES"
    claimed_path = tmp_path / "claimed.dcm"
    claimed.save_as(claimed_path)
    _, (other,) = import_files([claimed_path])
    assert other.status == "imported"
    assert other.sop_instance_uid != str(claimed.SOPInstanceUID)


def test_a_broken_file_is_named_and_the_others_still_import(
    archive_dirs: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"this is not dicom at all" * 10)
    batch, outcomes = import_files([CXR_JPEG, broken, CXR_J2K], root=None)
    assert [o.status for o in outcomes] == ["quarantined", "rejected", "quarantined"]
    problem = ImportProblem.objects.get(batch=batch, kind=ImportProblem.Kind.REJECTED)
    assert problem.file_name == "broken.dcm"
    assert problem.reason
    assert batch.failed_count == 1
    assert Instance.objects.count() == 2


def test_a_zip_is_expanded_and_its_members_named(archive_dirs: Path, tmp_path: Path) -> None:
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in CT_FILES[:4]:
            zf.write(path, f"ct/{path.name}")
        zf.writestr("ct/notes.txt", "not an image")
    batch, outcomes = import_files([archive])
    assert sorted(o.status for o in outcomes) == ["imported"] * 4 + ["rejected"]
    rejected = next(o for o in outcomes if o.status == "rejected")
    assert "notes.txt" in rejected.name
    assert batch.files_total == 5
    assert batch.files_done == 5


def test_a_file_whose_rows_fail_leaves_nothing_stored(archive_dirs: Path, tmp_path: Path) -> None:
    # Same SeriesInstanceUID as an imported CT slice but another study: the rows are refused
    # and the file already written to storage must go with them.
    import_files(CT_FILES[:1])
    ds = pydicom.dcmread(CT_FILES[1])
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    odd = tmp_path / "odd.dcm"
    ds.save_as(odd)
    _, outcomes = import_files([odd])
    assert outcomes[0].status == "rejected"
    assert outcomes[0].reason == (
        "its SeriesInstanceUID already belongs to another study in the archive"
    )
    assert Instance.objects.count() == 1
    assert len(list(Path(default_storage.path("dicom")).rglob("*.dcm"))) == 1


def test_burned_in_annotation_quarantines_the_instance(archive_dirs: Path, tmp_path: Path) -> None:
    ds = pydicom.dcmread(CXR_JPEG)
    ds.BurnedInAnnotation = "YES"
    path = tmp_path / "burned.dcm"
    ds.save_as(path)
    batch, outcomes = import_files([path])
    assert outcomes[0].status == "quarantined"
    assert Instance.objects.get().status == Instance.Status.QUARANTINED
    assert batch.quarantined_count == 1
    assert ImportProblem.objects.get(batch=batch).kind == ImportProblem.Kind.QUARANTINED


def test_a_rerun_batch_counts_its_own_files_as_imported(archive_dirs: Path) -> None:
    files = [IncomingFile(name=p.name, path=p) for p in CT_FILES[:3]]
    batch = import_batch_create(source=ImportBatch.Source.COMMAND, created_by=None)
    import_batch_run(batch=batch, files=files)
    outcomes = import_batch_run(batch=batch, files=files)
    batch.refresh_from_db()
    assert [o.status for o in outcomes] == ["imported"] * 3
    assert (batch.imported_count, batch.duplicate_count, batch.files_done) == (3, 0, 3)
    assert Instance.objects.count() == 3


def test_slice_position_projects_on_the_normal_of_oblique_slices() -> None:
    ds = pydicom.Dataset()
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]  # coronal: normal along y
    ds.ImagePositionPatient = [10, 42, 7]
    ds.InstanceNumber = 3
    assert slice_position(ds) == pytest.approx(42.0)
    del ds.ImageOrientationPatient
    assert slice_position(ds) == 3.0


@pytest.mark.django_db(transaction=True)
def test_a_slice_whose_series_another_import_is_creating_still_lands(
    archive_dirs: Path, settings
) -> None:
    # Another import (say a STOW-RS push of the same series) has inserted the series row but
    # not committed when this import reaches it: the insert waits on the unique index, fails
    # when the other commits, and must then use that row instead of losing the slice.
    import threading
    import time

    from django.db import connections

    secret = settings.RADREVIEW_DEID_SECRET.encode()
    original = pydicom.dcmread(CT_FILES[0], stop_before_pixels=True)
    study = Study.objects.create(
        study_instance_uid=pseudonymize_uid(original.StudyInstanceUID, secret=secret),
        patient_pseudonym="p",
    )
    inserted = threading.Event()

    def other_import() -> None:
        try:
            with transaction.atomic():
                Series.objects.create(
                    study=study,
                    series_instance_uid=pseudonymize_uid(original.SeriesInstanceUID, secret=secret),
                    modality="CT",
                )
                inserted.set()
                time.sleep(1.5)
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_import)
    thread.start()
    assert inserted.wait(timeout=30)
    _, outcomes = import_files(CT_FILES[:1])
    thread.join(timeout=30)
    assert [o.status for o in outcomes] == ["imported"], outcomes
    assert Series.objects.count() == 1
    assert Instance.objects.get().series.study == study


def test_a_storage_failure_rejects_the_file_and_logs_no_exception_message(
    archive_dirs: Path, settings, caplog, tmp_path: Path
) -> None:
    # Storage that cannot be written (its root is a plain file): each file fails on its own,
    # the batch finishes, and the log names the error type, not its message.
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    settings.MEDIA_ROOT = blocked
    batch, outcomes = import_files(CT_FILES[:2])
    assert [o.status for o in outcomes] == ["rejected", "rejected"]
    assert outcomes[0].reason == "an internal error stopped this file; it was not imported"
    assert batch.status == ImportBatch.Status.DONE
    assert Instance.objects.count() == 0
    assert "Unexpected error importing one file" in caplog.text
    assert str(blocked) not in caplog.text


def test_an_image_whose_compressed_pixels_cannot_be_decoded_is_refused_by_name(
    archive_dirs: Path, tmp_path: Path
) -> None:
    # Sound structure, broken JPEG (a 0 x 0 frame header): a reader would get a blank
    # viewer, so the import refuses it and says why.
    data = bytearray(CXR_JPEG.read_bytes())
    start_of_frame = data.index(b"\xff\xc0")
    data[start_of_frame + 5 : start_of_frame + 9] = b"\x00\x00\x00\x00"
    corrupt = tmp_path / "corrupt.dcm"
    corrupt.write_bytes(bytes(data))
    _, outcomes = import_files([corrupt, CT_FILES[0]])
    assert [o.status for o in outcomes] == ["rejected", "imported"]
    assert outcomes[0].reason.startswith("pixel data cannot be decoded")
    assert Instance.objects.count() == 1


def _zip_of(path: Path, members: list[Path]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member in members:
            zf.write(member, f"ct/{member.name}")
    return path


def test_two_zips_each_within_the_limits_are_refused_together(
    archive_dirs: Path, tmp_path: Path, settings
) -> None:
    first = _zip_of(tmp_path / "a.zip", CT_FILES[:3])
    second = _zip_of(tmp_path / "b.zip", CT_FILES[3:6])
    settings.RADREVIEW_MAX_ARCHIVE_BYTES = sum(p.stat().st_size for p in CT_FILES[:4])
    batch, outcomes = import_files([first, second])
    assert [(o.name, o.status) for o in outcomes] == [
        *((f"a.zip/ct/{p.name}", "imported") for p in CT_FILES[:3]),
        ("b.zip", "rejected"),
    ]
    assert outcomes[-1].reason.startswith("archive expands to ")
    assert "with the archives before it in this upload" in outcomes[-1].reason
    assert (batch.files_total, batch.files_done, batch.failed_count) == (4, 4, 1)
    assert Instance.objects.count() == 3


def test_scratch_never_holds_more_than_one_expanded_member(
    archive_dirs: Path, tmp_path: Path
) -> None:
    first = _zip_of(tmp_path / "a.zip", CT_FILES[:4])
    second = _zip_of(tmp_path / "b.zip", CT_FILES[4:8])
    scratch = archive_dirs / "tmp"
    peaks: list[tuple[int, int]] = []

    def measure(outcome: FileOutcome) -> None:
        # Called after each file is imported: the moment the most is on disk.
        held = [p for p in scratch.rglob("*") if p.is_file()]
        peaks.append((len(held), sum(p.stat().st_size for p in held)))

    batch = import_batch_create(source=ImportBatch.Source.COMMAND, created_by=None, files_total=2)
    outcomes = import_batch_run(
        batch=batch,
        files=[IncomingFile(name="a.zip", path=first), IncomingFile(name="b.zip", path=second)],
        on_progress=measure,
    )
    assert [o.status for o in outcomes] == ["imported"] * 8
    largest = max(p.stat().st_size for p in CT_FILES[:8])
    assert len(peaks) == 8
    assert max(count for count, _ in peaks) == 1
    assert max(size for _, size in peaks) <= largest
    batch.refresh_from_db()
    assert (batch.files_total, batch.files_done) == (8, 8)
    assert not list(scratch.iterdir())
