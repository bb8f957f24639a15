"""DICOMweb through Django's stack: who may see what, QIDO matching, WADO formats, STOW answers.

Studies are imported through the real pipeline. The live-server suite driving python
``dicomweb-client`` against the live server is in test_dicomweb_client.py.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import AbstractUser
from PIL import Image
from pydicom.uid import generate_uid
from rest_framework.test import APIClient

from reviewapp.imaging.dicomweb import qido
from reviewapp.imaging.dicomweb.media import NotAcceptableError, frame_media_type
from reviewapp.imaging.dicomweb.multipart import (
    BodyTooLargeError,
    MultipartError,
    multipart_to_files,
)
from reviewapp.imaging.ingest.services import instance_quarantine_approve
from reviewapp.imaging.models import Instance, Study
from tests.imaging.conftest import CT_FILES, CXR_J2K, CXR_JPEG, import_files

ClientFor = Callable[[AbstractUser | None], APIClient]
OCTET_ANY = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
EXPLICIT_LE = "1.2.840.10008.1.2.1"
J2K = "1.2.840.10008.1.2.4.91"  # the shared radiograph is lossy JPEG 2000


def _split_multipart(content_type: str, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """Parts of a multipart/related body as (headers, content): a strict reader, so the
    test fails if the framing Cornerstone relies on is off."""
    boundary = re.search(r"boundary=([^;]+)", content_type).group(1).strip('"')  # type: ignore[union-attr]
    assert body.startswith(f"--{boundary}\r\n".encode())
    assert body.endswith(f"\r\n--{boundary}--\r\n".encode())
    inner = body[len(f"--{boundary}\r\n") : -len(f"\r\n--{boundary}--\r\n")]
    parts = []
    for chunk in inner.split(f"\r\n--{boundary}\r\n".encode()):
        head, _, content = chunk.partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name] = value.strip()
        parts.append((headers, content))
    return parts


def _study_url(study: Study) -> str:
    return f"/dicomweb/studies/{study.study_instance_uid}"


def _instance_url(instance: Instance) -> str:
    return (
        f"/dicomweb/studies/{instance.series.study.study_instance_uid}/series/"
        f"{instance.series.series_instance_uid}/instances/{instance.sop_instance_uid}"
    )


def _ct_instances(study: Study) -> list[Instance]:
    return list(
        Instance.objects.filter(series__study=study)
        .select_related("series__study")
        .order_by("position", "instance_number")
    )


def _source_by_instance_number() -> dict[int, Path]:
    return {int(pydicom.dcmread(p, stop_before_pixels=True).InstanceNumber): p for p in CT_FILES}


@pytest.fixture
def cxr_studies(archive_dirs: Path, coordinator: AbstractUser) -> list[Study]:
    """The two radiographs (JPEG 2000, then JPEG baseline), imported and, where the import
    held them back for a burned-in annotation check, approved by carol as a person would."""
    _, outcomes = import_files([CXR_J2K, CXR_JPEG])
    for outcome in outcomes:
        assert outcome.status in ("imported", "quarantined"), outcome.reason
        instance = Instance.objects.get(sop_instance_uid=outcome.sop_instance_uid)
        if instance.status == Instance.Status.QUARANTINED:
            instance_quarantine_approve(instance=instance, reviewed_by=coordinator)
    return [Study.objects.get(study_instance_uid=o.study_instance_uid) for o in outcomes]


# --- who may see what ----------------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_requests_get_401_with_a_token_challenge(
    imported_ct_study: Study, api_client_for: ClientFor
) -> None:
    instance = _ct_instances(imported_ct_study)[0]
    client = api_client_for(None)
    for url in (
        "/dicomweb/studies",
        f"{_study_url(imported_ct_study)}/metadata",
        f"{_instance_url(instance)}/frames/1",
        f"{_instance_url(instance)}",
        "/dicomweb/wado?requestType=WADO&studyUID=1&seriesUID=2&objectUID=3",
    ):
        response = client.get(url)
        assert response.status_code == 401, url
        assert response["WWW-Authenticate"] == "Token"
    assert (
        client.post("/dicomweb/studies", b"", content_type="multipart/related").status_code == 401
    )


@pytest.mark.django_db
def test_a_reader_outside_the_study_gets_404_not_403(
    imported_ct_study: Study,
    reader: AbstractUser,
    outsider: AbstractUser,
    api_client_for: ClientFor,
) -> None:
    instance = _ct_instances(imported_ct_study)[0]
    for user in (reader, outsider):
        client = api_client_for(user)
        assert client.get("/dicomweb/studies").json() == []
        for url in (
            f"{_study_url(imported_ct_study)}/metadata",
            f"{_instance_url(instance)}/metadata",
            f"{_instance_url(instance)}/frames/1",
            _instance_url(instance),
            f"/dicomweb/wado?requestType=WADO&studyUID={imported_ct_study.study_instance_uid}"
            f"&seriesUID={instance.series.series_instance_uid}"
            f"&objectUID={instance.sop_instance_uid}",
        ):
            assert client.get(url, HTTP_ACCEPT="*/*").status_code == 404, (user, url)
        series = client.get(f"{_study_url(imported_ct_study)}/series")
        assert series.status_code == 200
        assert series.json() == []


@pytest.mark.django_db
def test_only_coordinators_and_admins_may_store(
    archive_dirs: Path,
    reader: AbstractUser,
    analyst: AbstractUser,
    admin_user: AbstractUser,
    api_client_for: ClientFor,
) -> None:
    body, content_type = _stow_body([CT_FILES[0].read_bytes()])
    for user in (reader, analyst):
        response = api_client_for(user).post("/dicomweb/studies", body, content_type=content_type)
        assert response.status_code == 403
    assert Instance.objects.count() == 0
    response = api_client_for(admin_user).post("/dicomweb/studies", body, content_type=content_type)
    assert response.status_code == 200


# --- QIDO-RS --------------------------------------------------------------------------------


@pytest.fixture
def three_studies(imported_ct_study: Study, cxr_studies: list[Study]) -> list[Study]:
    return [imported_ct_study, *cxr_studies]


def _uids(response: object, tag: str = "0020000D") -> list[str]:
    return [item[tag]["Value"][0] for item in response.json()]  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_study_search_matches_the_usual_keys(
    three_studies: list[Study], coordinator: AbstractUser, api_client_for: ClientFor
) -> None:
    ct, j2k, jpeg = three_studies
    client = api_client_for(coordinator)
    everything = client.get("/dicomweb/studies")
    assert everything.status_code == 200
    assert everything["Content-Type"] == "application/dicom+json"
    assert sorted(_uids(everything)) == sorted(s.study_instance_uid for s in three_studies)

    by_uid = client.get("/dicomweb/studies", {"StudyInstanceUID": ct.study_instance_uid})
    (found,) = by_uid.json()
    assert found["0020000D"]["Value"] == [ct.study_instance_uid]
    assert found["00201206"]["Value"] == [1]
    assert found["00201208"]["Value"] == [30]
    assert found["00081190"]["Value"][0].endswith(f"/dicomweb/studies/{ct.study_instance_uid}")

    by_tag = client.get(
        "/dicomweb/studies", {"0020000D": f"{j2k.study_instance_uid},{jpeg.study_instance_uid}"}
    )
    assert sorted(_uids(by_tag)) == sorted([j2k.study_instance_uid, jpeg.study_instance_uid])

    assert _uids(client.get("/dicomweb/studies", {"ModalitiesInStudy": "CT"})) == [
        ct.study_instance_uid
    ]
    assert ct.patient_pseudonym
    wildcard = ct.patient_pseudonym[:3] + "*"
    assert ct.study_instance_uid in _uids(client.get("/dicomweb/studies", {"PatientID": wildcard}))
    assert _uids(client.get("/dicomweb/studies", {"PatientID": "no-such-patient"})) == []

    dated = [s for s in three_studies if s.study_date]
    assert dated, "the samples carry study dates"
    day = dated[0].study_date.strftime("%Y%m%d")  # type: ignore[union-attr]
    in_range = _uids(client.get("/dicomweb/studies", {"StudyDate": f"{day}-{day}"}))
    assert dated[0].study_instance_uid in in_range
    assert set(in_range) == {
        s.study_instance_uid for s in dated if s.study_date == dated[0].study_date
    }


@pytest.mark.django_db
def test_study_search_pages_with_limit_and_offset(
    three_studies: list[Study], coordinator: AbstractUser, api_client_for: ClientFor
) -> None:
    client = api_client_for(coordinator)
    full = _uids(client.get("/dicomweb/studies"))
    pages = [_uids(client.get("/dicomweb/studies", {"limit": 2, "offset": o})) for o in (0, 2, 4)]
    assert pages == [full[:2], full[2:], []]


@pytest.mark.django_db
def test_bad_and_unsupported_match_keys_are_named(
    three_studies: list[Study], coordinator: AbstractUser, api_client_for: ClientFor
) -> None:
    client = api_client_for(coordinator)
    bad = client.get("/dicomweb/studies", {"NotAKeyword": "x"})
    assert bad.status_code == 400
    assert "NotAKeyword" in str(bad.json())
    assert client.get("/dicomweb/studies", {"StudyDate": "yesterday"}).status_code == 400
    assert client.get("/dicomweb/studies", {"limit": "-1"}).status_code == 400
    ignored = client.get("/dicomweb/studies", {"OperatorsName": "X*"})
    assert ignored.status_code == 200
    assert "OperatorsName" in ignored["Warning"]
    assert client.get("/dicomweb/studies", HTTP_ACCEPT="application/dicom+xml").status_code == 406
    for params in (
        {"includefield": "NotAKeyword"},
        {"fuzzymatching": "maybe"},
        {"StudyTime": "noon"},
        {"StudyTime": "25"},
    ):
        refused = client.get("/dicomweb/studies", params)
        assert refused.status_code == 400, params
        assert next(iter(params.values())) in refused.json()["detail"]


@pytest.mark.django_db
def test_series_and_instance_search(
    imported_ct_study: Study, coordinator: AbstractUser, api_client_for: ClientFor
) -> None:
    client = api_client_for(coordinator)
    study_url = _study_url(imported_ct_study)
    (series,) = client.get(f"{study_url}/series").json()
    series_uid = series["0020000E"]["Value"][0]
    assert series["00080060"]["Value"] == ["CT"]
    assert series["00201209"]["Value"] == [30]
    assert client.get(f"{study_url}/series", {"Modality": "MR"}).json() == []

    instances_url = f"{study_url}/series/{series_uid}/instances"
    everything = client.get(instances_url).json()
    assert len(everything) == 30
    ordered = [i.sop_instance_uid for i in _ct_instances(imported_ct_study)]
    assert [i["00080018"]["Value"][0] for i in everything] == ordered
    page = client.get(instances_url, {"limit": 10, "offset": 25}).json()
    assert [i["00080018"]["Value"][0] for i in page] == ordered[25:]
    one = client.get(instances_url, {"SOPInstanceUID": ordered[3]}).json()
    assert [i["00080018"]["Value"][0] for i in one] == [ordered[3]]
    assert one[0]["00083002"]["Value"] == [EXPLICIT_LE]


def _value(result: dict, tag: str) -> object:
    return result[tag]["Value"][0] if "Value" in result[tag] else None


@pytest.mark.django_db
def test_every_ps3_18_search_resource_answers_with_the_levels_above(
    three_studies: list[Study], coordinator: AbstractUser, api_client_for: ClientFor
) -> None:
    ct = three_studies[0]
    client = api_client_for(coordinator)
    all_series = client.get("/dicomweb/series")
    assert all_series.status_code == 200
    assert len(all_series.json()) == 3
    (ct_series,) = client.get("/dicomweb/series", {"Modality": "CT"}).json()
    # Across studies each series carries its study, so a client can group them.
    assert _value(ct_series, "0020000D") == ct.study_instance_uid
    assert _value(ct_series, "00100020") == ct.patient_pseudonym
    assert _value(ct_series, "00201209") == 30
    assert _value(ct_series, "00081190").endswith(
        f"/studies/{ct.study_instance_uid}/series/{_value(ct_series, '0020000E')}"
    )
    by_study_key = client.get("/dicomweb/series", {"PatientID": ct.patient_pseudonym}).json()
    assert [_value(s, "0020000E") for s in by_study_key] == [_value(ct_series, "0020000E")]

    ordered = [i.sop_instance_uid for i in _ct_instances(ct)]
    of_study = client.get(f"{_study_url(ct)}/instances")
    assert of_study.status_code == 200
    assert [_value(i, "00080018") for i in of_study.json()] == ordered
    first = of_study.json()[0]
    assert _value(first, "00080060") == "CT"  # the series level comes along
    assert _value(first, "00080056") == "ONLINE"
    assert _value(first, "00081190").endswith(
        f"/series/{_value(first, '0020000E')}/instances/{ordered[0]}"
    )
    everywhere = client.get("/dicomweb/instances", {"limit": 1000})
    assert len(everywhere.json()) == 32
    ct_only = client.get("/dicomweb/instances", {"ModalitiesInStudy": "CT", "InstanceNumber": 1})
    (one,) = ct_only.json()
    assert _value(one, "0020000D") == ct.study_instance_uid
    assert _value(one, "00100020") == ct.patient_pseudonym


@pytest.mark.django_db
def test_study_results_carry_the_pseudonym_as_patient_name_and_match_on_it(
    three_studies: list[Study], coordinator: AbstractUser, api_client_for: ClientFor
) -> None:
    ct = three_studies[0]
    client = api_client_for(coordinator)
    (found,) = client.get("/dicomweb/studies", {"StudyInstanceUID": ct.study_instance_uid}).json()
    assert found["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": ct.patient_pseudonym}]}
    assert _value(found, "00080056") == "ONLINE"
    # Required return attributes without a value are present, empty (type 2).
    for tag in ("00080090", "00100030", "00200010"):
        assert tag in found, tag
    pattern = ct.patient_pseudonym[:4].lower() + "*"
    assert ct.study_instance_uid in _uids(client.get("/dicomweb/studies", {"PatientName": pattern}))
    assert _uids(client.get("/dicomweb/studies", {"00100010": "Nobody^At*"})) == []


@pytest.mark.django_db
def test_study_time_and_referring_physician_are_matched(
    three_studies: list[Study], coordinator: AbstractUser, api_client_for: ClientFor
) -> None:
    client = api_client_for(coordinator)
    timed = [s for s in three_studies if len(s.study_time) >= 4]
    assert timed, "the samples carry study times"
    study = timed[0]
    hhmm = study.study_time[:4]
    for value in (hhmm, f"{hhmm}-{hhmm}", f"{study.study_time[:2]}-", f"-{hhmm}"):
        found = _uids(client.get("/dicomweb/studies", {"StudyTime": value}))
        assert study.study_instance_uid in found, value
    later = f"{int(hhmm[:2]) + 1:02d}00-" if hhmm[:2] != "23" else "2359-2359"
    assert study.study_instance_uid not in _uids(
        client.get("/dicomweb/studies", {"StudyTime": later})
    )
    # De-identification empties the referring physician: nothing has a name to match.
    assert _uids(client.get("/dicomweb/studies", {"ReferringPhysicianName": "House*"})) == []
    everything = client.get("/dicomweb/studies", {"ReferringPhysicianName": "*"})
    assert len(everything.json()) == 3
    assert "Warning" not in everything


@pytest.mark.django_db
def test_includefield_adds_header_attributes_and_all_adds_the_level(
    three_studies: list[Study], coordinator: AbstractUser, api_client_for: ClientFor
) -> None:
    ct = three_studies[0]
    client = api_client_for(coordinator)
    header = _ct_instances(ct)[0].dicom_json
    query = {"StudyInstanceUID": ct.study_instance_uid}
    (plain,) = client.get("/dicomweb/studies", query).json()
    assert "00101010" not in plain  # PatientAge is not a default return attribute
    (asked,) = client.get(
        "/dicomweb/studies", {**query, "includefield": "PatientAge,00080070"}
    ).json()
    assert asked["00101010"] == header["00101010"]
    assert "00080070" in asked  # asked for, so returned (empty when there is no value)
    (everything,) = client.get("/dicomweb/studies", {**query, "includefield": "all"}).json()
    assert everything["00101010"] == header["00101010"]
    assert "00280010" not in everything  # Rows is an instance attribute, not the study's

    series_url = f"{_study_url(ct)}/series"
    (series,) = client.get(series_url, {"includefield": "all"}).json()
    assert series["00200052"] == header["00200052"]  # FrameOfReferenceUID
    instances_url = f"{series_url}/{_value(series, '0020000E')}/instances"
    first = client.get(instances_url, {"includefield": "all", "limit": 1}).json()[0]
    assert first["00280030"] == header["00280030"]  # PixelSpacing: the whole header
    repeated = client.get(
        instances_url, {"includefield": ["00280030", "ImagePositionPatient"], "limit": 1}
    ).json()[0]
    assert "00280030" in repeated
    assert "00200032" in repeated


@pytest.mark.django_db
def test_fuzzymatching_and_a_page_cut_by_the_server_are_warned(
    three_studies: list[Study],
    coordinator: AbstractUser,
    api_client_for: ClientFor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = api_client_for(coordinator)
    fuzzy = client.get("/dicomweb/studies", {"fuzzymatching": "true"})
    assert len(fuzzy.json()) == 3
    assert "fuzzymatching parameter is not supported" in fuzzy["Warning"]
    assert "Warning" not in client.get("/dicomweb/studies", {"fuzzymatching": "false"})

    monkeypatch.setattr(qido, "MAX_LIMIT", 2)
    cut = client.get("/dicomweb/studies")
    assert len(cut.json()) == 2
    assert "Additional results can be requested" in cut["Warning"]
    assert "Warning" not in client.get("/dicomweb/studies", {"offset": 2})
    # A page the client asked for is no cut of the server's.
    assert "Warning" not in client.get("/dicomweb/studies", {"limit": 1})
    both = client.get("/dicomweb/studies", {"fuzzymatching": "true", "OperatorsName": "x"})
    assert both["Warning"].count("299 radreview") == 3


# --- WADO-RS metadata -----------------------------------------------------------------------


@pytest.mark.django_db
def test_metadata_has_an_etag_and_answers_304_when_unchanged(
    imported_ct_study: Study, coordinator: AbstractUser, api_client_for: ClientFor
) -> None:
    client = api_client_for(coordinator)
    instance = _ct_instances(imported_ct_study)[0]
    series_uid = instance.series.series_instance_uid
    url = f"{_study_url(imported_ct_study)}/series/{series_uid}/metadata"
    first = client.get(url)
    assert first.status_code == 200
    assert first["Content-Type"] == "application/dicom+json"
    assert first["Cache-Control"] == "private, no-cache"
    items = first.json()
    assert len(items) == 30
    # Pixel Data only as its BulkDataURI (PS3.18 F.2.6), which answers every frame.
    bulk_uris = [item["7FE00010"]["BulkDataURI"] for item in items]
    assert all(set(item["7FE00010"]) == {"vr", "BulkDataURI"} for item in items)
    by_uid = {i.sop_instance_uid: i for i in _ct_instances(imported_ct_study)}
    first_uid = items[0]["00080018"]["Value"][0]
    assert bulk_uris[0] == (
        f"http://testserver{_instance_url(by_uid[first_uid])}/bulkdata/7FE00010"
    )
    bulk = client.get(bulk_uris[0], HTTP_ACCEPT=OCTET_ANY)
    assert bulk.status_code == 200
    ((_, pixels),) = _split_multipart(bulk["Content-Type"], bulk.content)
    assert pixels == pydicom.dcmread(by_uid[first_uid].file.path).PixelData
    other = client.get(bulk_uris[0].replace("7FE00010", "60003000"), HTTP_ACCEPT=OCTET_ANY)
    assert other.status_code == 404
    assert "only Pixel Data" in other.json()["detail"]
    assert {item["00080018"]["Value"][0] for item in items} == {
        i.sop_instance_uid for i in _ct_instances(imported_ct_study)
    }
    etag = first["ETag"]
    again = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""
    # A re-indexed instance changes the answer, so the old ETag must stop matching.
    Instance.objects.filter(pk=instance.pk).update(dicom_json={**instance.dicom_json})
    instance.save(update_fields=["updated_at"])
    changed = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag


@pytest.mark.django_db
def test_metadata_leaves_out_zero_pixel_spacing(
    cxr_studies: list[Study], coordinator: AbstractUser, api_client_for: ClientFor
) -> None:
    j2k_study = cxr_studies[0]
    (item,) = api_client_for(coordinator).get(f"{_study_url(j2k_study)}/metadata").json()
    assert item["00083002"]["Value"] == [J2K]
    assert "00280030" not in item


# --- WADO-RS frames -------------------------------------------------------------------------


@pytest.mark.django_db
def test_ct_frames_are_the_source_pixels_in_the_multipart_cornerstone_reads(
    imported_ct_study: Study, coordinator: AbstractUser, api_client_for: ClientFor
) -> None:
    client = api_client_for(coordinator)
    sources = _source_by_instance_number()
    for instance in _ct_instances(imported_ct_study)[:5]:
        response = client.get(f"{_instance_url(instance)}/frames/1", HTTP_ACCEPT=OCTET_ANY)
        assert response.status_code == 200
        content_type = response["Content-Type"]
        assert content_type.startswith('multipart/related; type="application/octet-stream"')
        assert f"transfer-syntax={EXPLICIT_LE}" in content_type
        assert response["Cache-Control"] == "private, max-age=31536000, immutable"
        body = response.content
        assert b"\r\nContent-Type: application/octet-stream; transfer-syntax=" in body
        ((headers, frame),) = _split_multipart(content_type, body)
        assert headers["Content-Type"] == f"application/octet-stream; transfer-syntax={EXPLICIT_LE}"
        source = pydicom.dcmread(sources[int(instance.instance_number or 0)])
        pixels = np.frombuffer(frame, dtype=source.pixel_array.dtype).reshape(
            source.Rows, source.Columns
        )
        assert np.array_equal(pixels, source.pixel_array)


@pytest.mark.django_db
def test_several_frame_numbers_come_back_in_the_order_asked(
    archive_dirs: Path, coordinator: AbstractUser, api_client_for: ClientFor, tmp_path: Path
) -> None:
    pixel_data = [pydicom.dcmread(p).PixelData for p in CT_FILES[:3]]
    multi = pydicom.dcmread(CT_FILES[0])
    multi.NumberOfFrames = 3
    multi.SOPInstanceUID = generate_uid()
    multi.PixelData = b"".join(pixel_data)
    path = tmp_path / "multiframe.dcm"
    multi.save_as(path)
    _, (outcome,) = import_files([path])
    assert outcome.status == "imported", outcome.reason
    instance = Instance.objects.select_related("series__study").get(
        sop_instance_uid=outcome.sop_instance_uid
    )
    response = api_client_for(coordinator).get(
        f"{_instance_url(instance)}/frames/3,1,2", HTTP_ACCEPT=OCTET_ANY
    )
    assert response.status_code == 200
    frames = [
        content for _, content in _split_multipart(response["Content-Type"], response.content)
    ]
    assert frames == [pixel_data[2], pixel_data[0], pixel_data[1]]


@pytest.mark.django_db
def test_compressed_frames_come_as_stored_or_decoded_as_the_accept_header_asks(
    cxr_studies: list[Study], coordinator: AbstractUser, api_client_for: ClientFor
) -> None:
    client = api_client_for(coordinator)
    j2k_instance = Instance.objects.select_related("series__study").get(
        series__study=cxr_studies[0]
    )
    url = f"{_instance_url(j2k_instance)}/frames/1"
    source = pydicom.dcmread(CXR_J2K).pixel_array
    # PS3.18: octet-stream without a transfer syntax (or naming explicit VR little endian)
    # asks for uncompressed frames: the codestream decoded, as pydicom decodes the source.
    for accept in (
        f'multipart/related; type="application/octet-stream"; transfer-syntax={EXPLICIT_LE}',
        'multipart/related; type="application/octet-stream"',
    ):
        decoded = client.get(url, HTTP_ACCEPT=accept)
        assert decoded.status_code == 200, accept
        assert f"transfer-syntax={EXPLICIT_LE}" in decoded["Content-Type"]
        ((_, frame),) = _split_multipart(decoded["Content-Type"], decoded.content)
        pixels = np.frombuffer(frame, dtype=source.dtype.newbyteorder("<")).reshape(source.shape)
        assert np.array_equal(pixels, source)
    # Re-encoding into another compressed syntax would lose or invent: refused, in words.
    refused = client.get(url, HTTP_ACCEPT='multipart/related; type="image/jpeg"')
    assert refused.status_code == 406
    assert J2K in refused.json()["detail"]
    as_stored = client.get(url, HTTP_ACCEPT=OCTET_ANY)
    assert as_stored.status_code == 200
    assert f"transfer-syntax={J2K}" in as_stored["Content-Type"]
    ((_, frame),) = _split_multipart(as_stored["Content-Type"], as_stored.content)
    assert frame.startswith(b"\xff\x4f\xff\x51")  # the whole J2K codestream, 11 fragments joined
    as_image = client.get(
        url, HTTP_ACCEPT=f'multipart/related; type="image/jp2"; transfer-syntax={J2K}'
    )
    assert as_image.status_code == 200
    assert as_image["Content-Type"].startswith('multipart/related; type="image/jp2"')


@pytest.mark.django_db
def test_frame_numbers_are_checked(
    imported_ct_study: Study, coordinator: AbstractUser, api_client_for: ClientFor
) -> None:
    client = api_client_for(coordinator)
    base = f"{_instance_url(_ct_instances(imported_ct_study)[0])}/frames"
    missing = client.get(f"{base}/2", HTTP_ACCEPT=OCTET_ANY)
    assert missing.status_code == 404
    assert "has 1 frame" in missing.json()["detail"]
    assert client.get(f"{base}/0", HTTP_ACCEPT=OCTET_ANY).status_code == 400
    assert client.get(f"{base}/1,x", HTTP_ACCEPT=OCTET_ANY).status_code == 404  # not a route


@pytest.mark.django_db
def test_first_frames_of_several_slices_come_back_in_one_answer_each_part_named_and_sized(
    imported_ct_study: Study, coordinator: AbstractUser, api_client_for: ClientFor
) -> None:
    client = api_client_for(coordinator)
    slices = _ct_instances(imported_ct_study)
    asked = [slices[4], slices[0], slices[7]]
    series_url = _instance_url(asked[0]).rsplit("/instances/", 1)[0]
    response = client.get(
        f"{series_url}/first-frames?instances=" + ",".join(i.sop_instance_uid for i in asked),
        HTTP_ACCEPT=OCTET_ANY,
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, max-age=31536000, immutable"
    assert f"transfer-syntax={EXPLICIT_LE}" in response["Content-Type"]
    parts = _split_multipart(response["Content-Type"], response.content)
    assert len(parts) == 3
    for instance, (headers, frame) in zip(asked, parts, strict=True):
        assert headers["Content-Location"] == f"{_instance_url(instance)}/frames/1"
        assert int(headers["Content-Length"]) == len(frame)
        one = client.get(f"{_instance_url(instance)}/frames/1", HTTP_ACCEPT=OCTET_ANY)
        ((single_headers, single),) = _split_multipart(one["Content-Type"], one.content)
        assert frame == single
        assert headers["Content-Type"] == single_headers["Content-Type"]


@pytest.mark.django_db
def test_first_frames_requests_are_checked_and_say_what_is_wrong(
    imported_ct_study: Study,
    cxr_studies: list[Study],
    coordinator: AbstractUser,
    reader: AbstractUser,
    api_client_for: ClientFor,
) -> None:
    slices = _ct_instances(imported_ct_study)
    series_url = _instance_url(slices[0]).rsplit("/instances/", 1)[0]
    uids = [i.sop_instance_uid for i in slices]
    carol = api_client_for(coordinator)

    def get(client: APIClient, query: str, accept: str = OCTET_ANY):  # type: ignore[no-untyped-def]
        return client.get(f"{series_url}/first-frames{query}", HTTP_ACCEPT=accept)

    for query, says in (
        ("", "name the instances"),
        ("?instances=", "name the instances"),
        ("?instances=1.2.x", "is not a SOP Instance UID"),
        (f"?instances={uids[0]},{uids[0]}", "listed twice"),
        ("?instances=" + ",".join(f"1.2.{n}" for n in range(51)), "at most 50"),
    ):
        refused = get(carol, query)
        assert refused.status_code == 400, query
        assert says in refused.json()["detail"], query
    # A slice of another series (the radiograph's) or an unknown UID: 404 naming it.
    other = Instance.objects.filter(series__study=cxr_studies[0]).get().sop_instance_uid
    for stray in (other, "1.2.3.4"):
        missing = get(carol, f"?instances={uids[0]},{stray}")
        assert missing.status_code == 404
        assert stray in missing.json()["detail"]
    # A reader outside the study sees nothing; anonymous is asked to log in; no transcoding.
    assert get(api_client_for(reader), f"?instances={uids[0]}").status_code == 404
    assert get(api_client_for(None), f"?instances={uids[0]}").status_code == 401
    refused = get(carol, f"?instances={uids[0]}", 'multipart/related; type="image/jpeg"')
    assert refused.status_code == 406


# --- WADO-RS instances and WADO-URI -----------------------------------------------------------


@pytest.mark.django_db
def test_series_retrieval_streams_every_stored_file(
    imported_ct_study: Study, coordinator: AbstractUser, api_client_for: ClientFor
) -> None:
    instances = _ct_instances(imported_ct_study)
    url = f"{_study_url(imported_ct_study)}/series/{instances[0].series.series_instance_uid}"
    response = api_client_for(coordinator).get(
        url, HTTP_ACCEPT='multipart/related; type="application/dicom"; transfer-syntax=*'
    )
    assert response.status_code == 200
    body = b"".join(response.streaming_content)  # type: ignore[arg-type]
    parts = _split_multipart(response["Content-Type"], body)
    assert len(parts) == 30
    stored = {i.sop_instance_uid: i for i in instances}
    for headers, content in parts:
        assert headers["Content-Type"] == f"application/dicom; transfer-syntax={EXPLICIT_LE}"
        ds = pydicom.dcmread(io.BytesIO(content))
        with stored[ds.SOPInstanceUID].file.open("rb") as handle:
            assert content == handle.read()


def _dicom_parts(response) -> list[tuple[dict[str, str], pydicom.Dataset]]:  # type: ignore[no-untyped-def]
    body = b"".join(response.streaming_content)
    return [
        (headers, pydicom.dcmread(io.BytesIO(content)))
        for headers, content in _split_multipart(response["Content-Type"], body)
    ]


IMPLICIT_LE = "1.2.840.10008.1.2"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"


@pytest.mark.django_db
def test_instance_retrieval_decodes_a_compressed_instance_when_asked_and_never_recompresses(
    cxr_studies: list[Study], coordinator: AbstractUser, api_client_for: ClientFor
) -> None:
    instance = Instance.objects.select_related("series__study").get(series__study=cxr_studies[0])
    assert instance.transfer_syntax_uid == J2K
    source = pydicom.dcmread(CXR_J2K).pixel_array
    client = api_client_for(coordinator)
    # No transfer syntax named means explicit VR little endian (what dicomweb-client sends).
    for accept, syntax in (
        ('multipart/related; type="application/dicom"', EXPLICIT_LE),
        (
            f'multipart/related; type="application/dicom"; transfer-syntax={IMPLICIT_LE}',
            IMPLICIT_LE,
        ),
        ('multipart/related; type="application/dicom"; transfer-syntax=*', J2K),
    ):
        response = client.get(_instance_url(instance), HTTP_ACCEPT=accept)
        assert response.status_code == 200, accept
        ((headers, ds),) = _dicom_parts(response)
        assert headers["Content-Type"] == f"application/dicom; transfer-syntax={syntax}"
        assert ds.file_meta.TransferSyntaxUID == syntax
        assert ds.SOPInstanceUID == instance.sop_instance_uid
        assert np.array_equal(ds.pixel_array, source), accept
    refused = client.get(
        _instance_url(instance),
        HTTP_ACCEPT=f'multipart/related; type="application/dicom"; transfer-syntax={JPEG_BASELINE}',
    )
    assert refused.status_code == 406
    assert "transfer-syntax=*" in refused.json()["detail"]


@pytest.mark.django_db
def test_an_implicit_vr_instance_is_served_in_explicit_vr_by_default(
    archive_dirs: Path, coordinator: AbstractUser, api_client_for: ClientFor, tmp_path: Path
) -> None:
    ds = pydicom.dcmread(CT_FILES[0])
    ds.file_meta.TransferSyntaxUID = IMPLICIT_LE
    path = tmp_path / "implicit.dcm"
    ds.save_as(path, implicit_vr=True, little_endian=True, enforce_file_format=True)
    _, (outcome,) = import_files([path])
    instance = Instance.objects.select_related("series__study").get(
        sop_instance_uid=outcome.sop_instance_uid
    )
    assert instance.transfer_syntax_uid == IMPLICIT_LE
    client = api_client_for(coordinator)
    response = client.get(
        _study_url(instance.series.study), HTTP_ACCEPT='multipart/related; type="application/dicom"'
    )
    assert response.status_code == 200
    ((headers, served),) = _dicom_parts(response)
    assert headers["Content-Type"] == f"application/dicom; transfer-syntax={EXPLICIT_LE}"
    assert served.file_meta.TransferSyntaxUID == EXPLICIT_LE
    assert not served.original_encoding[0]  # written explicit VR
    assert np.array_equal(served.pixel_array, pydicom.dcmread(CT_FILES[0]).pixel_array)
    as_stored = client.get(
        _study_url(instance.series.study),
        HTTP_ACCEPT=f'multipart/related; type="application/dicom"; transfer-syntax={IMPLICIT_LE}',
    )
    ((_, stored),) = _dicom_parts(as_stored)
    with instance.file.open("rb") as handle:
        assert stored.file_meta.TransferSyntaxUID == IMPLICIT_LE
        assert stored.PixelData == pydicom.dcmread(handle).PixelData


@pytest.mark.django_db
def test_rendered_and_thumbnails_are_consumer_images_of_the_pixels(
    imported_ct_study: Study,
    cxr_studies: list[Study],
    coordinator: AbstractUser,
    reader: AbstractUser,
    api_client_for: ClientFor,
) -> None:
    client = api_client_for(coordinator)
    instances = _ct_instances(imported_ct_study)
    url = _instance_url(instances[0])
    rendered = client.get(f"{url}/rendered")
    assert rendered.status_code == 200
    assert rendered["Content-Type"] == "image/jpeg"
    image = Image.open(io.BytesIO(rendered.content))
    assert image.size == (instances[0].columns, instances[0].rows)
    assert np.asarray(image).std() > 10, "a windowed CT slice, not a black square"
    png = client.get(f"{url}/frames/1/rendered", HTTP_ACCEPT="image/png")
    assert png["Content-Type"] == "image/png"
    small = client.get(f"{url}/rendered", {"viewport": "64,64", "quality": "50"})
    assert max(Image.open(io.BytesIO(small.content)).size) == 64

    series_url = url.split("/instances/", 1)[0]
    for thumbnail_url in (
        f"{url}/thumbnail",
        f"{series_url}/thumbnail",
        f"{_study_url(imported_ct_study)}/thumbnail",
        f"{_study_url(cxr_studies[0])}/thumbnail",
    ):
        thumbnail = client.get(thumbnail_url)
        assert thumbnail.status_code == 200, thumbnail_url
        picture = Image.open(io.BytesIO(thumbnail.content))
        assert max(picture.size) <= 256
        assert np.asarray(picture).std() > 10, thumbnail_url

    assert client.get(f"{url}/rendered", HTTP_ACCEPT="image/gif").status_code == 406
    assert client.get(f"{url}/rendered", {"viewport": "wide"}).status_code == 400
    assert client.get(f"{url}/rendered", {"quality": "0"}).status_code == 400
    assert client.get(f"{url}/frames/2/rendered").status_code == 404
    assert client.get(f"{url}/frames/1,1/rendered").status_code == 400
    assert api_client_for(reader).get(f"{url}/rendered").status_code == 404
    assert api_client_for(None).get(f"{series_url}/thumbnail").status_code == 401


@pytest.mark.django_db
def test_wado_uri_returns_the_stored_file(
    cxr_studies: list[Study], coordinator: AbstractUser, api_client_for: ClientFor
) -> None:
    instance = Instance.objects.select_related("series__study").get(series__study=cxr_studies[1])
    query = (
        f"/dicomweb/wado?requestType=WADO&studyUID={instance.series.study.study_instance_uid}"
        f"&seriesUID={instance.series.series_instance_uid}&objectUID={instance.sop_instance_uid}"
    )
    client = api_client_for(coordinator)
    response = client.get(query + "&contentType=application/dicom")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/dicom"
    body = b"".join(response.streaming_content)  # type: ignore[arg-type]
    with instance.file.open("rb") as handle:
        assert body == handle.read()
    source = pydicom.dcmread(CXR_JPEG)
    assert np.array_equal(pydicom.dcmread(io.BytesIO(body)).pixel_array, source.pixel_array)
    rendered = client.get(query + "&contentType=image/jpeg")
    assert rendered.status_code == 406
    assert "application/dicom" in rendered.json()["detail"]
    decoded = client.get(query + "&transferSyntax=1.2.840.10008.1.2.1")
    assert decoded.status_code == 200
    as_explicit = pydicom.dcmread(io.BytesIO(decoded.content))
    assert as_explicit.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert np.array_equal(as_explicit.pixel_array, source.pixel_array)
    recompress = client.get(query + "&transferSyntax=1.2.840.10008.1.2.4.91")
    assert recompress.status_code == 406
    assert client.get(query.replace("requestType=WADO", "requestType=X")).status_code == 400


# --- STOW-RS --------------------------------------------------------------------------------


def _stow_body(parts: list[bytes], boundary: str = "b0undary-4f2c") -> tuple[bytes, str]:
    body = b"".join(
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part + b"\r\n"
        for part in parts
    )
    body += f"--{boundary}--\r\n".encode()
    return body, f'multipart/related; type="application/dicom"; boundary="{boundary}"'


def _sequence(answer: dict, tag: str) -> list[dict]:
    return answer.get(tag, {}).get("Value", [])


@pytest.mark.django_db
def test_stow_stores_good_parts_and_names_the_bad_one(
    archive_dirs: Path, coordinator: AbstractUser, api_client_for: ClientFor
) -> None:
    good = [p.read_bytes() for p in CT_FILES[:3]]
    body, content_type = _stow_body([*good, b"this is not DICOM"])
    response = api_client_for(coordinator).post(
        "/dicomweb/studies", body, content_type=content_type
    )
    assert response.status_code == 202
    assert response["Content-Type"] == "application/dicom+json"
    answer = response.json()
    referenced = _sequence(answer, "00081199")
    failed = _sequence(answer, "00081198")
    assert len(referenced) == 3
    stored_uids = [item["00081155"]["Value"][0] for item in referenced]
    assert set(stored_uids) == set(Instance.objects.values_list("sop_instance_uid", flat=True))
    # De-identification gives new UIDs; the answer lists the stored ones, in part order.
    sent = [pydicom.dcmread(p, stop_before_pixels=True) for p in CT_FILES[:3]]
    assert not set(stored_uids) & {str(ds.SOPInstanceUID) for ds in sent}
    for item, ds in zip(referenced, sent, strict=True):
        stored = Instance.objects.get(sop_instance_uid=item["00081155"]["Value"][0])
        assert stored.instance_number == ds.InstanceNumber
    (failure,) = failed
    assert failure["00081197"]["Value"] == [0xC000]
    assert failure["00000902"]["Value"][0].startswith("part 4:")


@pytest.mark.django_db
def test_stow_answers_200_when_all_stored_and_again_on_retry(
    archive_dirs: Path, coordinator: AbstractUser, api_client_for: ClientFor
) -> None:
    body, content_type = _stow_body([p.read_bytes() for p in CT_FILES[:2]])
    client = api_client_for(coordinator)
    first = client.post("/dicomweb/studies", body, content_type=content_type)
    assert first.status_code == 200
    assert "00081198" not in first.json()
    study_uid = Instance.objects.values_list("series__study__study_instance_uid", flat=True)[0]
    assert first.json()["00081190"]["Value"][0].endswith(f"/dicomweb/studies/{study_uid}")
    # A client that lost the answer sends again: nothing is stored twice, and it is told so.
    second = client.post("/dicomweb/studies", body, content_type=content_type)
    assert second.status_code == 200
    assert [i["00081155"] for i in _sequence(second.json(), "00081199")] == [
        i["00081155"] for i in _sequence(first.json(), "00081199")
    ]
    assert Instance.objects.count() == 2


@pytest.mark.django_db
def test_stow_reports_an_image_held_for_review_as_stored_with_a_warning(
    archive_dirs: Path, coordinator: AbstractUser, api_client_for: ClientFor
) -> None:
    body, content_type = _stow_body([CT_FILES[0].read_bytes(), CXR_J2K.read_bytes()])
    response = api_client_for(coordinator).post(
        "/dicomweb/studies", body, content_type=content_type
    )
    held = Instance.objects.filter(status=Instance.Status.QUARANTINED)
    assert held.count() == 1, "the J2K radiograph lacks Burned In Annotation and waits"
    assert response.status_code == 202
    referenced = _sequence(response.json(), "00081199")
    assert len(referenced) == 2
    assert "00081196" not in referenced[0]
    assert referenced[1]["00081196"]["Value"] == [0xB000]
    assert referenced[1]["00000902"]["Value"][0].startswith(
        "part 2: held for review: Burned In Annotation"
    )
    assert referenced[1]["00081155"]["Value"] == [held.get().sop_instance_uid]
    # Clients that read only the status line and headers are told too.
    assert response["Warning"].startswith('299 radreview "1 instance(s) stored but held')
    assert "part 2" in response["Warning"]


@pytest.mark.django_db
def test_stow_retrieve_urls_name_the_series_and_answer(
    archive_dirs: Path, coordinator: AbstractUser, api_client_for: ClientFor
) -> None:
    body, content_type = _stow_body([CT_FILES[0].read_bytes()])
    client = api_client_for(coordinator)
    (item,) = _sequence(
        client.post("/dicomweb/studies", body, content_type=content_type).json(), "00081199"
    )
    instance = Instance.objects.select_related("series__study").get()
    url = item["00081190"]["Value"][0]
    assert url.endswith(_instance_url(instance))
    retrieved = client.get(url.split("testserver", 1)[1], HTTP_ACCEPT="*/*")
    assert retrieved.status_code == 200


@pytest.mark.django_db
def test_stow_takes_a_single_application_dicom_instance(
    archive_dirs: Path, coordinator: AbstractUser, api_client_for: ClientFor
) -> None:
    client = api_client_for(coordinator)
    response = client.post(
        "/dicomweb/studies", CT_FILES[0].read_bytes(), content_type="application/dicom"
    )
    assert response.status_code == 200
    (item,) = _sequence(response.json(), "00081199")
    assert item["00081155"]["Value"] == [Instance.objects.get().sop_instance_uid]
    empty = client.post("/dicomweb/studies", b"", content_type="application/dicom")
    assert empty.status_code == 400
    garbage = client.post("/dicomweb/studies", b"not dicom", content_type="application/dicom")
    assert garbage.status_code == 409


@pytest.mark.django_db
def test_stow_to_a_study_stores_its_instances_and_refuses_others(
    archive_dirs: Path, coordinator: AbstractUser, api_client_for: ClientFor
) -> None:
    client = api_client_for(coordinator)
    sent_study = str(pydicom.dcmread(CT_FILES[0], stop_before_pixels=True).StudyInstanceUID)
    body, content_type = _stow_body([CT_FILES[0].read_bytes(), CXR_JPEG.read_bytes()])
    response = client.post(f"/dicomweb/studies/{sent_study}", body, content_type=content_type)
    assert response.status_code == 202
    assert len(_sequence(response.json(), "00081199")) == 1
    (failure,) = _sequence(response.json(), "00081198")
    assert failure["00000902"]["Value"][0] == (
        "part 2: it belongs to another study than the one posted to"
    )
    assert Instance.objects.count() == 1
    elsewhere = client.post(
        "/dicomweb/studies/1.2.3.4", CT_FILES[1].read_bytes(), content_type="application/dicom"
    )
    assert elsewhere.status_code == 409
    assert Instance.objects.count() == 1


@pytest.mark.django_db
def test_stow_by_a_browser_session_needs_its_csrf_token(
    archive_dirs: Path, coordinator: AbstractUser
) -> None:
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(coordinator)
    body, content_type = _stow_body([CT_FILES[0].read_bytes()])
    forged = browser.post("/dicomweb/studies", body, content_type=content_type)
    assert forged.status_code == 403
    assert "CSRF" in forged.json()["detail"]
    assert browser.get("/imaging/upload/").status_code == 200  # sets the CSRF cookie
    token = browser.cookies[django_settings.CSRF_COOKIE_NAME].value
    sent = browser.post(
        "/dicomweb/studies", body, content_type=content_type, HTTP_X_CSRFTOKEN=token
    )
    assert sent.status_code == 200
    assert Instance.objects.count() == 1


@pytest.mark.django_db
def test_stow_with_nothing_storable_is_409_and_malformed_requests_are_refused(
    archive_dirs: Path, coordinator: AbstractUser, api_client_for: ClientFor
) -> None:
    client = api_client_for(coordinator)
    body, content_type = _stow_body([b"garbage", b"more garbage"])
    response = client.post("/dicomweb/studies", body, content_type=content_type)
    assert response.status_code == 409
    assert [f["00000902"]["Value"][0][:6] for f in _sequence(response.json(), "00081198")] == [
        "part 1",
        "part 2",
    ]
    assert (
        client.post("/dicomweb/studies", b"{}", content_type="application/json").status_code == 415
    )
    truncated = body[: len(body) // 2]
    assert client.post("/dicomweb/studies", truncated, content_type=content_type).status_code == 400
    assert Instance.objects.count() == 0


@pytest.mark.django_db
def test_stow_refuses_a_body_over_the_size_cap(
    archive_dirs: Path, settings: object, coordinator: AbstractUser, api_client_for: ClientFor
) -> None:
    settings.DICOMWEB_STOW_MAX_BYTES = 100_000  # type: ignore[attr-defined]
    body, content_type = _stow_body([CXR_J2K.read_bytes()])
    response = api_client_for(coordinator).post(
        "/dicomweb/studies", body, content_type=content_type
    )
    assert response.status_code == 413
    assert Instance.objects.count() == 0


class _Trickle(io.BytesIO):
    """A stream that hands out a few bytes per read, so boundaries straddle reads."""

    def read(self, size: int | None = -1, /) -> bytes:
        return super().read(7)


def test_multipart_parts_are_split_exactly_whatever_the_read_sizes(tmp_path: Path) -> None:
    payloads = [b"\r\n--c--b\r\n" * 50, b"", bytes(range(256)) * 40]
    body, _content_type = _stow_body(payloads, boundary="b")
    parts = multipart_to_files(
        _Trickle(body), boundary="b", dest=tmp_path, max_bytes=10**6, default_type="x"
    )
    assert [p.path.read_bytes() for p in parts] == payloads
    assert [p.content_type for p in parts] == ["application/dicom"] * 3
    with pytest.raises(BodyTooLargeError):
        multipart_to_files(
            _Trickle(body), boundary="b", dest=tmp_path, max_bytes=100, default_type="x"
        )
    with pytest.raises(MultipartError, match="closing boundary"):
        multipart_to_files(
            _Trickle(body[:-20]), boundary="b", dest=tmp_path, max_bytes=10**6, default_type="x"
        )


# --- OpenAPI ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_api_schema_documents_dicomweb(
    coordinator: AbstractUser, api_client_for: ClientFor
) -> None:
    schema = api_client_for(coordinator).get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    assert "/dicomweb/studies" in paths
    assert set(paths["/dicomweb/studies"]) >= {"get", "post"}
    frames = [p for p in paths if p.endswith("/frames/{frames}")]
    assert frames
    (first_frames,) = [p for p in paths if p.endswith("/first-frames")]
    parameters = paths[first_frames]["get"]["parameters"]
    assert {"name": "instances", "required": True}.items() <= next(
        q for q in parameters if q["name"] == "instances"
    ).items()
    assert "/dicomweb/wado" in paths
    for path in (
        "/dicomweb/series",
        "/dicomweb/instances",
        "/dicomweb/studies/{study_uid}/instances",
    ):
        assert "get" in paths[path], path
    assert set(paths["/dicomweb/studies/{study_uid}"]) >= {"get", "post"}
    assert [p for p in paths if p.endswith("/rendered")]
    assert len([p for p in paths if p.endswith("/thumbnail")]) == 3


@pytest.mark.parametrize(
    ("accept", "stored", "served"),
    [
        # Cornerstone3D's wadors loader (type unquoted).
        (
            "multipart/related; type=application/octet-stream; transfer-syntax=*",
            J2K,
            ("application/octet-stream", J2K, False),
        ),
        # dicomweb-client's default for frames.
        ('multipart/related; type="*/*"', J2K, ("application/octet-stream", J2K, False)),
        # Uncompressed asked of a compressed frame: decoded.
        (
            'multipart/related; type="application/octet-stream"',
            J2K,
            ("application/octet-stream", EXPLICIT_LE, True),
        ),
        # Native little endian bytes are the same whatever the file's VR encoding said.
        (
            'multipart/related; type="application/octet-stream"',
            "1.2.840.10008.1.2",
            ("application/octet-stream", EXPLICIT_LE, False),
        ),
        (
            None,
            "1.2.840.10008.1.2.4.50",
            ("application/octet-stream", "1.2.840.10008.1.2.4.50", False),
        ),
        (
            'multipart/related; type="image/jpeg", multipart/related; type="image/jp2"',
            J2K,
            ("image/jp2", J2K, False),
        ),
    ],
)
def test_frame_accept_headers_real_clients_send(
    accept: str | None, stored: str, served: tuple[str, str, bool]
) -> None:
    assert frame_media_type(accept, transfer_syntax=stored) == served


def test_frame_accept_that_needs_transcoding_is_refused() -> None:
    with pytest.raises(NotAcceptableError, match="served as stored or decoded"):
        frame_media_type(
            f"{OCTET_ANY[:-1]}{EXPLICIT_LE};q=1",
            transfer_syntax="1.2.840.10008.1.2.2",  # big endian: bytes differ
        )


@pytest.mark.django_db
def test_an_instance_whose_stored_file_is_missing_answers_404_and_names_it_in_the_log(
    imported_ct_study: Study,
    coordinator: AbstractUser,
    api_client_for: ClientFor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = api_client_for(coordinator)
    instance = _ct_instances(imported_ct_study)[0]
    stored_name = instance.file.name
    Path(instance.file.path).unlink()
    url = _instance_url(instance)
    for path, accept in (
        (f"{url}/frames/1", OCTET_ANY),
        (url, 'multipart/related; type="application/dicom"; transfer-syntax=*'),
        (f"{url}/rendered", "image/jpeg"),
        (f"{url}/bulkdata/7FE00010", OCTET_ANY),
    ):
        with caplog.at_level("ERROR", logger="reviewapp.imaging.dicomweb.views"):
            caplog.clear()
            answer = client.get(path, HTTP_ACCEPT=accept)
        assert answer.status_code == 404, path
        assert "missing" in answer.json()["detail"], path
        assert any(stored_name in record.getMessage() for record in caplog.records), path
    # The rest of the study is still served.
    other = _ct_instances(imported_ct_study)[1]
    assert client.get(f"{_instance_url(other)}/frames/1", HTTP_ACCEPT=OCTET_ANY).status_code == 200
