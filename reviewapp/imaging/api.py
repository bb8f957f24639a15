"""REST API of the archive: studies (search, detail) and import batches (upload, progress)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from reviewapp.core.pagination import Pagination
from reviewapp.core.permissions import IsCoordinator, IsCoordinatorOrAnalyst
from reviewapp.imaging import selectors
from reviewapp.imaging.ingest import dataset_layouts, datasets, raster, services
from reviewapp.imaging.ingest.upload_limits import (
    declared_length,
    upload_exceeded,
    upload_limit_message,
    upload_too_large,
)
from reviewapp.imaging.models import ImportBatch


class UploadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "upload_too_large"


class SeriesOutputSerializer(serializers.Serializer):
    series_instance_uid = serializers.CharField()
    modality = serializers.CharField()
    series_number = serializers.IntegerField(allow_null=True)
    description = serializers.CharField()
    instance_count = serializers.IntegerField()
    quarantined_count = serializers.IntegerField()


class StudyOutputSerializer(serializers.Serializer):
    public_id = serializers.UUIDField()
    study_instance_uid = serializers.CharField()
    accession_pseudonym = serializers.CharField()
    study_date = serializers.DateField(allow_null=True)
    modalities = serializers.CharField()
    description = serializers.CharField()
    body_part = serializers.CharField()
    stratum = serializers.CharField()
    series_count = serializers.IntegerField()
    instance_count = serializers.IntegerField()
    has_ai_report = serializers.BooleanField()
    has_original_report = serializers.BooleanField()


class StudyListApi(APIView):
    """Search the archive (coordinators, analysts, admins)."""

    permission_classes = [IsCoordinatorOrAnalyst]

    class FilterSerializer(serializers.Serializer):
        modality = serializers.CharField(required=False, default="", allow_blank=True)
        date_from = serializers.DateField(required=False, allow_null=True, default=None)
        date_to = serializers.DateField(required=False, allow_null=True, default=None)
        q = serializers.CharField(required=False, default="", allow_blank=True)
        has_ai_report = serializers.BooleanField(required=False, allow_null=True, default=None)
        stratum = serializers.CharField(required=False, default="", allow_blank=True)

    @extend_schema(
        parameters=[FilterSerializer], responses=StudyOutputSerializer(many=True), tags=["studies"]
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        studies = selectors.studies_search(
            user=request.user,
            modality=data["modality"],
            date_from=data["date_from"],
            date_to=data["date_to"],
            text=data["q"],
            has_ai_report=data["has_ai_report"],
            stratum=data["stratum"],
        )
        paginator = Pagination()
        page = paginator.paginate_queryset(studies, request, view=self)
        return paginator.get_paginated_response(StudyOutputSerializer(page, many=True).data)


class StudyDetailApi(APIView):
    """One study with its series (coordinators, analysts, admins)."""

    permission_classes = [IsCoordinatorOrAnalyst]

    class StudyDetailOutputSerializer(StudyOutputSerializer):
        series = SeriesOutputSerializer(many=True)

    @extend_schema(responses=StudyDetailOutputSerializer, tags=["studies"])
    def get(self, request: Request, public_id: str) -> Response:
        selectors.study_get_for_user(user=request.user, public_id=public_id)
        study = selectors.studies_search(user=request.user).get(public_id=public_id)
        payload = dict(StudyOutputSerializer(study).data)
        series = selectors.study_series_list(user=request.user, study=study)
        payload["series"] = SeriesOutputSerializer(series, many=True).data
        return Response(payload)


class ImportProblemSerializer(serializers.Serializer):
    file_name = serializers.CharField()
    kind = serializers.CharField()
    reason = serializers.CharField()


class ImportBatchOutputSerializer(serializers.Serializer):
    public_id = serializers.UUIDField()
    # A field named "source" shadows DRF's Field.source attribute for type checkers only.
    source = serializers.CharField()  # type: ignore[assignment]
    status = serializers.CharField()
    # The sender of a DICOM push (calling AE title and address), or the research dataset's
    # name and layout; empty otherwise.
    origin = serializers.CharField()
    files_total = serializers.IntegerField()
    files_done = serializers.IntegerField()
    imported_count = serializers.IntegerField()
    duplicate_count = serializers.IntegerField()
    quarantined_count = serializers.IntegerField()
    failed_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    error_message = serializers.CharField()
    page_url = serializers.SerializerMethodField()
    problems = ImportProblemSerializer(many=True, source="problems.all")

    def get_page_url(self, batch: ImportBatch) -> str:
        return reverse("imaging:import_batch_detail", args=[batch.public_id])


class ImportBatchCreateApi(APIView):
    """Upload DICOM files, folders' files or .zip archives as one import batch (coordinators).

    Answers 202 at once: the worker imports the files; poll the batch for progress. A body
    above the server's upload limit is refused with 413 before anything is stored.
    """

    permission_classes = [IsCoordinator]
    parser_classes = [MultiPartParser, FormParser]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Before authentication: the session CSRF check would parse (and spool) the body.
        if request.method == "POST" and upload_too_large(request._request):
            raise UploadTooLarge(
                detail=upload_limit_message(sent=declared_length(request._request))
            )
        super().initial(request, *args, **kwargs)

    @extend_schema(
        request={
            "multipart/form-data": inline_serializer(
                name="ImportBatchUpload",
                fields={
                    "files": serializers.ListField(child=serializers.FileField()),
                    "paths": serializers.ListField(
                        child=serializers.CharField(),
                        required=False,
                        help_text="Folder-relative path of each file, in the same order.",
                    ),
                },
            )
        },
        responses={202: ImportBatchOutputSerializer, 413: None},
        tags=["imports"],
    )
    def post(self, request: Request) -> Response:
        uploads = request.FILES.getlist("files")
        if upload_exceeded(request._request):
            raise UploadTooLarge(detail=upload_limit_message())
        batch = services.import_batch_from_uploads(
            created_by=request.user, uploads=uploads, names=request.POST.getlist("paths")
        )
        batch.refresh_from_db()
        return Response(ImportBatchOutputSerializer(batch).data, status=status.HTTP_202_ACCEPTED)


class ImportBatchDetailApi(APIView):
    """Progress, counts and per-file problems of one import batch (coordinators)."""

    permission_classes = [IsCoordinator]

    @extend_schema(
        responses=ImportBatchOutputSerializer,
        tags=["imports"],
        parameters=[OpenApiParameter("public_id", str, OpenApiParameter.PATH)],
    )
    def get(self, request: Request, public_id: str) -> Response:
        batch = selectors.import_batch_get_for_user(user=request.user, public_id=public_id)
        return Response(ImportBatchOutputSerializer(batch).data)


class DatasetImportCreateApi(APIView):
    """Import a research dataset of PNG/JPEG images, uploaded as one .zip of its folder
    (coordinators): a manifest CSV, the ReXrank test-set JSON or MIMIC-CXR-JPG's layout.

    Answers 202 at once with the import batch; poll it for progress and per-file problems.
    ``release`` confirms that the dataset's publisher removed identifiers from the pixels, so
    the images skip the quarantine, recorded as reviewed by the caller.
    """

    permission_classes = [IsCoordinator]
    parser_classes = [MultiPartParser, FormParser]

    class DatasetImportIn(serializers.Serializer):
        file = serializers.FileField(help_text="A .zip of the dataset's folder.")
        name = serializers.CharField(max_length=datasets.DATASET_NAME_MAX)
        layout = serializers.ChoiceField(choices=dataset_layouts.LAYOUTS)
        modality = serializers.ChoiceField(choices=raster.MODALITIES, default="DX")
        table = serializers.CharField(required=False, default="", allow_blank=True)
        release = serializers.BooleanField(required=False, default=False)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Before authentication: the session CSRF check would parse (and spool) the body.
        if request.method == "POST" and upload_too_large(request._request):
            raise UploadTooLarge(
                detail=upload_limit_message(sent=declared_length(request._request))
            )
        super().initial(request, *args, **kwargs)

    @extend_schema(
        request={"multipart/form-data": DatasetImportIn},
        responses={202: ImportBatchOutputSerializer, 413: None},
        tags=["imports"],
    )
    def post(self, request: Request) -> Response:
        if upload_exceeded(request._request):
            raise UploadTooLarge(detail=upload_limit_message())
        form = self.DatasetImportIn(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        batch = datasets.dataset_import_from_upload(
            created_by=request.user,
            upload=data["file"],
            options=datasets.DatasetOptions(
                name=data["name"],
                layout=data["layout"],
                modality=data["modality"],
                table=data["table"],
                release=data["release"],
            ),
        )
        return Response(ImportBatchOutputSerializer(batch).data, status=status.HTTP_202_ACCEPTED)
