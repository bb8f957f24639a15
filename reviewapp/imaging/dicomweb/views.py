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
from collections.abc import Iterator
from typing import Any

from django.core.files.storage import default_storage
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from reviewapp.accounts.authentication import TokenAuthentication
from reviewapp.core.permissions import IsCoordinator
from reviewapp.imaging.dicomweb import media, qido, selectors, stow
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


class _FirstRenderer(BaseContentNegotiation):
    """Each resource negotiates its own media types (with transfer syntaxes) below; DRF's
    negotiation would answer 406 to every multipart Accept before the view runs."""

    def select_parser(self, request: Request, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: Any, format_suffix: Any = None) -> Any:
        return (renderers[0], renderers[0].media_type)


class _Base(APIView):
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _FirstRenderer
    parser_classes: list[Any] = []


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
    request: Request, queryset: Any, keys: dict[str, qido.Matcher], render: Any
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
        rows = qido.query_apply(queryset, query)
    except qido.QueryError as exc:
        raise exceptions.ValidationError({"detail": str(exc)}) from exc
    results = [render(row) for row in rows]
    if not is_full:
        results = [qido.reader_result(result) for result in results]
    response = _dicom_json_response(json.dumps(results))
    if query.ignored:
        names = ", ".join(sorted(set(query.ignored)))
        response["Warning"] = (
            f'299 radreview "The following attributes are not supported for matching: {names}"'
        )
    return response


_QIDO_PARAMS = [
    OpenApiParameter("limit", OpenApiTypes.INT, description="At most this many results (<= 1000)."),
    OpenApiParameter("offset", OpenApiTypes.INT, description="Skip this many results."),
]
_JSON_LIST = OpenApiResponse(description="DICOM JSON array (PS3.18 F.2)")


class StudiesView(_Base):
    """QIDO-RS study search (GET) and STOW-RS storage (POST)."""

    def get_permissions(self) -> list[BasePermission]:
        if self.request.method == "POST":
            return [IsAuthenticated(), IsCoordinator()]
        return [IsAuthenticated()]

    @extend_schema(
        operation_id="dicomweb_studies_search",
        summary="QIDO-RS: search studies",
        description="Match keys: StudyInstanceUID, PatientID, AccessionNumber, StudyDate "
        "(YYYYMMDD or range), ModalitiesInStudy, StudyDescription (wildcards * and ?).",
        parameters=_QIDO_PARAMS,
        responses={200: _JSON_LIST, 400: None, 401: None, 406: None},
    )
    def get(self, request: Request) -> HttpResponse:
        base = _base_url(request)
        return _qido(
            request,
            selectors.dicomweb_studies(user=request.user),
            qido.STUDY_KEYS,
            lambda s: qido.study_json(s, retrieve_url=f"{base}/studies/{s.study_instance_uid}"),
        )

    @extend_schema(
        operation_id="dicomweb_studies_store",
        summary="STOW-RS: store instances",
        description='Body: multipart/related; type="application/dicom". Every instance goes '
        "through the import (safety checks, de-identification). 200: all stored; 202: some "
        "failed (FailedSOPSequence says why); 409: none stored. Coordinators only.",
        request={"multipart/related": OpenApiTypes.BINARY},
        responses={
            200: _JSON_LIST,
            202: _JSON_LIST,
            400: None,
            403: None,
            409: _JSON_LIST,
            413: None,
            415: None,
        },
    )
    def post(self, request: Request) -> HttpResponse:
        return stow.stow_handle(request, base_url=_base_url(request))


class SeriesSearchView(_Base):
    @extend_schema(
        operation_id="dicomweb_series_search",
        summary="QIDO-RS: search the series of a study",
        description="Match keys: SeriesInstanceUID, Modality, SeriesNumber, SeriesDescription, "
        "BodyPartExamined.",
        parameters=_QIDO_PARAMS,
        responses={200: _JSON_LIST, 400: None, 401: None, 406: None},
    )
    def get(self, request: Request, study_uid: str) -> HttpResponse:
        base = _base_url(request)
        return _qido(
            request,
            selectors.dicomweb_series(user=request.user, study_uid=study_uid),
            qido.SERIES_KEYS,
            lambda s: qido.series_json(
                s,
                retrieve_url=f"{base}/studies/{s.study.study_instance_uid}/series/"
                f"{s.series_instance_uid}",
            ),
        )


class InstancesSearchView(_Base):
    @extend_schema(
        operation_id="dicomweb_instances_search",
        summary="QIDO-RS: search the instances of a series",
        description="Match keys: SOPInstanceUID, SOPClassUID, InstanceNumber.",
        parameters=_QIDO_PARAMS,
        responses={200: _JSON_LIST, 400: None, 401: None, 406: None},
    )
    def get(self, request: Request, study_uid: str, series_uid: str) -> HttpResponse:
        base = _base_url(request)
        return _qido(
            request,
            selectors.dicomweb_instances(
                user=request.user, study_uid=study_uid, series_uid=series_uid
            ),
            qido.INSTANCE_KEYS,
            lambda i: qido.instance_json(
                i,
                retrieve_url=f"{base}/studies/{i.series.study.study_instance_uid}/series/"
                f"{i.series.series_instance_uid}/instances/{i.sop_instance_uid}",
            ),
        )


# --- WADO-RS metadata --------------------------------------------------------------------


def _metadata(request: Request, **where: str | None) -> HttpResponse:
    try:
        media.json_acceptable(request.META.get("HTTP_ACCEPT"))
    except media.NotAcceptableError as exc:
        raise _not_acceptable(exc) from exc
    rows = selectors.dicomweb_metadata(user=request.user, **where)  # type: ignore[arg-type]
    if not rows:
        raise _not_found()
    # The audience is part of the version: a browser that cached a coordinator's headers
    # must not have them confirmed (304) to a reader who logs in on the same machine.
    is_full = selectors.dicomweb_header_is_full(user=request.user)
    audience = "full" if is_full else f"reader {READER_VIEW_VERSION}"
    stamp = hashlib.sha256(
        "\n".join([audience, *(f"{sop} {updated}" for sop, updated, _ in rows)]).encode()
    )
    etag = f'"{stamp.hexdigest()[:40]}"'
    if etag in [tag.strip() for tag in request.META.get("HTTP_IF_NONE_MATCH", "").split(",")]:
        response = HttpResponse(status=304)
    else:
        response = _dicom_json_response("[" + ",".join(text for _, _, text in rows) + "]")
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


def _stream_instances(
    instances: list[Instance], boundary: str, *, is_full: bool
) -> Iterator[bytes]:
    for number, instance in enumerate(instances):
        yield media.multipart_part_head(
            boundary=boundary,
            content_type=f"application/dicom; transfer-syntax={instance.transfer_syntax_uid}",
            first=number == 0,
        )
        with default_storage.open(str(instance.file.name), "rb") as handle:
            if not is_full:
                yield reader_instance_bytes(handle)
                continue
            while block := handle.read(FILE_CHUNK):
                yield block
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
        media.dicom_media_acceptable(request.META.get("HTTP_ACCEPT"), transfer_syntaxes=syntaxes)
    except media.NotAcceptableError as exc:
        raise _not_acceptable(exc) from exc
    boundary = media.multipart_boundary()
    response = StreamingHttpResponse(
        _stream_instances(
            instances, boundary, is_full=selectors.dicomweb_header_is_full(user=request.user)
        ),
        content_type=media.multipart_content_type(
            part_type="application/dicom", boundary=boundary, transfer_syntax=None
        ),
    )
    response["Cache-Control"] = METADATA_CACHE_CONTROL
    response["Vary"] = "Authorization, Cookie"
    return response


_RETRIEVE_DESCRIPTION = (
    "Coordinators, analysts and admins get the stored files. Readers get each instance "
    "rebuilt with only the attributes display needs and the pixel data as stored."
)
_RETRIEVE_RESPONSES = {
    200: OpenApiResponse(description='multipart/related; type="application/dicom"'),
    401: None,
    404: None,
    406: None,
}


class StudyRetrieveView(_Base):
    @extend_schema(
        operation_id="dicomweb_study_retrieve",
        summary="WADO-RS: every instance of a study, as stored",
        description=_RETRIEVE_DESCRIPTION,
        responses=_RETRIEVE_RESPONSES,
    )
    def get(self, request: Request, study_uid: str) -> StreamingHttpResponse:
        return _retrieve(request, study_uid=study_uid)


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
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = FRAME_CACHE_CONTROL
    return response


class FramesView(_Base):
    @extend_schema(
        operation_id="dicomweb_frames_retrieve",
        summary="WADO-RS: frames of an instance, as stored (no transcoding)",
        description="Frame numbers from 1, comma-separated. Accept: multipart/related; "
        'type="application/octet-stream"; transfer-syntax=* (or the stored syntax, or the '
        "image media type of a compressed syntax). Anything needing transcoding: 406.",
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
            OpenApiParameter("transferSyntax", str, description="must be the stored one or *"),
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
        if wanted and wanted not in ("*", instance.transfer_syntax_uid):
            raise exceptions.NotAcceptable(
                detail=f"this instance is stored as {instance.transfer_syntax_uid} and is served "
                "only as stored (no transcoding)"
            )
        response: HttpResponseBase
        if selectors.dicomweb_header_is_full(user=request.user):
            response = FileResponse(
                default_storage.open(str(instance.file.name), "rb"),
                content_type="application/dicom",
            )
        else:
            with default_storage.open(str(instance.file.name), "rb") as handle:
                response = HttpResponse(
                    reader_instance_bytes(handle), content_type="application/dicom"
                )
        response["Cache-Control"] = METADATA_CACHE_CONTROL
        response["Vary"] = "Authorization, Cookie"
        return response
