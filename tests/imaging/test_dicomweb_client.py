"""python ``dicomweb-client`` against the live server (served as `make serve` serves it).

Stores the shared CT series and chest radiographs over STOW-RS with token auth, finds them
with QIDO-RS, reads metadata and every frame with WADO-RS, and checks each decoded frame is
pixel-for-pixel pydicom's decoding of the source file. De-identification gives new UIDs, so
sources are matched to stored instances through the STOW answer (references in part order).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.test import Client
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from rest_framework.authtoken.models import Token

from reviewapp.imaging.ingest.services import instance_quarantine_approve
from reviewapp.imaging.models import Instance
from tests.conftest import serving
from tests.imaging.conftest import CT_FILES, CXR_J2K, CXR_JPEG

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

OCTET_ANY = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'


@pytest.fixture
def live_dicomweb(transactional_db: None, tmp_path: Path) -> Iterator[str]:
    """Base URL of a uvicorn process serving the project against this test's database."""
    with serving(tmp_path) as url:
        yield url


def _token(user: AbstractUser) -> str:
    token, _ = Token.objects.get_or_create(user=user)
    return str(token.key)


def _client(base: str, user: AbstractUser) -> DICOMwebClient:
    return DICOMwebClient(f"{base}/dicomweb", headers={"Authorization": f"Token {_token(user)}"})


def _store(client: DICOMwebClient, paths: list[Path]) -> list[str]:
    """STOW the files; the stored (de-identified) SOP Instance UID of each, in order."""
    answer = client.store_instances([pydicom.dcmread(p) for p in paths])
    assert "FailedSOPSequence" not in answer
    return [str(item.ReferencedSOPInstanceUID) for item in answer.ReferencedSOPSequence]


def _decode(frame: bytes, metadata: Dataset) -> np.ndarray:
    """Pixels of one frame as pydicom decodes them, using only what the server sent."""
    transfer_syntax = metadata.AvailableTransferSyntaxUID
    frame = bytes(frame)  # dicomweb-client hands out bytearrays, which pydicom reads as a list
    ds = Dataset()
    ds.update(metadata)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.NumberOfFrames = 1
    if transfer_syntax.is_encapsulated:
        ds.add_new(0x7FE00010, "OB", encapsulate([frame]))
    else:
        ds.add_new(0x7FE00010, "OW" if ds.BitsAllocated > 8 else "OB", frame)
    return ds.pixel_array


def test_dicomweb_client_stores_finds_and_reads_back_identical_pixels(
    live_dicomweb: str, coordinator: AbstractUser
) -> None:
    client = _client(live_dicomweb, coordinator)
    ct_uids = _store(client, CT_FILES)
    cxr_uids = _store(client, [CXR_J2K, CXR_JPEG])
    sources = dict(zip(ct_uids + cxr_uids, [*CT_FILES, CXR_J2K, CXR_JPEG], strict=True))
    # The import holds radiographs without a Burned In Annotation answer for a coordinator.
    for held in Instance.objects.filter(status=Instance.Status.QUARANTINED):
        instance_quarantine_approve(instance=held, reviewed_by=coordinator)

    studies = client.search_for_studies()
    assert len(studies) == 3
    ct_study = client.search_for_studies(search_filters={"ModalitiesInStudy": "CT"})
    (ct_study_uid,) = [s["0020000D"]["Value"][0] for s in ct_study]
    assert client.search_for_studies(limit=1, offset=1)[0] == studies[1]
    (series,) = client.search_for_series(ct_study_uid)
    series_uid = series["0020000E"]["Value"][0]
    found = client.search_for_instances(ct_study_uid, series_uid)
    assert {i["00080018"]["Value"][0] for i in found} == set(ct_uids)

    read = 0
    for study in studies:
        study_uid = study["0020000D"]["Value"][0]
        for item in client.retrieve_study_metadata(study_uid):
            metadata = Dataset.from_json(item)
            sop_uid = str(metadata.SOPInstanceUID)
            (frame,) = client.retrieve_instance_frames(
                study_uid, str(metadata.SeriesInstanceUID), sop_uid, frame_numbers=[1]
            )
            expected = pydicom.dcmread(sources[sop_uid]).pixel_array
            decoded = _decode(frame, metadata)
            assert decoded.shape == expected.shape, sources[sop_uid].name
            assert np.array_equal(decoded, expected), sources[sop_uid].name
            # The same pixels through the BulkDataURI the metadata names (PS3.18 F.2.6),
            # asked for as application/octet-stream (uncompressed: decoded). The URI is
            # built from the request's Host, which dicomweb-client sends without the port:
            # the metadata for it is read with a client that sends it whole.
            (with_port,) = requests.get(
                f"{live_dicomweb}/dicomweb/studies/{study_uid}/series/"
                f"{metadata.SeriesInstanceUID}/instances/{sop_uid}/metadata",
                headers={"Authorization": f"Token {_token(coordinator)}"},
                timeout=30,
            ).json()
            (bulk,) = client.retrieve_bulkdata(
                with_port["7FE00010"]["BulkDataURI"], media_types=("application/octet-stream",)
            )
            uncompressed = np.frombuffer(bulk, dtype=expected.dtype.newbyteorder("<"))
            assert np.array_equal(uncompressed.reshape(expected.shape), expected)
            read += 1
    assert read == 32

    jpeg_uid = cxr_uids[1]
    jpeg = Instance.objects.select_related("series__study").get(sop_instance_uid=jpeg_uid)
    whole = client.retrieve_instance(
        jpeg.series.study.study_instance_uid, jpeg.series.series_instance_uid, jpeg_uid
    )
    assert np.array_equal(whole.pixel_array, pydicom.dcmread(CXR_JPEG).pixel_array)
    assert whole.SOPInstanceUID == jpeg_uid
    assert whole.PatientID != pydicom.dcmread(CXR_JPEG).PatientID


def _frame_url(base: str, instance: Instance) -> str:
    return (
        f"{base}/dicomweb/studies/{instance.series.study.study_instance_uid}/series/"
        f"{instance.series.series_instance_uid}/instances/{instance.sop_instance_uid}/frames/1"
    )


def test_live_server_refuses_as_django_does_and_caches_frames_forever(
    live_dicomweb: str,
    coordinator: AbstractUser,
    reader: AbstractUser,
) -> None:
    (stored_uid,) = _store(_client(live_dicomweb, coordinator), [CT_FILES[0]])
    instance = Instance.objects.select_related("series__study").get(sop_instance_uid=stored_uid)
    url = _frame_url(live_dicomweb, instance)
    carol = {"Authorization": f"Token {_token(coordinator)}", "Accept": OCTET_ANY}

    first = requests.get(url, headers=carol, timeout=10)
    again = requests.get(url, headers=carol, timeout=10)
    for response in (first, again):
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "private, max-age=31536000, immutable"
        assert response.headers["Content-Type"].startswith(
            'multipart/related; type="application/octet-stream"; '
            "transfer-syntax=1.2.840.10008.1.2.1; boundary="
        )
    source = pydicom.dcmread(CT_FILES[0]).PixelData
    assert source in first.content
    assert source in again.content

    assert requests.get(url, headers={"Accept": OCTET_ANY}, timeout=10).status_code == 401
    unknown = {"Authorization": "Token " + "0" * 40, "Accept": OCTET_ANY}
    assert requests.get(url, headers=unknown, timeout=10).status_code == 401
    alice = {"Authorization": f"Token {_token(reader)}", "Accept": OCTET_ANY}
    assert requests.get(url, headers=alice, timeout=10).status_code == 404
    transcode = {**carol, "Accept": 'multipart/related; type="image/jpeg"'}
    refused = requests.get(url, headers=transcode, timeout=10)
    assert refused.status_code == 406
    assert "1.2.840.10008.1.2.1" in refused.json()["detail"]
    past_the_end = requests.get(url[:-1] + "2", headers=carol, timeout=10)
    assert past_the_end.status_code == 404

    # The viewer authenticates with its session cookie, not a token.
    browser = Client()
    browser.force_login(coordinator)
    cookie = {settings.SESSION_COOKIE_NAME: browser.cookies[settings.SESSION_COOKIE_NAME].value}
    by_session = requests.get(url, headers={"Accept": OCTET_ANY}, cookies=cookie, timeout=10)
    assert by_session.status_code == 200
    assert source in by_session.content

    metadata_url = url.rsplit("/frames/", 1)[0] + "/metadata"
    as_json = {**carol, "Accept": "application/dicom+json"}
    metadata = requests.get(metadata_url, headers=as_json, timeout=10)
    assert metadata.status_code == 200
    revalidated = requests.get(
        metadata_url, headers={**as_json, "If-None-Match": metadata.headers["ETag"]}, timeout=10
    )
    assert revalidated.status_code == 304


def test_live_server_answers_first_frames_in_the_order_asked_with_djangos_headers(
    live_dicomweb: str, coordinator: AbstractUser, reader: AbstractUser
) -> None:
    stored = _store(_client(live_dicomweb, coordinator), CT_FILES[:3])
    instances = {
        i.sop_instance_uid: i
        for i in Instance.objects.select_related("series__study").filter(
            sop_instance_uid__in=stored
        )
    }
    first = instances[stored[0]]
    series_url = _frame_url(live_dicomweb, first).split("/instances/", 1)[0]
    url = f"{series_url}/first-frames?instances={stored[2]},{stored[0]}"
    carol = {"Authorization": f"Token {_token(coordinator)}", "Accept": OCTET_ANY}
    answers = [requests.get(url, headers=carol, timeout=10) for _ in range(2)]
    for answer in answers:
        assert answer.status_code == 200
        # Through Django's stack like every other answer, with its headers.
        assert answer.headers["X-Frame-Options"] == "DENY"
        body = answer.content
        for sop, path in ((stored[2], CT_FILES[2]), (stored[0], CT_FILES[0])):
            pixels = pydicom.dcmread(path).PixelData
            location = _frame_url(live_dicomweb, instances[sop]).split("://", 1)[1]
            location = location[location.index("/") :]
            head = f"Content-Length: {len(pixels)}\r\nContent-Location: {location}\r\n\r\n"
            assert head.encode() + pixels in body
        assert body.index(stored[2].encode()) < body.index(stored[0].encode())

    alice = {"Authorization": f"Token {_token(reader)}", "Accept": OCTET_ANY}
    assert requests.get(url, headers=alice, timeout=10).status_code == 404
    assert requests.get(url, headers={"Accept": OCTET_ANY}, timeout=10).status_code == 401
    twice = f"{series_url}/first-frames?instances={stored[0]},{stored[0]}"
    refused = requests.get(twice, headers=carol, timeout=10)
    assert refused.status_code == 400
    assert refused.headers["X-Frame-Options"] == "DENY"  # Django's answer, with its reason
    assert "listed twice" in refused.json()["detail"]


def test_a_revoked_token_stops_frames_at_once(
    live_dicomweb: str, coordinator: AbstractUser
) -> None:
    (stored_uid,) = _store(_client(live_dicomweb, coordinator), [CT_FILES[0]])
    instance = Instance.objects.select_related("series__study").get(sop_instance_uid=stored_uid)
    url = _frame_url(live_dicomweb, instance)
    carol = {"Authorization": f"Token {_token(coordinator)}", "Accept": OCTET_ANY}
    for _ in range(2):
        assert requests.get(url, headers=carol, timeout=10).status_code == 200

    token_only = {"Authorization": carol["Authorization"]}
    revoked = requests.delete(f"{live_dicomweb}/api/v1/auth/token", headers=token_only, timeout=10)
    assert revoked.status_code == 204
    assert requests.get(url, headers=carol, timeout=10).status_code == 401


def test_dicomweb_client_searches_every_level_and_retrieves_with_its_defaults(
    live_dicomweb: str, coordinator: AbstractUser
) -> None:
    client = _client(live_dicomweb, coordinator)
    ct_uids = _store(client, CT_FILES[:3])
    (jpeg_uid,) = _store(client, [CXR_JPEG])
    for held in Instance.objects.filter(status=Instance.Status.QUARANTINED):
        instance_quarantine_approve(instance=held, reviewed_by=coordinator)
    jpeg = Instance.objects.select_related("series__study").get(sop_instance_uid=jpeg_uid)
    ct = Instance.objects.select_related("series__study").get(sop_instance_uid=ct_uids[0])
    pseudonym = ct.series.study.patient_pseudonym

    # Every QIDO-RS resource, with the match keys OHIF's study list sends.
    (by_name,) = client.search_for_studies(search_filters={"PatientName": pseudonym[:5] + "*"})
    assert by_name["00100010"]["Value"] == [{"Alphabetic": pseudonym}]
    assert len(client.search_for_series()) == 2
    assert len(client.search_for_instances()) == 4
    study_uid = ct.series.study.study_instance_uid
    assert len(client.search_for_instances(study_uid)) == 3
    (with_age,) = client.search_for_studies(
        search_filters={"StudyInstanceUID": study_uid}, fields=["PatientAge"]
    )
    assert "00101010" in with_age
    assert len(client.search_for_studies(fuzzymatching=True)) == 2

    # retrieve_study asks for application/dicom with no transfer syntax: explicit VR LE, so
    # the JPEG radiograph comes back decoded, pixel for pixel pydicom's decoding.
    (whole,) = client.retrieve_study(jpeg.series.study.study_instance_uid)
    assert whole.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert whole.SOPInstanceUID == jpeg_uid
    assert np.array_equal(whole.pixel_array, pydicom.dcmread(CXR_JPEG).pixel_array)
    series = client.retrieve_series(study_uid, ct.series.series_instance_uid)
    expected = {
        uid: pydicom.dcmread(path).pixel_array
        for uid, path in zip(ct_uids, CT_FILES[:3], strict=True)
    }
    assert {str(ds.SOPInstanceUID) for ds in series} == set(ct_uids)
    for ds in series:
        assert np.array_equal(ds.pixel_array, expected[str(ds.SOPInstanceUID)])


def test_a_browser_session_stores_with_its_csrf_token_into_a_named_study(
    live_dicomweb: str, coordinator: AbstractUser
) -> None:
    browser = Client()
    browser.force_login(coordinator)
    session = requests.Session()
    session.cookies.set(
        settings.SESSION_COOKIE_NAME, browser.cookies[settings.SESSION_COOKIE_NAME].value
    )
    page = session.get(f"{live_dicomweb}/imaging/upload/", timeout=10)
    assert page.status_code == 200
    session.headers["X-CSRFToken"] = session.cookies[settings.CSRF_COOKIE_NAME]
    client = DICOMwebClient(f"{live_dicomweb}/dicomweb", session=session)
    sent = pydicom.dcmread(CT_FILES[0])
    answer = client.store_instances([sent], study_instance_uid=str(sent.StudyInstanceUID))
    assert "FailedSOPSequence" not in answer
    (item,) = answer.ReferencedSOPSequence
    stored = Instance.objects.select_related("series__study").get(
        sop_instance_uid=item.ReferencedSOPInstanceUID
    )
    # The RetrieveURL of each instance answers. Its host is the request's Host header, which
    # dicomweb-client sends without the port on a small STOW: only the path is compared.
    path = "/dicomweb/" + item.RetrieveURL.split("/dicomweb/", 1)[1]
    assert path == (
        f"/dicomweb/studies/{stored.series.study.study_instance_uid}/series/"
        f"{stored.series.series_instance_uid}/instances/{stored.sop_instance_uid}"
    )
    retrieved = session.get(
        f"{live_dicomweb}{path}",
        headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
        timeout=10,
    )
    assert retrieved.status_code == 200
    assert stored.sop_instance_uid.encode() in retrieved.content

    without_token = requests.Session()
    without_token.cookies.update(session.cookies)
    refused = DICOMwebClient(f"{live_dicomweb}/dicomweb", session=without_token)
    with pytest.raises(requests.HTTPError) as error:
        refused.store_instances([pydicom.dcmread(CT_FILES[1])])
    assert error.value.response.status_code == 403
    assert Instance.objects.count() == 1


def test_the_rest_of_dicomweb_clients_api_metadata_rendered_iterators_paging_and_delete(
    live_dicomweb: str, coordinator: AbstractUser
) -> None:
    client = _client(live_dicomweb, coordinator)
    ct_uids = _store(client, CT_FILES[:3])
    ct = Instance.objects.select_related("series__study").get(sop_instance_uid=ct_uids[0])
    study_uid, series_uid = ct.series.study.study_instance_uid, ct.series.series_instance_uid
    source = pydicom.dcmread(CT_FILES[0])

    # Metadata at series and instance level.
    assert {
        m["00080018"]["Value"][0] for m in client.retrieve_series_metadata(study_uid, series_uid)
    } == set(ct_uids)
    one = client.retrieve_instance_metadata(study_uid, series_uid, ct_uids[0])
    assert Dataset.from_json(one).Rows == source.Rows

    # Rendered (a consumer image): JPEG by default, PNG when asked; the frame as well.
    for media, kind in ((None, "JPEG"), (("image/png",), "PNG")):
        image = client.retrieve_instance_rendered(
            study_uid, series_uid, ct_uids[0], media_types=media
        )
        assert Image.open(io.BytesIO(image)).format == kind
    frame = client.retrieve_instance_frames_rendered(study_uid, series_uid, ct_uids[0], [1])
    assert Image.open(io.BytesIO(frame)).size == (source.Columns, source.Rows)
    # A series or study rendered: one image per instance, in a multipart/related answer.
    study_rendered = requests.get(
        f"{live_dicomweb}/dicomweb/studies/{study_uid}/rendered",
        headers={"Authorization": f"Token {_token(coordinator)}"},
        timeout=60,
    )
    assert study_rendered.headers["Content-Type"].startswith('multipart/related; type="image/jpeg"')
    for whole in (client.retrieve_series_rendered(study_uid, series_uid), study_rendered.content):
        parts = [p for p in bytes(whole).split(b"\r\n\r\n")[1:] if p.startswith(b"\xff\xd8")]
        assert len(parts) == 3

    # The iterating forms and an explicit Accept (as stored).
    assert {str(ds.SOPInstanceUID) for ds in client.iter_study(study_uid)} == set(ct_uids)
    assert len(list(client.iter_series(study_uid, series_uid))) == 3
    (raw,) = client.iter_instance_frames(
        study_uid, series_uid, ct_uids[0], [1],
        media_types=(("application/octet-stream", "*"),),
    )  # fmt: skip
    assert bytes(raw) == source.PixelData
    as_stored = client.retrieve_instance(
        study_uid, series_uid, ct_uids[0], media_types=(("application/dicom", "*"),)
    )
    assert np.array_equal(as_stored.pixel_array, source.pixel_array)
    uri = requests.get(
        f"{live_dicomweb}/dicomweb/studies/{study_uid}/series/{series_uid}/instances/"
        f"{ct_uids[0]}/metadata",
        headers={"Authorization": f"Token {_token(coordinator)}"},
        timeout=30,
    ).json()[0]["7FE00010"]["BulkDataURI"]
    (bulk,) = client.iter_bulkdata(uri, media_types=("application/octet-stream",))
    assert bytes(bulk) == source.PixelData

    # Paging at every level.
    series_page = client.search_for_instances(study_uid, series_uid, limit=2)
    rest = client.search_for_instances(study_uid, series_uid, limit=2, offset=2)
    assert (len(series_page), len(rest)) == (2, 1)
    assert {i["00080018"]["Value"][0] for i in series_page + rest} == set(ct_uids)
    assert client.search_for_series(limit=1, offset=1) == []

    # What was stored is never deleted over DICOMweb: the archive keeps what was rated.
    for delete in (
        lambda: client.delete_study(study_uid),
        lambda: client.delete_series(study_uid, series_uid),
        lambda: client.delete_instance(study_uid, series_uid, ct_uids[0]),
    ):
        with pytest.raises(requests.HTTPError) as refused:
            delete()
        assert refused.value.response.status_code == 405
    assert Instance.objects.count() == 3
