"""STOW-RS: stream the parts to disk, import them like any upload, answer per instance.

Each part goes through the archive's import service (safety checks, de-identification,
indexing), so an instance stored over STOW-RS is judged by the same rules as an upload.
References in the answer are in the order of the request's parts; stored instances carry
their de-identified UIDs (what later retrievals use), failed ones the UIDs the client sent.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pydicom
from django.conf import settings
from django.http import HttpResponse
from pydicom.errors import InvalidDicomError
from rest_framework import exceptions
from rest_framework.request import Request

from reviewapp.imaging.dicomweb.multipart import (
    BodyTooLargeError,
    MultipartError,
    Part,
    multipart_params,
    multipart_to_files,
    single_part_to_file,
)
from reviewapp.imaging.ingest.services import import_batch_create, import_batch_run
from reviewapp.imaging.ingest.types import FileOutcome, IncomingFile
from reviewapp.imaging.models import ImportBatch

DEFAULT_MAX_BYTES = 4 * 1024**3
# PS3.18 / PS3.4 status codes used in FailureReason and WarningReason.
PROCESSING_FAILURE = 0x0110
CANNOT_UNDERSTAND = 0xC000
COERCION_OF_DATA_ELEMENTS = 0xB000


class UnsupportedMediaTypeError(exceptions.APIException):
    status_code = 415
    default_detail = 'send multipart/related; type="application/dicom", or application/dicom'


class PayloadTooLargeError(exceptions.APIException):
    status_code = 413
    default_detail = "the request body is too large"


def _max_bytes() -> int:
    return int(getattr(settings, "DICOMWEB_STOW_MAX_BYTES", DEFAULT_MAX_BYTES))


def stow_handle(request: Request, *, base_url: str, study_uid: str | None = None) -> HttpResponse:
    """Store every application/dicom part of the request; answer PS3.18 10.5.3.

    The body is multipart/related, or a single application/dicom instance. With ``study_uid``
    (``POST /studies/{study}``) an instance of another study is refused, as PS3.18 asks.
    """
    content_type = request.META.get("CONTENT_TYPE", "")
    single = content_type.split(";", 1)[0].strip().lower() == "application/dicom"
    boundary = ""
    if not single:
        try:
            boundary, part_type = multipart_params(content_type)
        except MultipartError as exc:
            raise UnsupportedMediaTypeError(detail=str(exc)) from exc
        if part_type not in ("", "application/dicom"):
            raise UnsupportedMediaTypeError(
                detail=f'parts of type "{part_type}" are not accepted: send application/dicom'
            )
    declared = request.META.get("CONTENT_LENGTH")
    if declared and declared.isdigit() and int(declared) > _max_bytes():
        raise PayloadTooLargeError(detail=f"the request body is larger than {_max_bytes()} bytes")
    scratch = Path(settings.DATA_DIR) / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="stow-", dir=scratch))
    try:
        try:
            # The Django request is read as a stream: the body goes to disk part by part.
            if single:
                parts = [
                    single_part_to_file(
                        request._request,
                        dest=folder,
                        max_bytes=_max_bytes(),
                        content_type="application/dicom",
                    )
                ]
                parts = [part for part in parts if part.size]
            else:
                parts = multipart_to_files(
                    request._request,
                    boundary=boundary,
                    dest=folder,
                    max_bytes=_max_bytes(),
                    default_type="application/dicom",
                )
        except BodyTooLargeError as exc:
            raise PayloadTooLargeError(detail=str(exc)) from exc
        except MultipartError as exc:
            raise exceptions.ValidationError(
                {"detail": f"malformed multipart body: {exc}"}
            ) from exc
        if not parts:
            raise exceptions.ValidationError({"detail": "the request holds no instance"})
        return _store(parts, user=request.user, base_url=base_url, study_uid=study_uid)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _is_dicom(part: Part) -> bool:
    return part.content_type.split(";")[0].strip().lower() == "application/dicom"


def _store(parts: list[Part], *, user: Any, base_url: str, study_uid: str | None) -> HttpResponse:
    refusals: dict[int, str] = {}
    for part in parts:
        if not _is_dicom(part):
            refusals[part.number] = f"not application/dicom ({part.content_type})"
        elif study_uid is not None and _sent_uids(part.path)[2] not in ("", study_uid):
            refusals[part.number] = "it belongs to another study than the one posted to"
    dicom_parts = [p for p in parts if p.number not in refusals]
    outcomes: list[FileOutcome] = []
    if dicom_parts:
        batch = import_batch_create(
            source=ImportBatch.Source.STOW, created_by=user, files_total=len(dicom_parts)
        )
        outcomes = import_batch_run(
            batch=batch,
            files=[IncomingFile(name=f"part {p.number}", path=p.path) for p in dicom_parts],
        )
    by_name = {outcome.name: outcome for outcome in outcomes}
    referenced: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    held: list[str] = []
    for part in parts:
        name = f"part {part.number}"
        outcome = by_name.get(name)
        if outcome is None:
            refusal = refusals.get(part.number, "not imported")
            failed.append(_failed_item(part, reason=f"{name}: {refusal}"))
        elif outcome.status in ("imported", "duplicate", "quarantined"):
            item = _referenced_item(outcome, base_url=base_url)
            if outcome.status == "quarantined":
                # Stored, but held back from readers until a coordinator decides.
                item["00081196"] = {"vr": "US", "Value": [COERCION_OF_DATA_ELEMENTS]}
                item["00000902"] = {
                    "vr": "LO",
                    "Value": [f"{name}: held for review: {outcome.reason}"],
                }
                held.append(name)
            referenced.append(item)
        else:
            failed.append(_failed_item(part, reason=f"{name}: {outcome.reason}"))
    body: dict[str, Any] = {}
    if referenced:
        body["00081199"] = {"vr": "SQ", "Value": referenced}
        studies = {item["_study"] for item in referenced}
        if len(studies) == 1:
            body["00081190"] = {"vr": "UR", "Value": [f"{base_url}/studies/{studies.pop()}"]}
    for item in referenced:
        del item["_study"]
    if failed:
        body["00081198"] = {"vr": "SQ", "Value": failed}
    status = 409 if not referenced else 202 if failed or held else 200
    response = HttpResponse(json.dumps(body), content_type="application/dicom+json", status=status)
    if held:
        # PS3.18 answers "stored with warnings" with 202 and a Warning header, which clients
        # that read only the status line (Orthanc) show; the reasons are in the body.
        response["Warning"] = (
            f'299 radreview "{len(held)} instance(s) stored but held for review before '
            f'readers may see them: {", ".join(held)}"'
        )
    return response


def _referenced_item(outcome: FileOutcome, *, base_url: str) -> dict[str, Any]:
    url = (
        f"{base_url}/studies/{outcome.study_instance_uid}/series/{outcome.series_instance_uid}"
        f"/instances/{outcome.sop_instance_uid}"
    )
    return {
        "_study": outcome.study_instance_uid,
        "00081150": {"vr": "UI", "Value": [outcome.sop_class_uid]},
        "00081155": {"vr": "UI", "Value": [outcome.sop_instance_uid]},
        "00081190": {"vr": "UR", "Value": [url]},
    }


def _failed_item(part: Part, *, reason: str) -> dict[str, Any]:
    sop_class, sop_instance, _ = _sent_uids(part.path)
    return {
        "00081150": _uid(sop_class),
        "00081155": _uid(sop_instance),
        "00081197": {
            "vr": "US",
            "Value": [CANNOT_UNDERSTAND if not sop_instance else PROCESSING_FAILURE],
        },
        "00000902": {"vr": "LO", "Value": [reason]},
    }


def _uid(value: str) -> dict[str, Any]:
    return {"vr": "UI", "Value": [value]} if value else {"vr": "UI"}


def _sent_uids(path: Path) -> tuple[str, str, str]:
    """The SOP Class, SOP Instance and Study Instance UIDs as the client sent them, when they
    can be read."""
    try:
        ds = pydicom.dcmread(
            path,
            stop_before_pixels=True,
            specific_tags=["SOPClassUID", "SOPInstanceUID", "StudyInstanceUID"],
        )
        return (
            str(ds.get("SOPClassUID", "")),
            str(ds.get("SOPInstanceUID", "")),
            str(ds.get("StudyInstanceUID", "")),
        )
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError, AttributeError):
        return "", "", ""
