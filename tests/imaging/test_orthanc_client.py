"""Orthanc (Debian's orthanc + orthanc-dicomweb) as a DICOMweb client of the live archive.

Orthanc is configured with radreview as a remote DICOMweb server (the plugin's ``Servers``,
with our API token in its HTTP headers) and then driven through its own REST API, as a site
that already runs Orthanc would: search radreview, retrieve studies into Orthanc, push an
instance from Orthanc by STOW-RS, and push back what it retrieved (recognised as ours, not
imported again under new pseudonyms). Pixels are compared with pydicom's decoding of the
sources.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from django.contrib.auth.models import AbstractUser
from rest_framework.authtoken.models import Token

from bench.common import free_port, orthanc_binary, orthanc_config, running
from reviewapp.imaging.ingest.services import instance_quarantine_approve
from reviewapp.imaging.models import Instance, Study
from tests.conftest import serving
from tests.imaging.conftest import CT_FILES, CXR_J2K, CXR_JPEG

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class Orthanc:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()

    def post(self, path: str, body: object) -> object:
        answer = self.http.post(f"{self.url}{path}", json=body, timeout=300)
        assert answer.ok, (path, answer.status_code, answer.text[:500])
        return answer.json()

    def post_bytes(self, path: str, body: bytes) -> dict:
        answer = self.http.post(f"{self.url}{path}", data=body, timeout=300)
        assert answer.ok, (path, answer.status_code, answer.text[:500])
        return answer.json()

    def get(self, path: str) -> requests.Response:
        answer = self.http.get(f"{self.url}{path}", timeout=120)
        assert answer.ok, (path, answer.status_code, answer.text[:500])
        return answer


@dataclass
class Archive:
    url: str
    token: str
    sources: dict[str, Path]  # stored (de-identified) SOP Instance UID -> source file


@pytest.fixture
def archive(tmp_path: Path, coordinator: AbstractUser) -> Iterator[Archive]:
    """The live archive holding the CT series and a radiograph."""
    token = Token.objects.create(user=coordinator).key
    files = [*CT_FILES, CXR_JPEG]
    with serving(tmp_path) as url:
        client = DICOMwebClient(f"{url}/dicomweb", headers={"Authorization": f"Token {token}"})
        answer = client.store_instances([pydicom.dcmread(p) for p in files])
        stored = [str(item.ReferencedSOPInstanceUID) for item in answer.ReferencedSOPSequence]
        for held in Instance.objects.filter(status=Instance.Status.QUARANTINED):
            instance_quarantine_approve(instance=held, reviewed_by=coordinator)
        yield Archive(url, token, dict(zip(stored, files, strict=True)))


@pytest.fixture
def orthanc(tmp_path: Path, archive: Archive) -> Iterator[Orthanc]:
    folder = tmp_path / "orthanc"
    folder.mkdir()
    port = free_port()
    config = orthanc_config(
        folder,
        port=port,
        dicomweb_servers={
            "radreview": {
                "Url": f"{archive.url}/dicomweb/",
                "HttpHeaders": {"Authorization": f"Token {archive.token}"},
            }
        },
    )
    url = f"http://127.0.0.1:{port}"
    with running(
        [orthanc_binary(), str(config)],
        ready_url=f"{url}/system",
        log_path=folder / "orthanc.log",
        timeout=120,
    ):
        yield Orthanc(url)


def _tag(item: dict, tag: str) -> object:
    """A value in Orthanc's answer to a remote QIDO (its own JSON: one value, no list)."""
    return item[tag]["Value"]


def test_orthanc_searches_retrieves_and_pushes_with_identical_pixels(
    archive: Archive, orthanc: Orthanc, coordinator: AbstractUser
) -> None:
    ct = Study.objects.get(modalities__contains="CT")
    radiograph = Study.objects.exclude(pk=ct.pk).get()

    # Search, through Orthanc's DICOMweb client.
    studies = orthanc.post("/dicom-web/servers/radreview/qido", {"Uri": "/studies"})
    assert isinstance(studies, list)
    assert {_tag(s, "0020000D") for s in studies} == {
        ct.study_instance_uid,
        radiograph.study_instance_uid,
    }
    names = {_tag(s, "00100010") for s in studies}
    assert names == {ct.patient_pseudonym, radiograph.patient_pseudonym}
    only_ct = orthanc.post(
        "/dicom-web/servers/radreview/qido",
        {"Uri": "/studies", "Arguments": {"ModalitiesInStudy": "CT"}},
    )
    assert [_tag(s, "0020000D") for s in only_ct] == [ct.study_instance_uid]  # type: ignore[union-attr]
    series = orthanc.post(
        "/dicom-web/servers/radreview/qido",
        {"Uri": f"/studies/{ct.study_instance_uid}/series"},
    )
    assert len(series) == 1  # type: ignore[arg-type]

    # Retrieve both studies into Orthanc; every pixel as pydicom decodes the source.
    orthanc.post(
        "/dicom-web/servers/radreview/retrieve",
        {
            "Resources": [
                {"Study": ct.study_instance_uid},
                {"Study": radiograph.study_instance_uid},
            ]
        },
    )
    in_orthanc = orthanc.get("/instances").json()
    assert len(in_orthanc) == len(CT_FILES) + 1
    compared = set()
    for orthanc_id in in_orthanc:
        file = orthanc.get(f"/instances/{orthanc_id}/file").content
        retrieved = pydicom.dcmread(io.BytesIO(file))
        source = pydicom.dcmread(archive.sources[retrieved.SOPInstanceUID])
        assert np.array_equal(retrieved.pixel_array, source.pixel_array)
        assert retrieved.PatientID != source.PatientID  # what left the archive is de-identified
        compared.add(retrieved.SOPInstanceUID)
    assert compared == set(archive.sources)

    # Push from Orthanc: a new radiograph uploaded there, then sent to us by STOW-RS.
    uploaded = orthanc.post_bytes("/instances", CXR_J2K.read_bytes())
    before = Study.objects.count()
    orthanc.post("/dicom-web/servers/radreview/stow", {"Resources": [uploaded["ID"]]})
    assert Study.objects.count() == before + 1
    pushed = Instance.objects.exclude(sop_instance_uid__in=archive.sources).get()
    assert pushed.status == Instance.Status.QUARANTINED  # held for review, as any radiograph
    instance_quarantine_approve(instance=pushed, reviewed_by=coordinator)

    # Pushing back what Orthanc retrieved from us: recognised, no new study or pseudonym.
    studies_before = set(Study.objects.values_list("study_instance_uid", flat=True))
    instances_before = Instance.objects.count()
    orthanc.post("/dicom-web/servers/radreview/stow", {"Resources": in_orthanc})
    assert set(Study.objects.values_list("study_instance_uid", flat=True)) == studies_before
    assert Instance.objects.count() == instances_before
