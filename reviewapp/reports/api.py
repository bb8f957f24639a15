"""REST API for report texts: import original reports from a CSV (coordinators)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from reviewapp.core.errors import ApplicationError
from reviewapp.core.permissions import IsCoordinator
from reviewapp.reports.services import MAX_CSV_BYTES, reports_import_csv


class ReportsImportApi(APIView):
    """Create original reports from a CSV keyed by StudyInstanceUID or AccessionNumber
    (columns findings, impression, optional stratum). A changed text is stored as a new
    version; reader studies whose cases keep the previous version are listed. Bad rows are
    listed by row number with the reason; the good rows are imported."""

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
