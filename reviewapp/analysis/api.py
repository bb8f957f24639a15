"""REST API of analysis: the results as JSON and the exports, for scripts."""

from __future__ import annotations

from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from reviewapp.analysis import selectors, stats
from reviewapp.analysis.exports import export_response
from reviewapp.analysis.models import ExportAudit
from reviewapp.analysis.results import (
    DEFAULT_RESAMPLES,
    DEFAULT_RULE,
    DEFAULT_SEED,
    MAX_RESAMPLES,
    analysis_results,
    prevalences_from_query,
)
from reviewapp.core.permissions import _HasRole
from reviewapp.core.roles import Role


class CanAnalyse(_HasRole):
    roles = (Role.ANALYST, Role.COORDINATOR, Role.ADMIN)


class StudyAnalysisApi(APIView):
    permission_classes = [CanAnalyse]

    class InputSerializer(serializers.Serializer):
        resamples = serializers.IntegerField(
            min_value=100, max_value=MAX_RESAMPLES, default=DEFAULT_RESAMPLES
        )
        seed = serializers.IntegerField(min_value=0, max_value=2**32 - 1, default=DEFAULT_SEED)
        plots = serializers.BooleanField(default=False)
        rule = serializers.ChoiceField(
            choices=list(stats.CASE_RULES),
            default=DEFAULT_RULE,
            help_text="When a report meets an outcome in the paired comparison: any / half / "
            "all of the readers who read it",
        )
        min_reads = serializers.IntegerField(
            min_value=1, default=1, help_text="Leave out cases read by fewer readers"
        )
        min_pair_cases = serializers.IntegerField(
            min_value=1,
            default=stats.DEFAULT_MIN_PAIR_CASES,
            help_text="Fewest shared cases for a reader pair's kappa",
        )

    @extend_schema(
        operation_id="reader_study_analysis",
        summary="Analysis of a reader study: rates with bootstrap CIs, agreement, per reader",
        parameters=[InputSerializer],
        responses={200: OpenApiTypes.OBJECT, 403: None, 404: None},
    )
    def get(self, request: Request, public_id: str) -> Response:
        study = selectors.reader_study_get_for_analysis(user=request.user, public_id=public_id)
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data: dict[str, Any] = analysis_results(
            reader_study=study,
            n_resamples=params.validated_data["resamples"],
            seed=params.validated_data["seed"],
            with_plots=params.validated_data["plots"],
            rule=params.validated_data["rule"],
            min_reads=params.validated_data["min_reads"],
            min_pair_cases=params.validated_data["min_pair_cases"],
            # prevalence_<stratum>=<weight>: one parameter per stratum, named by the data.
            prevalences=prevalences_from_query(request.query_params),
        )
        return Response(
            {
                "study": str(study.public_id),
                "name": study.name,
                "protocol": study.protocol_key,
                **data,
            }
        )


class DownloadRenderer(BaseRenderer):
    """Lets scripts ask for the file type (Accept: text/csv) without a 406; errors stay JSON."""

    media_type = "*/*"
    format = "download"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        return JSONRenderer().render(data)


class StudyExportApi(APIView):
    permission_classes = [CanAnalyse]
    renderer_classes = [JSONRenderer, DownloadRenderer]

    @extend_schema(
        operation_id="reader_study_export",
        summary="Download ratings or error spans (CSV or Parquet); includes the unblinding key",
        parameters=[
            OpenApiParameter(
                "dataset", str, OpenApiParameter.PATH, enum=ExportAudit.Dataset.values
            ),
            OpenApiParameter("fmt", str, OpenApiParameter.PATH, enum=ExportAudit.Format.values),
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY),
            (200, "application/vnd.apache.parquet"): OpenApiResponse(OpenApiTypes.BINARY),
            403: None,
            404: None,
        },
    )
    def get(
        self, request: Request, public_id: str, dataset: str, fmt: str
    ) -> StreamingHttpResponse:
        study = selectors.reader_study_get_for_analysis(user=request.user, public_id=public_id)
        return export_response(
            user=request.user,  # type: ignore[arg-type]
            reader_study=study,
            dataset=dataset,
            fmt=fmt,
            interface=ExportAudit.Interface.API,
        )
