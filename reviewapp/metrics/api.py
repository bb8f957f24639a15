"""REST API of automated metrics: queue jobs, follow one, read a study's overview."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from reviewapp.analysis.api import CanAnalyse
from reviewapp.analysis.selectors import (
    reader_study_get_for_analyst,
    reader_study_list_for_analyst,
)
from reviewapp.metrics import selectors, services, tables


class StudyMetricJobsApi(APIView):
    permission_classes = [CanAnalyse]

    @extend_schema(
        operation_id="reader_study_metric_jobs",
        summary="The study's metric jobs, newest first, with their progress",
        responses={200: OpenApiTypes.OBJECT, 403: None, 404: None},
    )
    def get(self, request: Request, public_id: str) -> Response:
        study = reader_study_get_for_analyst(user=request.user, public_id=public_id)
        jobs = selectors.metric_job_list(reader_study=study)[:20]
        return Response({"jobs": [selectors.metric_job_counts(job) for job in jobs]})

    @extend_schema(
        operation_id="reader_study_metric_jobs_create",
        summary="Score every candidate report of the study: one job per source",
        request=None,
        responses={201: OpenApiTypes.OBJECT, 403: None, 404: None},
    )
    def post(self, request: Request, public_id: str) -> Response:
        study = reader_study_get_for_analyst(user=request.user, public_id=public_id)
        jobs = services.metric_jobs_create(user=request.user, reader_study=study)
        return Response(
            {"jobs": [selectors.metric_job_counts(job) for job in jobs]},
            status=status.HTTP_201_CREATED,
        )


class MetricJobApi(APIView):
    permission_classes = [CanAnalyse]

    @extend_schema(
        operation_id="metric_job",
        summary="One metric job's progress",
        responses={200: OpenApiTypes.OBJECT, 403: None, 404: None},
    )
    def get(self, request: Request, job_id: str) -> Response:
        studies = reader_study_list_for_analyst(user=request.user).values_list("id", flat=True)
        job = selectors.metric_job_get(reader_study_ids=studies, public_id=job_id)
        return Response(selectors.metric_job_counts(job))


class StudyMetricsApi(APIView):
    permission_classes = [CanAnalyse]

    @extend_schema(
        operation_id="reader_study_metrics",
        summary="Per-source metric means, expert rates and the metric-expert agreement table",
        responses={200: OpenApiTypes.OBJECT, 403: None, 404: None},
    )
    def get(self, request: Request, public_id: str) -> Response:
        study = reader_study_get_for_analyst(user=request.user, public_id=public_id)
        return Response(tables.overview_json(selectors.metrics_overview(reader_study=study)))
