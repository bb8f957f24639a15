"""REST API for report texts: import original reports from a CSV and external models'
candidate reports (coordinators); list report sources (coordinators, analysts)."""

from __future__ import annotations

import json

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from reviewapp.core.errors import ApplicationError
from reviewapp.core.permissions import IsCoordinator, IsCoordinatorOrAnalyst
from reviewapp.reports.candidate_formats import FORMATS
from reviewapp.reports.selectors import report_sources_list
from reviewapp.reports.services import (
    MAX_CANDIDATES_BYTES,
    MAX_CSV_BYTES,
    candidates_import,
    reports_import_csv,
)


class ReportsImportApi(APIView):
    """Create original reports from a CSV keyed by StudyInstanceUID, AccessionNumber or a
    research dataset's study_id (columns findings, impression, optional stratum). A changed
    text is stored as a new version; reader studies whose cases keep the previous version are
    listed. Bad rows are listed by row number with the reason; the good rows are imported."""

    permission_classes = [IsCoordinator]
    parser_classes = [MultiPartParser, FormParser]

    class ReportsImportOutputSerializer(serializers.Serializer):
        created = serializers.IntegerField()
        versioned = serializers.IntegerField(
            help_text="Reports whose text changed, stored as new versions."
        )
        unchanged = serializers.IntegerField()
        problems = inline_serializer(
            name="ReportsImportProblem",
            fields={"row": serializers.IntegerField(), "reason": serializers.CharField()},
            many=True,
        )
        affected_studies = inline_serializer(
            name="ReportsImportAffectedStudy",
            fields={
                "id": serializers.UUIDField(),
                "name": serializers.CharField(),
                "status": serializers.CharField(),
                "cases": serializers.IntegerField(),
            },
            many=True,
            help_text="Reader studies whose cases still hold (and keep) a replaced version.",
        )
        message = serializers.CharField(help_text="What became of changed reports, in words.")

    @extend_schema(
        request={
            "multipart/form-data": inline_serializer(
                name="ReportsImportUpload", fields={"file": serializers.FileField()}
            )
        },
        responses={200: ReportsImportOutputSerializer},
        tags=["reports"],
    )
    def post(self, request: Request) -> Response:
        upload_file = request.FILES.get("file")
        if upload_file is None:
            raise ApplicationError("Send the CSV as the multipart field 'file'.", code="no_file")
        if upload_file.size and upload_file.size > MAX_CSV_BYTES:
            raise ApplicationError(
                f"The file is larger than {MAX_CSV_BYTES // (1024 * 1024)} MB.", code="too_large"
            )
        result = reports_import_csv(
            data=upload_file.read(), source_name=upload_file.name or "api.csv", author=request.user
        )
        if result.error:
            raise ApplicationError(result.error, code="bad_csv")
        payload = {
            "created": result.created,
            "versioned": result.versioned,
            "unchanged": result.unchanged,
            "problems": [{"row": p.row, "reason": p.reason} for p in result.problems],
            "affected_studies": [
                {"id": s.public_id, "name": s.name, "status": s.status, "cases": s.cases}
                for s in result.affected_studies
            ],
            "message": result.versioned_message,
        }
        return Response(self.ReportsImportOutputSerializer(payload).data, status=status.HTTP_200_OK)


class SourceOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    kind = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    name = serializers.CharField()
    version = serializers.CharField()
    description = serializers.CharField()
    provenance = serializers.DictField()
    report_count = serializers.IntegerField(required=False, help_text="Latest versions.")
    study_count = serializers.IntegerField(required=False)


class ReportSourcesApi(APIView):
    """Every report source (the original, each configured model, each imported model, readers'
    edits) with how many reports and studies it has. Never readers: sources unblind."""

    permission_classes = [IsCoordinatorOrAnalyst]

    @extend_schema(responses={200: SourceOutputSerializer(many=True)}, tags=["reports"])
    def get(self, request: Request) -> Response:
        sources = report_sources_list(user=request.user)
        return Response(SourceOutputSerializer(sources, many=True).data)


class CandidatesImportApi(APIView):
    """Import an external model's reports from CSV, JSONL or a ReXrank JSON object, keyed by
    StudyInstanceUID, AccessionNumber or the dataset study id. A changed text is the next
    version of that study's line for the source; bad records are listed with the reason and
    the good ones import."""

    permission_classes = [IsCoordinator]
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField()
        source = serializers.CharField(max_length=100, help_text="The model's name.")  # type: ignore[assignment]
        version = serializers.CharField(max_length=100, required=False, default="")
        description = serializers.CharField(max_length=2000, required=False)
        provenance = serializers.CharField(
            required=False, help_text="A JSON object of free provenance fields."
        )
        format = serializers.ChoiceField(
            choices=FORMATS, required=False, help_text="Default: from the file name."
        )

    class CandidatesImportOutputSerializer(serializers.Serializer):
        source = SourceOutputSerializer()  # type: ignore[assignment]
        format = serializers.CharField()
        created = serializers.IntegerField()
        versioned = serializers.IntegerField()
        unchanged = serializers.IntegerField()
        problems = inline_serializer(
            name="CandidatesImportProblem",
            fields={
                "row": serializers.IntegerField(),
                "key": serializers.CharField(),
                "reason": serializers.CharField(),
            },
            many=True,
        )
        message = serializers.CharField()

    @extend_schema(
        request={"multipart/form-data": InputSerializer},
        responses={200: CandidatesImportOutputSerializer},
        tags=["reports"],
    )
    def post(self, request: Request) -> Response:
        upload_file = request.FILES.get("file")
        # Refuse by declared size before the bytes are read into memory.
        if upload_file is not None and upload_file.size and upload_file.size > MAX_CANDIDATES_BYTES:
            raise ApplicationError(
                f"The file is larger than {MAX_CANDIDATES_BYTES // (1024 * 1024)} MB.",
                code="too_large",
            )
        given = self.InputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        values = given.validated_data
        provenance = None
        if "provenance" in values:
            try:
                provenance = json.loads(values["provenance"])
            except ValueError:
                raise ApplicationError(
                    "provenance must be a JSON object.", code="bad_provenance"
                ) from None
        result = candidates_import(
            data=values["file"].read(),
            file_name=values["file"].name or "upload",
            source_name=values["source"],
            source_version=values["version"],
            source_description=values.get("description"),
            source_provenance=provenance,
            fmt=values.get("format", ""),
            author=request.user,
        )
        if result.error:
            raise ApplicationError(result.error, code=result.error_code)
        payload = {
            "source": result.source,
            "format": result.fmt,
            "created": result.created,
            "versioned": result.versioned,
            "unchanged": result.unchanged,
            "problems": [{"row": p.row, "key": p.key, "reason": p.reason} for p in result.problems],
            "message": result.versioned_message,
        }
        return Response(
            self.CandidatesImportOutputSerializer(payload).data, status=status.HTTP_200_OK
        )
