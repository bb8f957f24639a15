"""DICOM text a reader can reach: none. Headers reach readers cut to what display needs.

alice (reader) is assigned a radiograph converted from a public collection whose header still
carries the collection's label ("No Finding", the answer) and PHI left by an upstream
de-identification in its descriptors. carol (coordinator) keeps the full de-identified header.
Every check searches the raw response bytes, so a new attribute or a new path cannot hide it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.contrib.auth.models import AbstractUser
from django.test import Client
from rest_framework.test import APIClient

from reviewapp.core.roles import Role
from reviewapp.imaging.dicomweb.reader_view import (
    READER_VISIBLE_KEYWORDS,
    reader_dataset,
    reader_json,
)
from reviewapp.imaging.models import Instance, Study
from reviewapp.reports.models import Report
from reviewapp.studies.models import Assignment
from tests.imaging.conftest import CXR_J2K, CXR_JPEG, import_files
from tests.imaging.test_dicomweb import _split_multipart
from tests.studies.conftest import build_study

ClientFor = Callable[[AbstractUser | None], APIClient]
pytestmark = pytest.mark.django_db

DATASET_LABEL = "No Finding"
# What an upstream de-identification left in descriptors (issue 18), and where.
PHI_DESCRIPTORS = {
    "SeriesDescription": "DOB Jan 05 1950 MRN 7788",
    "ProtocolName": "pt Jon Smyth bed 12",
    "PerformedProcedureStepDescription": "CHEST PA per Dr Gregory House",
}
PHI_FRAGMENTS = ["Jan 05", "1950", "7788", "Jon", "Smyth", "bed 12", "Gregory", "House"]
# Header keys (DICOM JSON) that must never reach a reader.
TEXT_TAGS = {
    "00081030": "StudyDescription",
    "0008103E": "SeriesDescription",
    "00181030": "ProtocolName",
    "00400254": "PerformedProcedureStepDescription",
    "00281055": "WindowCenterWidthExplanation",
    "00080020": "StudyDate",
    "00080030": "StudyTime",
    "00080050": "AccessionNumber",
    "00100010": "PatientName",
    "00100020": "PatientID",
    "00100040": "PatientSex",
    "00080070": "Manufacturer",
}
OCTET_ANY = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
DICOM_ANY = 'multipart/related; type="application/dicom"; transfer-syntax=*'


@pytest.fixture
def labelled_study(archive_dirs: Path, tmp_path: Path) -> Study:
    """A radiograph whose descriptors carry the dataset's label and PHI, imported (Burned In
    Annotation NO, so it goes straight to readers)."""
    ds = pydicom.dcmread(CXR_J2K)
    ds.BurnedInAnnotation = "NO"
    ds.StudyDescription = DATASET_LABEL
    for keyword, value in PHI_DESCRIPTORS.items():
        setattr(ds, keyword, value)
    # Free text the de-identification profile keeps: only the reader's allow-list stops it.
    ds.WindowCenterWidthExplanation = DATASET_LABEL.upper()
    ds.Manufacturer = "No Finding Imaging Ltd"
    path = tmp_path / "labelled.dcm"
    ds.save_as(path)
    _, outcomes = import_files([path])
    assert [o.status for o in outcomes] == ["imported"], outcomes
    return Study.objects.get(study_instance_uid=outcomes[0].study_instance_uid)


@pytest.fixture
def assigned(labelled_study: Study, coordinator: AbstractUser, reader: AbstractUser) -> Assignment:
    """alice is assigned the labelled study in an open reader study."""
    Report.objects.create(
        study=labelled_study,
        kind=Report.Kind.ORIGINAL,
        findings="Heart size normal. Lungs clear.",
        impression="No acute disease.",
    )
    Report.objects.create(
        study=labelled_study,
        kind=Report.Kind.AI,
        findings="The lungs are clear.",
        impression="Normal chest.",
    )
    study = build_study(coordinator=coordinator, readers=[reader], imaging=[labelled_study])
    return Assignment.objects.get(reader_study=study, reader=reader)


def _urls(study: Study) -> dict[str, str]:
    instance = Instance.objects.select_related("series").get(series__study=study)
    st, se, sop = (
        study.study_instance_uid,
        instance.series.series_instance_uid,
        instance.sop_instance_uid,
    )
    return {
        "study_metadata": f"/dicomweb/studies/{st}/metadata",
        "series_metadata": f"/dicomweb/studies/{st}/series/{se}/metadata",
        "instance_metadata": f"/dicomweb/studies/{st}/series/{se}/instances/{sop}/metadata",
        "qido_studies": "/dicomweb/studies",
        "qido_series": f"/dicomweb/studies/{st}/series",
        "qido_instances": f"/dicomweb/studies/{st}/series/{se}/instances",
        "qido_all_series": "/dicomweb/series?includefield=all",
        "qido_all_instances": "/dicomweb/instances?includefield=all",
        "qido_study_instances": f"/dicomweb/studies/{st}/instances?includefield=all",
        "qido_studies_all": "/dicomweb/studies?includefield=all",
        "retrieve_study": f"/dicomweb/studies/{st}",
        "retrieve_series": f"/dicomweb/studies/{st}/series/{se}",
        "retrieve_instance": f"/dicomweb/studies/{st}/series/{se}/instances/{sop}",
        "wado_uri": f"/dicomweb/wado?requestType=WADO&studyUID={st}&seriesUID={se}&objectUID={sop}",
        "frames": f"/dicomweb/studies/{st}/series/{se}/instances/{sop}/frames/1",
        "first_frames": f"/dicomweb/studies/{st}/series/{se}/first-frames?instances={sop}",
    }


def _get(client: APIClient, name: str, url: str):  # type: ignore[no-untyped-def]
    if name.startswith(("retrieve", "wado")):
        accept = DICOM_ANY if name.startswith("retrieve") else "application/dicom"
    elif name.endswith("frames"):
        accept = OCTET_ANY
    else:
        accept = "application/dicom+json"
    response = client.get(url, HTTP_ACCEPT=accept)
    assert response.status_code == 200, (name, response.status_code)
    return response


def _body(response) -> bytes:  # type: ignore[no-untyped-def]
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return bytes(response.content)


def _dicom_parts(response) -> list[pydicom.Dataset]:  # type: ignore[no-untyped-def]
    body = _body(response)
    if response["Content-Type"] == "application/dicom":
        return [pydicom.dcmread(io.BytesIO(body))]
    parts = _split_multipart(response["Content-Type"], body)
    return [pydicom.dcmread(io.BytesIO(content)) for _, content in parts]


def _assert_no_text(body: bytes, where: str) -> None:
    lowered = body.lower()
    assert DATASET_LABEL.lower().encode() not in lowered, where
    for fragment in PHI_FRAGMENTS:
        assert fragment.lower().encode() not in lowered, (where, fragment)


def test_a_reader_receives_no_descriptor_label_or_phi_on_any_dicomweb_path(
    assigned: Assignment, labelled_study: Study, reader: AbstractUser, api_client_for: ClientFor
) -> None:
    client = api_client_for(reader)
    for name, url in _urls(labelled_study).items():
        body = _body(_get(client, name, url))
        _assert_no_text(body, name)
        if "metadata" in name or name.startswith("qido"):
            for tag, keyword in TEXT_TAGS.items():
                assert f'"{tag}"'.encode() not in body, (name, keyword)


def test_a_readers_metadata_keeps_what_display_needs(
    assigned: Assignment, labelled_study: Study, reader: AbstractUser, api_client_for: ClientFor
) -> None:
    urls = _urls(labelled_study)
    (header,) = _get(api_client_for(reader), "m", urls["series_metadata"]).json()
    keywords = {pydicom.datadict.keyword_for_tag(int(tag, 16)) for tag in header}
    keywords.discard("")
    # Pixel Data is named only by its BulkDataURI: the pixels the reader may see anyway.
    assert set(header["7FE00010"]) == {"vr", "BulkDataURI"}
    keywords.discard("PixelData")
    assert keywords <= READER_VISIBLE_KEYWORDS
    for needed in (
        "Modality",
        "ViewPosition",
        "BodyPartExamined",
        "Rows",
        "Columns",
        "BitsAllocated",
        "BitsStored",
        "PhotometricInterpretation",
        "SOPInstanceUID",
        "SeriesInstanceUID",
        "StudyInstanceUID",
        "AvailableTransferSyntaxUID",
    ):
        assert needed in keywords, needed
    assert header["00185101"]["Value"] == ["PA"]


def test_a_coordinator_keeps_the_cleaned_de_identified_header(
    assigned: Assignment,
    labelled_study: Study,
    coordinator: AbstractUser,
    api_client_for: ClientFor,
) -> None:
    client = api_client_for(coordinator)
    urls = _urls(labelled_study)
    (header,) = _get(client, "m", urls["instance_metadata"]).json()
    assert header["00081030"]["Value"] == [DATASET_LABEL]  # a label is not PHI: staff keep it
    assert header["00281055"]["Value"] == [DATASET_LABEL.upper()]
    assert header["00400254"]["Value"] == ["CHEST PA"]  # the name is cleaned out
    assert "0008103E" not in header  # nothing but PHI: dropped
    assert "00181030" not in header
    body = _body(_get(client, "m", urls["instance_metadata"]))
    for fragment in PHI_FRAGMENTS:
        assert fragment.lower().encode() not in body.lower(), fragment
    studies = _get(client, "q", urls["qido_studies"]).json()
    assert studies[0]["00081030"]["Value"] == [DATASET_LABEL]
    # The stored file keeps the full de-identified header for staff.
    (stored,) = _dicom_parts(_get(client, "retrieve_instance", urls["retrieve_instance"]))
    assert stored.StudyDescription == DATASET_LABEL


def test_a_reader_retrieves_rebuilt_instances_with_the_same_pixels(
    assigned: Assignment,
    labelled_study: Study,
    reader: AbstractUser,
    coordinator: AbstractUser,
    api_client_for: ClientFor,
) -> None:
    urls = _urls(labelled_study)
    (staff_copy,) = _dicom_parts(
        _get(api_client_for(coordinator), "retrieve_instance", urls["retrieve_instance"])
    )
    client = api_client_for(reader)
    for name in ("retrieve_study", "retrieve_series", "retrieve_instance", "wado_uri"):
        (rebuilt,) = _dicom_parts(_get(client, name, urls[name]))
        kept = {elem.keyword for elem in rebuilt} - {"PixelData"}
        assert kept <= READER_VISIBLE_KEYWORDS, (name, kept - READER_VISIBLE_KEYWORDS)
        assert rebuilt.file_meta.TransferSyntaxUID == staff_copy.file_meta.TransferSyntaxUID
        assert rebuilt.SOPInstanceUID == staff_copy.SOPInstanceUID
        assert rebuilt.PixelData == staff_copy.PixelData
        assert np.array_equal(rebuilt.pixel_array, staff_copy.pixel_array)


def test_a_reader_cannot_match_on_what_they_may_not_see(
    assigned: Assignment, labelled_study: Study, reader: AbstractUser, api_client_for: ClientFor
) -> None:
    client = api_client_for(reader)
    st = labelled_study.study_instance_uid
    # A match key is an oracle: "No*" answering the study and "Pneumonia" answering nothing
    # would tell the label. For readers such keys are ignored and reported as unsupported.
    for query in ("StudyDescription=No*", "StudyDescription=Pneumonia", "StudyDate=19000101"):
        response = client.get(f"/dicomweb/studies?{query}", HTTP_ACCEPT="application/dicom+json")
        assert response.status_code == 200
        assert [r["0020000D"]["Value"][0] for r in response.json()] == [st], query
        assert "not supported for matching" in response["Warning"]
    response = client.get(
        f"/dicomweb/studies/{st}/series?SeriesDescription=x*", HTTP_ACCEPT="application/dicom+json"
    )
    assert len(response.json()) == 1
    # Keys on what readers do see still match.
    response = client.get(
        "/dicomweb/studies?ModalitiesInStudy=CT", HTTP_ACCEPT="application/dicom+json"
    )
    assert response.json() == []


def test_a_coordinators_cached_metadata_is_never_confirmed_to_a_reader(
    assigned: Assignment,
    labelled_study: Study,
    reader: AbstractUser,
    coordinator: AbstractUser,
    api_client_for: ClientFor,
) -> None:
    url = _urls(labelled_study)["study_metadata"]
    staff = _get(api_client_for(coordinator), "m", url)
    response = api_client_for(reader).get(
        url, HTTP_ACCEPT="application/dicom+json", HTTP_IF_NONE_MATCH=staff["ETag"]
    )
    assert response.status_code == 200  # not 304: the browser must not reuse carol's copy
    assert response["ETag"] != staff["ETag"]
    assert DATASET_LABEL.encode() not in response.content
    again = api_client_for(reader).get(
        url, HTTP_ACCEPT="application/dicom+json", HTTP_IF_NONE_MATCH=response["ETag"]
    )
    assert again.status_code == 304


def test_a_reader_who_also_coordinates_gets_the_full_header(
    assigned: Assignment, labelled_study: Study, reader: AbstractUser, api_client_for: ClientFor
) -> None:
    from django.contrib.auth.models import Group

    reader.groups.add(Group.objects.get_or_create(name=Role.COORDINATOR.value)[0])
    url = _urls(labelled_study)["study_metadata"]
    (header,) = _get(api_client_for(reader), "m", url).json()
    assert header["00081030"]["Value"] == [DATASET_LABEL]


def test_the_reading_page_and_its_viewer_data_carry_no_descriptor(
    assigned: Assignment, reader: AbstractUser
) -> None:
    client = Client()
    client.force_login(reader)
    response = client.get(f"/studies/read/{assigned.public_id}/")
    assert response.status_code == 200
    page = response.content
    assert b"data-viewer" in page
    _assert_no_text(page, "reading page")
    # What the viewer draws over the images comes from the series' QIDO row and metadata
    # (modality, series number, window, zoom, slice): both are cut for readers above.


def test_reader_json_filters_at_every_depth() -> None:
    header = {
        "00081030": {"vr": "LO", "Value": [DATASET_LABEL]},
        "00280010": {"vr": "US", "Value": [512]},
        "52009229": {
            "vr": "SQ",
            "Value": [
                {
                    "00289110": {
                        "vr": "SQ",
                        "Value": [{"00280030": {"vr": "DS", "Value": [0.5, 0.5]}}],
                    },
                    "00209111": {  # Frame Content: labels and comments, never for readers
                        "vr": "SQ",
                        "Value": [{"00209453": {"vr": "LO", "Value": ["Jon Smyth"]}}],
                    },
                    "00209071": {"vr": "SQ", "Value": []},
                }
            ],
        },
    }
    assert reader_json(header) == {
        "00280010": {"vr": "US", "Value": [512]},
        "52009229": {
            "vr": "SQ",
            "Value": [
                {
                    "00289110": {
                        "vr": "SQ",
                        "Value": [{"00280030": {"vr": "DS", "Value": [0.5, 0.5]}}],
                    }
                }
            ],
        },
    }
    ds = pydicom.Dataset.from_json(header)
    kept = reader_dataset(ds)
    assert "StudyDescription" not in kept
    assert kept.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing == [
        0.5,
        0.5,
    ]
    assert "FrameContentSequence" not in kept.SharedFunctionalGroupsSequence[0]


@pytest.mark.parametrize("modality", ["CR", "DX"])
def test_a_secondary_capture_labelled_a_radiograph_is_quarantined_and_not_served(
    archive_dirs: Path,
    tmp_path: Path,
    coordinator: AbstractUser,
    reader: AbstractUser,
    api_client_for: ClientFor,
    modality: str,
) -> None:
    ds = pydicom.dcmread(CXR_JPEG)  # a secondary capture from a public chest collection
    ds.Modality = modality
    ds.BurnedInAnnotation = "NO"
    path = tmp_path / "sc.dcm"
    ds.save_as(path)
    _, outcomes = import_files([path])
    assert [o.status for o in outcomes] == ["quarantined"], outcomes
    assert outcomes[0].reason.startswith("secondary capture")
    study = Study.objects.get(study_instance_uid=outcomes[0].study_instance_uid)
    instance = Instance.objects.get(series__study=study)
    assert instance.status == Instance.Status.QUARANTINED
    Report.objects.create(study=study, kind=Report.Kind.ORIGINAL, findings="x", impression="y")
    Report.objects.create(study=study, kind=Report.Kind.AI, findings="z", impression="w")
    build_study(coordinator=coordinator, readers=[reader], imaging=[study])
    client = api_client_for(reader)
    urls = _urls(study)
    for name in ("study_metadata", "retrieve_instance", "frames", "first_frames"):
        assert client.get(urls[name], HTTP_ACCEPT="*/*").status_code == 404, name
    assert client.get(urls["qido_instances"], HTTP_ACCEPT="application/dicom+json").json() == []
