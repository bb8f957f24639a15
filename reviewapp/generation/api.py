"""REST API of report generation: thin views over services and selectors."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from reviewapp.core.permissions import IsCoordinator, IsCoordinatorOrAnalyst
from reviewapp.generation import selectors, services
from reviewapp.generation.models import GenerationJob, GenerationRun, ModelConfig


class ModelConfigOutput(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id")

    class Meta:
        model = ModelConfig
        fields = ["id", *services.MODEL_CONFIG_FIELDS]


class RunOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    study = serializers.UUIDField(source="study.public_id")
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    max_attempts = serializers.IntegerField()
    error = serializers.CharField(source="error_message")
    report = serializers.SerializerMethodField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_report(self, run: GenerationRun) -> str | None:
        return str(run.report.public_id) if run.report else None


class RunDetailOutput(RunOutput):
    job = serializers.UUIDField(source="job.public_id")
    model = serializers.CharField(source="job.model_config.name")
    findings = serializers.SerializerMethodField()
    impression = serializers.SerializerMethodField()
    provenance = serializers.JSONField()

    def get_findings(self, run: GenerationRun) -> str:
        return run.report.findings if run.report else ""

    def get_impression(self, run: GenerationRun) -> str:
        return run.report.impression if run.report else ""


class JobOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    model = serializers.CharField(source="model_config.name")
    model_id = serializers.UUIDField(source="model_config.public_id")
    created_at = serializers.DateTimeField()
    cancelled_at = serializers.DateTimeField(allow_null=True)
    counts = serializers.SerializerMethodField()

    def get_counts(self, job: GenerationJob) -> dict[str, int]:
        return services.job_counts(job)


class JobCreateInput(serializers.Serializer):
    model = serializers.UUIDField(help_text="public id of the ModelConfig")
    studies = serializers.ListField(
        child=serializers.UUIDField(), required=False, help_text="study public ids"
    )
    modality = serializers.ChoiceField(choices=["", "CXR", "CT"], required=False, default="")
    stratum = serializers.CharField(required=False, default="")
    only_missing = serializers.BooleanField(
        required=False, default=False, help_text="skip studies this model already reported"
    )


def _job_detail(request: Request, job: GenerationJob) -> dict[str, Any]:
    data = dict(JobOutput(job).data)
    data["runs"] = RunOutput(
        selectors.run_list_for_staff(user=request.user, job=job), many=True
    ).data
    return data


JobDetailSchema = inline_serializer(
    "GenerationJobDetail",
    {
        "id": serializers.UUIDField(),
        "model": serializers.CharField(),
        "counts": serializers.DictField(child=serializers.IntegerField()),
        "runs": RunOutput(many=True),
        "skipped": serializers.ListField(child=serializers.DictField(), required=False),
    },
)


class ModelConfigListApi(APIView):
    permission_classes = [IsCoordinatorOrAnalyst]

    @extend_schema(responses=ModelConfigOutput(many=True), operation_id="generation_models_list")
    def get(self, request: Request) -> Response:
        configs = selectors.model_config_list_for_staff(user=request.user)
        return Response(ModelConfigOutput(configs, many=True).data)


class JobListCreateApi(APIView):
    permission_classes = [IsCoordinatorOrAnalyst]

    def get_permissions(self) -> Any:
        if self.request.method == "POST":
            return [IsCoordinator()]
        return super().get_permissions()

    @extend_schema(responses=JobOutput(many=True), operation_id="generation_jobs_list")
    def get(self, request: Request) -> Response:
        jobs = selectors.job_list_for_staff(user=request.user)[:200]
        return Response(JobOutput(jobs, many=True).data)

    @extend_schema(
        request=JobCreateInput,
        responses={201: JobDetailSchema},
        operation_id="generation_jobs_create",
    )
    def post(self, request: Request) -> Response:
        data = JobCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        config = selectors.model_config_get_for_staff(user=request.user, public_id=values["model"])
        created = services.generation_job_create_from_selection(
            user=request.user,
            model_config=config,
            modality=values["modality"],
            stratum=values["stratum"],
            study_refs=[str(ref) for ref in values.get("studies") or []],
            only_missing=values["only_missing"],
        )
        body = _job_detail(request, created.job)
        body["skipped"] = [{"study": str(s.public_id), "reason": why} for s, why in created.skipped]
        return Response(body, status=status.HTTP_201_CREATED)


class JobDetailApi(APIView):
    permission_classes = [IsCoordinatorOrAnalyst]

    @extend_schema(responses=JobDetailSchema, operation_id="generation_jobs_retrieve")
    def get(self, request: Request, job_id: str) -> Response:
        job = selectors.job_get_for_staff(user=request.user, public_id=job_id)
        return Response(_job_detail(request, job))


class JobCancelApi(APIView):
    permission_classes = [IsCoordinator]

    @extend_schema(request=None, responses=JobDetailSchema, operation_id="generation_jobs_cancel")
    def post(self, request: Request, job_id: str) -> Response:
        job = selectors.job_get_for_staff(user=request.user, public_id=job_id)
        services.generation_job_cancel(user=request.user, job=job)
        return Response(_job_detail(request, job))


class RunDetailApi(APIView):
    permission_classes = [IsCoordinatorOrAnalyst]

    @extend_schema(responses=RunDetailOutput, operation_id="generation_runs_retrieve")
    def get(self, request: Request, run_id: str) -> Response:
        run = selectors.run_get_for_staff(user=request.user, public_id=run_id)
        return Response(RunDetailOutput(run).data)


class RunRetryApi(APIView):
    permission_classes = [IsCoordinator]

    @extend_schema(request=None, responses=RunOutput, operation_id="generation_runs_retry")
    def post(self, request: Request, run_id: str) -> Response:
        run = selectors.run_get_for_staff(user=request.user, public_id=run_id)
        run = services.generation_run_retry(user=request.user, run=run)
        return Response(RunOutput(run).data)
