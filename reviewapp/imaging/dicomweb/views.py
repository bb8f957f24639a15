"""DICOMweb interfaces: parse the request, call one selector or service, write the answer.

Anonymous requests get 401; a study the user may not see answers 404 exactly like one that
does not exist. Token authentication comes first so scripts (dicomweb-client) get a 401 with
a ``WWW-Authenticate`` challenge; the viewer uses its session.

Readers receive headers cut to what display needs (reader_view.py) on every resource:
metadata, QIDO results and match keys, whole-instance retrieves. Frames carry no header.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from typing import Any

from django.core.files.storage import default_storage
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.authentication import SessionScheme, TokenScheme
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from pydicom.uid import UID
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from reviewapp.accounts.authentication import BearerTokenAuthentication, TokenAuthentication
from reviewapp.core.errors import ApplicationError
from reviewapp.core.permissions import IsCoordinator
from reviewapp.imaging import previews
from reviewapp.imaging.dicomweb import media, qido, selectors, stow, transcode
from reviewapp.imaging.dicomweb.frames import (
    FIRST_FRAMES_MAX,
    FramePart,
    InstanceListError,
    first_frame_location,
    frames_body,
    instance_list_parse,
)
from reviewapp.imaging.dicomweb.reader_view import READER_VIEW_VERSION, reader_instance_bytes
from reviewapp.imaging.models import Instance

DICOM_JSON = "application/dicom+json"
FRAME_CACHE_CONTROL = "private, max-age=31536000, immutable"
# Metadata can change (a re-import, a permission change): revalidate each time, cheaply.
METADATA_CACHE_CONTROL = "private, no-cache"
FILE_CHUNK = 1 << 20

logger = logging.getLogger(__name__)


class _FirstRenderer(BaseContentNegotiation):
    """Each resource negotiates its own media types (with transfer syntaxes) below; DRF's
    negotiation would answer 406 to every multipart Accept before the view runs."""

    def select_parser(self, request: Request, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: Any, format_suffix: Any = None) -> Any:
        return (renderers[0], renderers[0].media_type)


class DicomwebSessionAuthentication(SessionAuthentication):
    """DRF checks CSRF on its own Request, whose ``POST`` runs the view's parsers: DICOMweb has
    none (STOW-RS bodies are streamed to disk), so a browser's STOW-RS would be answered 415.
    Django's request is checked instead: it never reads a multipart/related or
    application/dicom body, and the token comes from the X-CSRFToken header."""

    def enforce_csrf(self, request: Request) -> None:
        super().enforce_csrf(request._request)  # type: ignore[arg-type]


class _DicomwebSessionScheme(SessionScheme):
    """The API schema documents this authentication as the session cookie it is."""

    target_class = "reviewapp.imaging.dicomweb.views.DicomwebSessionAuthentication"
    name = "dicomwebCookieAuth"  # the same cookie; a scheme name belongs to one class


class _BearerScheme(TokenScheme):
    """The API token under the Bearer scheme has a scheme name of its own in the schema."""

    target_class = "reviewapp.accounts.authentication.BearerTokenAuthentication"
    name = "bearerTokenAuth"
    match_subclasses = False
    priority = 0


class _Base(APIView):
    authentication_classes = [
        TokenAuthentication,
        BearerTokenAuthentication,
        DicomwebSessionAuthentication,
    ]
    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _FirstRenderer
    parser_classes: list[Any] = []

    def handle_exception(self, exc: Exception) -> Response:
        # A stored file gone from storage (deleted by hand, a restore that missed it) is a
        # missing object to the client and a named fault to the operator, not a 500. Storage
        # names hold de-identified UIDs only (ingest._storage_name).
        if isinstance(exc, FileNotFoundError):
            logger.error("dicomweb: stored file missing: %s", exc.filename or exc)
            exc = exceptions.NotFound(detail="The stored file of this instance is missing.")
        return super().handle_exception(exc)


def _not_acceptable(exc: media.NotAcceptableError) -> exceptions.NotAcceptable:
    return exceptions.NotAcceptable(detail=exc.message)


def _not_found(what: str = "study, series or instance") -> exceptions.NotFound:
    return exceptions.NotFound(detail=f"No such {what}.")


def _dicom_json_response(body: bytes | str, *, status: int = 200) -> HttpResponse:
    response = HttpResponse(body, content_type=DICOM_JSON, status=status)
    response["Cache-Control"] = METADATA_CACHE_CONTROL
    return response


def _base_url(request: Request) -> str:
    return request.build_absolute_uri("/dicomweb")


# --- QIDO-RS -----------------------------------------------------------------------------


def _qido(
    request: Request,
    queryset: Any,
    keys: dict[str, qido.Matcher],
    render: Any,
    *,
    level: str,
) -> HttpResponse:
    try:
        media.json_acceptable(request.META.get("HTTP_ACCEPT"))
    except media.NotAcceptableError as exc:
        raise _not_acceptable(exc) from exc
    is_full = selectors.dicomweb_header_is_full(user=request.user)
    if not is_full:
        keys = qido.reader_match_keys(keys)
    try:
        query = qido.query_parse(dict(request.query_params.lists()), keys)
        rows, cut = qido.query_apply(queryset, query)
    except qido.QueryError as exc:
        raise exceptions.ValidationError({"detail": str(exc)}) from exc
    if level == "instance":
        headers = {row.pk: row.dicom_json for row in rows}
    else:
        headers = selectors.dicomweb_headers(rows=rows)
    results = [
        qido.result_complete(render(row), header=headers.get(row.pk), level=level, query=query)
        for row in rows
    ]
    if not is_full:
        results = [qido.reader_result(result) for result in results]
    response = _dicom_json_response(json.dumps(results))
    warnings = qido.query_warnings(query, cut=cut)
    if warnings:
        response["Warning"] = ", ".join(warnings)
    return response


_QIDO_PARAMS = [
    OpenApiParameter("limit", OpenApiTypes.INT, description="At most this many results (<= 1000)."),
    OpenApiParameter("offset", OpenApiTypes.INT, description="Skip this many results."),
    OpenApiParameter(
        "includefield",
        OpenApiTypes.STR,
        description="More attributes to return (keywords or tags, comma-separated), or all.",
    ),
    OpenApiParameter(
        "fuzzymatching",
        OpenApiTypes.BOOL,
        description="Not offered: literal matching is done, and a Warning says so.",
    ),
]
_JSON_LIST = OpenApiResponse(description="DICOM JSON array (PS3.18 F.2)")
_STUDY_MATCH = (
    "StudyInstanceUID, PatientName, PatientID, AccessionNumber, StudyDate (YYYYMMDD or range), "
    "StudyTime (HHMMSS or range), ModalitiesInStudy, StudyDescription, ReferringPhysicianName "
    "(wildcards * and ? where the attribute is text)"
)
_SERIES_MATCH = "SeriesInstanceUID, Modality, SeriesNumber, SeriesDescription, BodyPartExamined"
_INSTANCE_MATCH = "SOPInstanceUID, SOPClassUID, InstanceNumber"
_QIDO_RESPONSES = {200: _JSON_LIST, 400: None, 401: None, 406: None}
_STOW_DESCRIPTION = (
    'Body: multipart/related; type="application/dicom", or one application/dicom instance. '
    "Every instance goes through the import (safety checks, de-identification). 200: all "
    "stored; 202: some failed (FailedSOPSequence says why) or are held for review (a Warning "
    "header and WarningReason say so); 409: none stored. Coordinators and admins, with a "
    "token or with the session and its CSRF token (X-CSRFToken)."
)
_STOW_REQUEST = {"multipart/related": OpenApiTypes.BINARY, "application/dicom": OpenApiTypes.BINARY}
_STOW_RESPONSES = {
    200: _JSON_LIST,
    202: _JSON_LIST,
    400: None,
    403: None,
    409: _JSON_LIST,
    413: None,
    415: None,
}


def _study_url(base: str, study: Any) -> str:
    return f"{base}/studies/{study.study_instance_uid}"


def _series_url(base: str, series: Any) -> str:
    return f"{_study_url(base, series.study)}/series/{series.series_instance_uid}"


def _instance_url(base: str, instance: Any) -> str:
    return f"{_series_url(base, instance.series)}/instances/{instance.sop_instance_uid}"


class StudiesView(_Base):
    """QIDO-RS study search (GET) and STOW-RS storage (POST)."""

    def get_permissions(self) -> list[BasePermission]:
        if self.request.method == "POST":
            return [IsAuthenticated(), IsCoordinator()]
        return [IsAuthenticated()]

    @extend_schema(
        operation_id="dicomweb_studies_search",
        summary="QIDO-RS: search studies",
        description=f"Match keys: {_STUDY_MATCH}.",
        parameters=_QIDO_PARAMS,
        responses=_QIDO_RESPONSES,
    )
    def get(self, request: Request) -> HttpResponse:
        base = _base_url(request)
        return _qido(
            request,
            selectors.dicomweb_studies(user=request.user),
            qido.STUDY_KEYS,
            lambda s: qido.study_json(s, retrieve_url=_study_url(base, s)),
            level="study",
        )

    @extend_schema(
        operation_id="dicomweb_studies_store",
        summary="STOW-RS: store instances",
        description=_STOW_DESCRIPTION,
        request=_STOW_REQUEST,
        responses=_STOW_RESPONSES,
    )
    def post(self, request: Request) -> HttpResponse:
        return stow.stow_handle(request, base_url=_base_url(request))


class SeriesSearchView(_Base):
    @extend_schema(
        operation_id="dicomweb_series_search",
        summary="QIDO-RS: search the series of a study, or of every study (/series)",
        description=f"Match keys: {_SERIES_MATCH}; across studies also {_STUDY_MATCH}, and "
        "each result carries its study's attributes.",
        parameters=_QIDO_PARAMS,
        responses=_QIDO_RESPONSES,
    )
    def get(self, request: Request, study_uid: str | None = None) -> HttpResponse:
        base = _base_url(request)
        return _qido(
            request,
            selectors.dicomweb_series(user=request.user, study_uid=study_uid),
            qido.SERIES_KEYS,
            lambda s: qido.series_json(
                s, retrieve_url=_series_url(base, s), with_study=study_uid is None
            ),
            level="series",
        )


class InstancesSearchView(_Base):
    @extend_schema(
        operation_id="dicomweb_instances_search",
        summary="QIDO-RS: search the instances of a series, of a study, or of every study",
        description=f"Match keys: {_INSTANCE_MATCH}; above the series level also "
        f"{_SERIES_MATCH}, across studies also {_STUDY_MATCH}. Results carry the attributes "
        "of the levels above the one searched.",
        parameters=_QIDO_PARAMS,
        responses=_QIDO_RESPONSES,
    )
    def get(
        self, request: Request, study_uid: str | None = None, series_uid: str | None = None
    ) -> HttpResponse:
        base = _base_url(request)
        return _qido(
            request,
            selectors.dicomweb_instances(
                user=request.user, study_uid=study_uid, series_uid=series_uid
            ),
            qido.INSTANCE_KEYS,
            lambda i: qido.instance_json(
                i,
                retrieve_url=_instance_url(base, i),
                with_series=series_uid is None,
                with_study=study_uid is None,
            ),
            level="instance",
        )


@extend_schema_view(get=extend_schema(operation_id="dicomweb_all_series_search"))
class AllSeriesSearchView(SeriesSearchView):
    """/series: the series of every study the user may see."""


@extend_schema_view(get=extend_schema(operation_id="dicomweb_study_instances_search"))
class StudyInstancesSearchView(InstancesSearchView):
    """/studies/{st}/instances: every instance of a study."""


@extend_schema_view(get=extend_schema(operation_id="dicomweb_all_instances_search"))
class AllInstancesSearchView(InstancesSearchView):
    """/instances: the instances of every study the user may see."""


# --- WADO-RS metadata --------------------------------------------------------------------


PIXEL_DATA_TAG = "7FE00010"


def _with_pixel_data_uri(row: selectors.MetadataRow, *, base_url: str) -> str:
    """The instance's DICOM JSON with Pixel Data named by its BulkDataURI (PS3.18 F.2.6):
    the stored header leaves bulk data out, and clients such as OHIF look for the URI."""
    uri = (
        f"{base_url}/studies/{row.study_uid}/series/{row.series_uid}/instances/{row.sop_uid}"
        f"/bulkdata/{PIXEL_DATA_TAG}"
    )
    encapsulated = UID(row.transfer_syntax_uid).is_encapsulated
    element = json.dumps({"vr": "OB" if encapsulated else "OW", "BulkDataURI": uri})
    text = row.json_text.rstrip()
    joiner = "" if text == "{}" else ","
    return f'{text[:-1]}{joiner}"{PIXEL_DATA_TAG}":{element}}}'


def _metadata(request: Request, **where: str | None) -> HttpResponse:
    try:
        media.json_acceptable(request.META.get("HTTP_ACCEPT"))
    except media.NotAcceptableError as exc:
        raise _not_acceptable(exc) from exc
    rows = selectors.dicomweb_metadata(user=request.user, **where)  # type: ignore[arg-type]
    if not rows:
        raise _not_found()
    # The audience is part of the version: a browser that cached a coordinator's headers
    # must not have them confirmed (304) to a reader who logs in on the same machine. The
    # base URL too: the BulkDataURIs name it.
    is_full = selectors.dicomweb_header_is_full(user=request.user)
    audience = "full" if is_full else f"reader {READER_VIEW_VERSION}"
    base_url = _base_url(request)
    stamp = hashlib.sha256(
        "\n".join([audience, base_url, *(f"{row.sop_uid} {row.stamp}" for row in rows)]).encode()
    )
    etag = f'"{stamp.hexdigest()[:40]}"'
    if etag in [tag.strip() for tag in request.META.get("HTTP_IF_NONE_MATCH", "").split(",")]:
        response = HttpResponse(status=304)
    else:
        response = _dicom_json_response(
            "[" + ",".join(_with_pixel_data_uri(row, base_url=base_url) for row in rows) + "]"
        )
    response["ETag"] = etag
    response["Cache-Control"] = METADATA_CACHE_CONTROL
    response["Vary"] = "Authorization, Cookie"
    return response


_METADATA_RESPONSES = {200: _JSON_LIST, 304: None, 401: None, 404: None, 406: None}


class StudyMetadataView(_Base):
    @extend_schema(
        operation_id="dicomweb_study_metadata",
        summary="WADO-RS: metadata of every instance in a study",
        responses=_METADATA_RESPONSES,
    )
    def get(self, request: Request, study_uid: str) -> HttpResponse:
        return _metadata(request, study_uid=study_uid)


class SeriesMetadataView(_Base):
    @extend_schema(
        operation_id="dicomweb_series_metadata",
        summary="WADO-RS: metadata of every instance in a series",
        responses=_METADATA_RESPONSES,
    )
    def get(self, request: Request, study_uid: str, series_uid: str) -> HttpResponse:
        return _metadata(request, study_uid=study_uid, series_uid=series_uid)


class InstanceMetadataView(_Base):
    @extend_schema(
        operation_id="dicomweb_instance_metadata",
        summary="WADO-RS: metadata of one instance",
        responses=_METADATA_RESPONSES,
    )
    def get(self, request: Request, study_uid: str, series_uid: str, sop_uid: str) -> HttpResponse:
        return _metadata(request, study_uid=study_uid, series_uid=series_uid, sop_uid=sop_uid)


# --- WADO-RS instances and frames ----------------------------------------------------------


def _instance_bytes(instance: Instance, *, is_full: bool, target: str | None) -> Iterator[bytes]:
    """The stored file in blocks, or (reader's view, or another transfer syntax asked for)
    the instance rebuilt in memory."""
    with default_storage.open(str(instance.file.name), "rb") as handle:
        if is_full and target in (None, instance.transfer_syntax_uid):
            while block := handle.read(FILE_CHUNK):
                yield block
            return
        data = handle.read() if is_full else reader_instance_bytes(handle)
    yield data if target is None else transcode.instance_transcode(data, target=target)


def _stream_instances(
    instances: list[Instance], boundary: str, *, is_full: bool, target: str | None
) -> Iterator[bytes]:
    for number, instance in enumerate(instances):
        syntax = target or instance.transfer_syntax_uid
        yield media.multipart_part_head(
            boundary=boundary,
            content_type=f"application/dicom; transfer-syntax={syntax}",
            first=number == 0,
        )
        yield from _instance_bytes(instance, is_full=is_full, target=target)
    yield media.multipart_tail(boundary=boundary)


def _retrieve(request: Request, **where: str | None) -> StreamingHttpResponse:
    instances = list(
        selectors.dicomweb_instances(user=request.user, **where)
        .select_related(None)
        .only("file", "transfer_syntax_uid")
    )
    if not instances:
        raise _not_found()
    syntaxes = {instance.transfer_syntax_uid for instance in instances}
    try:
        target = media.dicom_transfer_syntax_choose(
            request.META.get("HTTP_ACCEPT"), transfer_syntaxes=syntaxes
        )
    except media.NotAcceptableError as exc:
        raise _not_acceptable(exc) from exc
    # A stream cannot change its status once begun: a missing file is found before it starts.
    for instance in instances:
        name = str(instance.file.name)
        if not default_storage.exists(name):
            raise FileNotFoundError(2, "stored file missing", name)
    boundary = media.multipart_boundary()
    response = StreamingHttpResponse(
        _stream_instances(
            instances,
            boundary,
            is_full=selectors.dicomweb_header_is_full(user=request.user),
            target=target,
        ),
        content_type=media.multipart_content_type(
            part_type="application/dicom", boundary=boundary, transfer_syntax=target
        ),
    )
    response["Cache-Control"] = METADATA_CACHE_CONTROL
    response["Vary"] = "Authorization, Cookie"
    return response


_RETRIEVE_DESCRIPTION = (
    "Coordinators, analysts and admins get the stored files. Readers get each instance "
    "rebuilt with only the attributes display needs and the pixel data as stored. "
    'Accept: multipart/related; type="application/dicom" with transfer-syntax=* (as stored), '
    "none or 1.2.840.10008.1.2.1 (explicit VR little endian: decoded if stored compressed), "
    "or 1.2.840.10008.1.2 (implicit VR little endian). Other syntaxes: 406."
)
_RETRIEVE_RESPONSES = {
    200: OpenApiResponse(description='multipart/related; type="application/dicom"'),
    401: None,
    404: None,
    406: None,
}


class StudyRetrieveView(_Base):
    """WADO-RS study retrieval (GET) and STOW-RS storage into that study (POST)."""

    def get_permissions(self) -> list[BasePermission]:
        if self.request.method == "POST":
            return [IsAuthenticated(), IsCoordinator()]
        return [IsAuthenticated()]

    @extend_schema(
        operation_id="dicomweb_study_retrieve",
        summary="WADO-RS: every instance of a study, as stored",
        description=_RETRIEVE_DESCRIPTION,
        responses=_RETRIEVE_RESPONSES,
    )
    def get(self, request: Request, study_uid: str) -> StreamingHttpResponse:
        return _retrieve(request, study_uid=study_uid)

    @extend_schema(
        operation_id="dicomweb_study_store",
        summary="STOW-RS: store instances of this study",
        description=_STOW_DESCRIPTION + " An instance of another study fails (FailedSOPSequence).",
        request=_STOW_REQUEST,
        responses=_STOW_RESPONSES,
    )
    def post(self, request: Request, study_uid: str) -> HttpResponse:
        return stow.stow_handle(request, base_url=_base_url(request), study_uid=study_uid)


class SeriesRetrieveView(_Base):
    @extend_schema(
        operation_id="dicomweb_series_retrieve",
        summary="WADO-RS: every instance of a series, as stored",
        description=_RETRIEVE_DESCRIPTION,
        responses=_RETRIEVE_RESPONSES,
    )
    def get(self, request: Request, study_uid: str, series_uid: str) -> StreamingHttpResponse:
        return _retrieve(request, study_uid=study_uid, series_uid=series_uid)


class InstanceRetrieveView(_Base):
    @extend_schema(
        operation_id="dicomweb_instance_retrieve",
        summary="WADO-RS: one instance, as stored",
        description=_RETRIEVE_DESCRIPTION,
        responses=_RETRIEVE_RESPONSES,
    )
    def get(
        self, request: Request, study_uid: str, series_uid: str, sop_uid: str
    ) -> StreamingHttpResponse:
        return _retrieve(request, study_uid=study_uid, series_uid=series_uid, sop_uid=sop_uid)


def frame_numbers_parse(text: str) -> list[int]:
    """``"1,2,3"`` -> [1, 2, 3]; raise ValidationError naming the bad item."""
    numbers = []
    for item in text.split(","):
        if not item.strip().isdigit() or int(item) < 1:
            raise exceptions.ValidationError(
                {"detail": f'frame number "{item}" is not a whole number from 1'}
            )
        numbers.append(int(item))
    return numbers


def _frames_answer(parts: list[FramePart], *, accept: str | None) -> HttpResponse:
    """The multipart/related answer Cornerstone3D and dicomweb-client both decode."""
    try:
        body, content_type = frames_body(parts, accept=accept)
    except media.NotAcceptableError as exc:
        raise _not_acceptable(exc) from exc
    except transcode.TranscodeError as exc:
        raise exceptions.NotAcceptable(
            detail=f"{exc}: ask for it as stored (transfer-syntax=*)"
        ) from exc
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = FRAME_CACHE_CONTROL
    return response


class FramesView(_Base):
    @extend_schema(
        operation_id="dicomweb_frames_retrieve",
        summary="WADO-RS: frames of an instance, as stored or decoded",
        description="Frame numbers from 1, comma-separated. Accept: multipart/related; "
        'type="application/octet-stream"; transfer-syntax=* (as stored; or the stored syntax, '
        "or the image media type of a compressed syntax); without a transfer syntax, or "
        "with explicit VR little endian, compressed grayscale frames are decoded. Colour "
        "frames are not decoded, nor re-encoded into another compressed syntax: 406.",
        responses={
            200: OpenApiResponse(description="multipart/related, one part per frame"),
            400: None,
            401: None,
            404: None,
            406: None,
        },
    )
    def get(
        self, request: Request, study_uid: str, series_uid: str, sop_uid: str, frames: str
    ) -> HttpResponse:
        numbers = frame_numbers_parse(frames)
        source = selectors.frame_source_get(
            user=request.user, study_uid=study_uid, series_uid=series_uid, sop_uid=sop_uid
        )
        if source is None:
            raise _not_found()
        count = len(source.frame_ranges)
        missing = [n for n in numbers if n > count]
        if missing:
            raise exceptions.NotFound(
                detail=f"frame {missing[0]} does not exist: this instance has {count} frame(s)"
            )
        return _frames_answer(
            [FramePart(source, number) for number in numbers],
            accept=request.META.get("HTTP_ACCEPT"),
        )


class BulkDataView(_Base):
    @extend_schema(
        operation_id="dicomweb_bulkdata_retrieve",
        summary="WADO-RS: bulk data of an instance (the BulkDataURIs of its metadata)",
        description="Pixel Data (7FE00010) only: every frame, one part each, negotiated as "
        "for frames. Other large binary attributes are not kept in the metadata: 404.",
        responses={
            200: OpenApiResponse(description="multipart/related, one part per frame"),
            401: None,
            404: None,
            406: None,
        },
    )
    def get(
        self, request: Request, study_uid: str, series_uid: str, sop_uid: str, tag: str
    ) -> HttpResponse:
        if tag.upper() != PIXEL_DATA_TAG:
            raise exceptions.NotFound(
                detail=f"only Pixel Data ({PIXEL_DATA_TAG}) is offered as bulk data"
            )
        source = selectors.frame_source_get(
            user=request.user, study_uid=study_uid, series_uid=series_uid, sop_uid=sop_uid
        )
        if source is None:
            raise _not_found()
        return _frames_answer(
            [FramePart(source, number) for number in range(1, len(source.frame_ranges) + 1)],
            accept=request.META.get("HTTP_ACCEPT"),
        )


class FirstFramesView(_Base):
    @extend_schema(
        operation_id="dicomweb_first_frames_retrieve",
        summary="radreview extension: the first frame of each of several instances of a series",
        description="For stacks of single-frame images (CT, MR): one request for many slices "
        "instead of one a slice. The frames come back as stored, in the order listed, one part "
        "each, every part with its Content-Location (the frame's WADO-RS URL) and "
        f"Content-Length. At most {FIRST_FRAMES_MAX} instances per request. Accept as for "
        "the frames resource; a listed instance that does not exist or is not visible: 404.",
        parameters=[
            OpenApiParameter(
                "instances",
                str,
                required=True,
                description="SOP Instance UIDs of the series, comma-separated",
            )
        ],
        responses={
            200: OpenApiResponse(description="multipart/related, one part per instance"),
            400: None,
            401: None,
            404: None,
            406: None,
        },
    )
    def get(self, request: Request, study_uid: str, series_uid: str) -> HttpResponse:
        try:
            sop_uids = instance_list_parse(request.query_params.get("instances"))
        except InstanceListError as exc:
            raise exceptions.ValidationError({"detail": str(exc)}) from exc
        sources = selectors.frame_sources_get(
            user=request.user, study_uid=study_uid, series_uid=series_uid, sop_uids=sop_uids
        )
        missing = [uid for uid in sop_uids if not (uid in sources and sources[uid].frame_ranges)]
        if missing:
            raise exceptions.NotFound(
                detail=f"instance {missing[0]} is not an image of this series visible to you"
            )
        return _frames_answer(
            [
                FramePart(sources[uid], 1, first_frame_location(request.path, uid))
                for uid in sop_uids
            ],
            accept=request.META.get("HTTP_ACCEPT"),
        )


# --- WADO-RS rendered and thumbnail -----------------------------------------------------------

RENDERED_MAX_SIDE = 2048
THUMBNAIL_SIDE = 256


def _rendered_params(request: Request, *, default_side: int) -> tuple[int, int]:
    """(largest side, JPEG quality) from ``viewport=w,h`` and ``quality`` (PS3.18 8.3.5.1)."""
    side = default_side
    viewport = request.query_params.get("viewport")
    if viewport:
        sizes = viewport.split(",")[:2]
        if not all(size.strip().isdigit() and int(size) > 0 for size in sizes):
            raise exceptions.ValidationError(
                {"detail": f'viewport "{viewport}" is not a width,height in pixels'}
            )
        side = min(max(int(size) for size in sizes), RENDERED_MAX_SIDE)
    quality_text = request.query_params.get("quality", "90")
    if not quality_text.isdigit() or not 1 <= int(quality_text) <= 100:
        raise exceptions.ValidationError(
            {"detail": f'quality "{quality_text}" is not a whole number from 1 to 100'}
        )
    return side, int(quality_text)


def _rendered_request(request: Request, default_side: int) -> tuple[str, str, int, int]:
    """What a /rendered request asks for: media type and image format (from Accept), the
    longest side and the quality (from its query)."""
    try:
        media_type, image_format = media.rendered_media_type(request.META.get("HTTP_ACCEPT"))
    except media.NotAcceptableError as exc:
        raise _not_acceptable(exc) from exc
    side, quality = _rendered_params(request, default_side=default_side)
    return media_type, image_format, side, quality


def _rendered(
    request: Request, instance: Instance | None, *, frame: int = 1, default_side: int
) -> HttpResponse:
    if instance is None:
        raise _not_found()
    media_type, image_format, side, quality = _rendered_request(request, default_side)
    if frame > instance.number_of_frames:
        raise exceptions.NotFound(
            detail=f"frame {frame} does not exist: this instance has "
            f"{instance.number_of_frames} frame(s)"
        )
    try:
        image = previews.instance_render(
            instance=instance,
            frame=frame,
            max_side=side,
            image_format=image_format,
            quality=quality,
        )
    except ApplicationError as exc:
        raise exceptions.NotAcceptable(detail=exc.message) from exc
    response = HttpResponse(image, content_type=media_type)
    response["Cache-Control"] = METADATA_CACHE_CONTROL
    response["Vary"] = "Accept, Authorization, Cookie"
    return response


_RENDERED_PARAMS = [
    OpenApiParameter("viewport", str, description="width,height: the largest the image may be"),
    OpenApiParameter("quality", OpenApiTypes.INT, description="JPEG quality, 1 to 100"),
]
_RENDERED_RESPONSES = {
    200: OpenApiResponse(description="image/jpeg (default) or image/png"),
    400: None,
    401: None,
    404: None,
    406: None,
}


class InstanceRenderedView(_Base):
    @extend_schema(
        operation_id="dicomweb_instance_rendered",
        summary="WADO-RS: an instance's first frame as a consumer image",
        description="Windowed as the file asks (VOI LUT or window), else on its 0.5th to "
        "99.5th percentiles.",
        parameters=_RENDERED_PARAMS,
        responses=_RENDERED_RESPONSES,
    )
    def get(self, request: Request, study_uid: str, series_uid: str, sop_uid: str) -> HttpResponse:
        instance = selectors.dicomweb_instances(
            user=request.user, study_uid=study_uid, series_uid=series_uid, sop_uid=sop_uid
        ).first()
        return _rendered(request, instance, default_side=RENDERED_MAX_SIDE)


class SeriesRenderedView(_Base):
    """A series or a study rendered: one consumer image per instance (its first frame), in a
    multipart/related answer, in the instances' order (PS3.18: a multi-resource target)."""

    @extend_schema(
        operation_id="dicomweb_series_rendered",
        summary="WADO-RS: every instance of a series (or study) as a consumer image",
        description="multipart/related; one image/jpeg (default) or image/png part per "
        "instance, its first frame, windowed as for an instance.",
        parameters=_RENDERED_PARAMS,
        responses=_RENDERED_RESPONSES,
    )
    def get(self, request: Request, study_uid: str, series_uid: str | None = None) -> HttpResponse:
        instances = list(
            selectors.dicomweb_instances(
                user=request.user, study_uid=study_uid, series_uid=series_uid
            )
        )
        if not instances:
            raise _not_found()
        media_type, image_format, side, quality = _rendered_request(request, RENDERED_MAX_SIDE)
        boundary = media.multipart_boundary()
        chunks: list[bytes] = []
        for index, instance in enumerate(instances):
            try:
                image = previews.instance_render(
                    instance=instance, max_side=side, image_format=image_format, quality=quality
                )
            except ApplicationError as exc:
                raise exceptions.NotAcceptable(detail=exc.message) from exc
            chunks.append(
                media.multipart_part_head(
                    boundary=boundary, content_type=media_type, first=index == 0, length=len(image)
                )
            )
            chunks.append(image)
        chunks.append(media.multipart_tail(boundary=boundary))
        response = HttpResponse(
            b"".join(chunks),
            content_type=media.multipart_content_type(
                part_type=media_type, boundary=boundary, transfer_syntax=None
            ),
        )
        response["Cache-Control"] = METADATA_CACHE_CONTROL
        response["Vary"] = "Accept, Authorization, Cookie"
        return response


@extend_schema_view(get=extend_schema(operation_id="dicomweb_study_rendered"))
class StudyRenderedView(SeriesRenderedView):
    """The study as a whole: every instance of every series."""


class FramesRenderedView(_Base):
    @extend_schema(
        operation_id="dicomweb_frames_rendered",
        summary="WADO-RS: one frame as a consumer image",
        parameters=_RENDERED_PARAMS,
        responses=_RENDERED_RESPONSES,
    )
    def get(
        self, request: Request, study_uid: str, series_uid: str, sop_uid: str, frames: str
    ) -> HttpResponse:
        numbers = frame_numbers_parse(frames)
        if len(numbers) != 1:
            raise exceptions.ValidationError(
                {"detail": "a rendered frame is one frame: name one frame number"}
            )
        instance = selectors.dicomweb_instances(
            user=request.user, study_uid=study_uid, series_uid=series_uid, sop_uid=sop_uid
        ).first()
        return _rendered(request, instance, frame=numbers[0], default_side=RENDERED_MAX_SIDE)


class ThumbnailView(_Base):
    @extend_schema(
        operation_id="dicomweb_thumbnail",
        summary="WADO-RS: a small image of a study, series or instance",
        description="The series' middle instance stands for the series; the first series "
        f"for the study. At most {THUMBNAIL_SIDE} pixels a side unless viewport says.",
        parameters=_RENDERED_PARAMS,
        responses=_RENDERED_RESPONSES,
    )
    def get(
        self,
        request: Request,
        study_uid: str,
        series_uid: str | None = None,
        sop_uid: str | None = None,
    ) -> HttpResponse:
        instance = selectors.dicomweb_representative_instance(
            user=request.user, study_uid=study_uid, series_uid=series_uid, sop_uid=sop_uid
        )
        return _rendered(request, instance, default_side=THUMBNAIL_SIDE)


@extend_schema_view(get=extend_schema(operation_id="dicomweb_series_thumbnail"))
class SeriesThumbnailView(ThumbnailView):
    pass


@extend_schema_view(get=extend_schema(operation_id="dicomweb_study_thumbnail"))
class StudyThumbnailView(ThumbnailView):
    pass


# --- WADO-URI ------------------------------------------------------------------------------


class WadoUriView(_Base):
    @extend_schema(
        operation_id="dicomweb_wado_uri",
        summary="WADO-URI: one instance as application/dicom",
        parameters=[
            OpenApiParameter("requestType", str, required=True, description="WADO"),
            OpenApiParameter("studyUID", str, required=True),
            OpenApiParameter("seriesUID", str, required=True),
            OpenApiParameter("objectUID", str, required=True),
            OpenApiParameter("contentType", str, description="application/dicom (the only one)"),
            OpenApiParameter(
                "transferSyntax",
                str,
                description="* or the stored one (as stored), or a native little endian one",
            ),
        ],
        responses={
            200: OpenApiResponse(description="application/dicom"),
            400: None,
            401: None,
            404: None,
            406: None,
        },
    )
    def get(self, request: Request) -> HttpResponseBase:
        params = request.query_params
        if params.get("requestType") != "WADO":
            raise exceptions.ValidationError({"requestType": "must be WADO"})
        missing = [name for name in ("studyUID", "seriesUID", "objectUID") if not params.get(name)]
        if missing:
            raise exceptions.ValidationError(dict.fromkeys(missing, "is required"))
        content_type = params.get("contentType", "application/dicom")
        if content_type.split(";")[0].strip() not in ("application/dicom", "*/*"):
            raise exceptions.NotAcceptable(
                detail=f'contentType "{content_type}" is not offered: only application/dicom '
                "(rendered images are not produced by this server)"
            )
        instance = (
            selectors.dicomweb_instances(
                user=request.user,
                study_uid=params["studyUID"],
                series_uid=params["seriesUID"],
                sop_uid=params["objectUID"],
            )
            .select_related(None)
            .only("file", "transfer_syntax_uid")
            .first()
        )
        if instance is None:
            raise _not_found("instance")
        wanted = params.get("transferSyntax")
        target = None if wanted in (None, "", "*") else wanted
        if target and not transcode.transcodable(
            stored=instance.transfer_syntax_uid, target=target
        ):
            raise exceptions.NotAcceptable(
                detail=f"this instance is stored as {instance.transfer_syntax_uid}; it is served "
                f"as stored or decoded into {media.EXPLICIT_VR_LITTLE_ENDIAN} or "
                f"{media.IMPLICIT_VR_LITTLE_ENDIAN}"
            )
        is_full = selectors.dicomweb_header_is_full(user=request.user)
        response: HttpResponseBase
        if is_full and target in (None, instance.transfer_syntax_uid):
            response = FileResponse(
                default_storage.open(str(instance.file.name), "rb"),
                content_type="application/dicom",
            )
        else:
            try:
                body = b"".join(_instance_bytes(instance, is_full=is_full, target=target))
            except transcode.TranscodeError as exc:
                raise exceptions.NotAcceptable(
                    detail=f"{exc}: ask for it as stored (transferSyntax=*)"
                ) from exc
            response = HttpResponse(body, content_type="application/dicom")
        response["Cache-Control"] = METADATA_CACHE_CONTROL
        response["Vary"] = "Authorization, Cookie"
        return response
