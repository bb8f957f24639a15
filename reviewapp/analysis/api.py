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

from reviewapp.analysis import planning, selectors, stats
from reviewapp.analysis.exports import export_response
from reviewapp.analysis.models import ExportAudit
from reviewapp.analysis.results import (
    DEFAULT_RESAMPLES,
    DEFAULT_RULE,
    DEFAULT_SEED,
    FAILED_RETRY_SECONDS,
    MAX_RESAMPLES,
    REST_PARTS,
    AnalysisParams,
    PlanDefaults,
    analysis_get_or_start,
    json_safe,
    plan_defaults,
    prevalences_from_query,
)
from reviewapp.core.errors import ApplicationError
from reviewapp.core.permissions import _HasRole
from reviewapp.core.roles import Role
from reviewapp.studies.blinding import blinding_summary


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
        summary="Analysis of a reader study: rates with CIs, comparisons, agreement with "
        "bootstrap CIs, per reader",
        description="The headline (rates, comparisons, per reader) comes at once. For a large "
        "study the agreement coefficients' bootstrap CIs and the figures are computed by a "
        f"worker: until they are ready the answer is 202 without {', '.join(REST_PARTS)} "
        "and with `status` (`queued` or `running`, `done` of `total` steps); ask again "
        "(Retry-After) for the complete 200 answer. The first request starts the computation, "
        "later ones join it; a new or revised rating starts a new one. 503 with code "
        "`analysis_failed` when it failed (retried by a request after Retry-After).",
        parameters=[InputSerializer],
        responses={200: OpenApiTypes.OBJECT, 202: OpenApiTypes.OBJECT, 403: None, 404: None},
    )
    def get(self, request: Request, public_id: str) -> Response:
        study = selectors.reader_study_get_for_analyst(user=request.user, public_id=public_id)
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        analysis = AnalysisParams(
            n_resamples=params.validated_data["resamples"],
            seed=params.validated_data["seed"],
            rule=params.validated_data["rule"],
            min_reads=params.validated_data["min_reads"],
            min_pair_cases=params.validated_data["min_pair_cases"],
            # prevalence_<stratum>=<weight>: one parameter per stratum, named by the data.
            prevalences=prevalences_from_query(request.query_params),
        )
        data, status = analysis_get_or_start(
            reader_study=study, params=analysis, with_plots=params.validated_data["plots"]
        )
        if status.state == "failed":
            return Response(
                {
                    "detail": "Computing the agreement CIs and figures failed; it is tried "
                    "again on a request after the time in Retry-After.",
                    "code": "analysis_failed",
                    "status": status.as_dict(),
                },
                status=503,
                headers={"Retry-After": str(FAILED_RETRY_SECONDS)},
            )
        return Response(
            {
                "study": str(study.public_id),
                "name": study.name,
                "protocol": study.protocol_key,
                "status": status.as_dict(),
                # What the blinding check left in the readers' view, and who accepted it.
                "blinding": {
                    k: v for k, v in blinding_summary(reader_study=study).items() if k != "groups"
                },
                **data,
            },
            status=200 if status.is_complete else 202,
            headers=None if status.is_complete else {"Retry-After": "1"},
        )


class PlanInputSerializer(serializers.Serializer):
    """What a coordinator states to plan a study; the page validates its form with it too."""

    goal = serializers.ChoiceField(choices=list(planning.GOALS), default="precision")
    rate = serializers.FloatField(
        min_value=0.001,
        max_value=0.999,
        default=planning.BUILT_IN_DEFAULTS["rate"],
        help_text="Expected share of positive ratings (of the original reports, for "
        "non-inferiority)",
    )
    ai_rate = serializers.FloatField(
        min_value=0.001,
        max_value=0.999,
        required=False,
        allow_null=True,
        default=None,
        help_text="Expected rate of the AI reports (non-inferiority); default: the same rate",
    )
    reader_sd = serializers.FloatField(
        min_value=0,
        max_value=3,
        default=planning.BUILT_IN_DEFAULTS["reader_sd"],
        help_text="Reader SD on the logit scale",
    )
    case_sd = serializers.FloatField(
        min_value=0,
        max_value=3,
        default=planning.BUILT_IN_DEFAULTS["case_sd"],
        help_text="Case SD on the logit scale",
    )
    reads_per_case = serializers.IntegerField(
        min_value=1,
        required=False,
        allow_null=True,
        default=None,
        help_text="Readers reading each report; default: the whole panel",
    )
    cases = serializers.CharField(
        default=",".join(map(str, planning.DEFAULT_CASES)), help_text="e.g. 30,50,100"
    )
    readers = serializers.CharField(
        default=",".join(map(str, planning.DEFAULT_READERS)), help_text="e.g. 3,4,5"
    )
    target_half_width = serializers.FloatField(
        required=False, allow_null=True, default=0.05, help_text="Precision goal, as a share"
    )
    margin = serializers.FloatField(
        required=False, allow_null=True, default=0.1, help_text="Non-inferiority margin (share)"
    )
    rule = serializers.ChoiceField(choices=list(stats.CASE_RULES), default=DEFAULT_RULE)
    simulations = serializers.IntegerField(
        min_value=10, max_value=2000, default=planning.DEFAULT_SIMULATIONS
    )
    seed = serializers.IntegerField(min_value=0, max_value=2**32 - 1, default=DEFAULT_SEED)

    def validate_cases(self, value: str) -> tuple[int, ...]:
        return _sizes(value)

    def validate_readers(self, value: str) -> tuple[int, ...]:
        return _sizes(value)


def _sizes(value: str) -> tuple[int, ...]:
    try:
        return planning.parse_sizes(value)
    except ApplicationError as exc:
        raise serializers.ValidationError(exc.message, code=exc.code) from exc


PLAN_DEFAULTED = ("rate", "reader_sd", "case_sd")


def plan_query(query: Any, user: Any) -> tuple[dict[str, Any], PlanDefaults]:
    """A plan request's parameters with the expected rate and spreads it leaves out taken from
    this installation's past studies (those the user may analyse), else the built-in values."""
    defaults = plan_defaults(user=user, built_in=planning.BUILT_IN_DEFAULTS)
    data = {key: query.get(key) for key in query}
    for name in PLAN_DEFAULTED:
        if data.get(name) in (None, ""):
            data[name] = getattr(defaults, name)
    return data, defaults


class StudyPlanApi(APIView):
    permission_classes = [CanAnalyse]

    @extend_schema(
        operation_id="reader_study_plan",
        summary="Plan a study: expected CI half-width or non-inferiority power per cases x "
        "readers, by simulation with the analysis's own interval procedures",
        parameters=[PlanInputSerializer],
        responses={200: OpenApiTypes.OBJECT, 400: None, 403: None},
    )
    def get(self, request: Request) -> Response:
        data, defaults = plan_query(request.query_params, request.user)
        params = PlanInputSerializer(data=data)
        params.is_valid(raise_exception=True)
        plan = planning.study_plan(**params.validated_data)
        return Response(json_safe({**plan.as_dict(), "defaults": defaults.as_dict()}))


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

    class InputSerializer(StudyAnalysisApi.InputSerializer):
        plots = None  # type: ignore[assignment]  # a download has no figures
        bom = serializers.BooleanField(
            default=False, help_text="CSV: start with a UTF-8 byte order mark (for Excel)"
        )

    @extend_schema(
        operation_id="reader_study_export",
        summary="Download ratings, error spans or the reports shown (CSV or Parquet; includes "
        "the unblinding key), or the sidecar JSON (sidecar.json: rules, CI methods and their "
        "parameters, row counts, hash definition, CSV conventions)",
        parameters=[
            OpenApiParameter(
                "dataset", str, OpenApiParameter.PATH, enum=ExportAudit.Dataset.values
            ),
            OpenApiParameter("fmt", str, OpenApiParameter.PATH, enum=ExportAudit.Format.values),
            InputSerializer,
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY),
            (200, "application/vnd.apache.parquet"): OpenApiResponse(OpenApiTypes.BINARY),
            (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT),
            403: None,
            404: None,
        },
    )
    def get(
        self, request: Request, public_id: str, dataset: str, fmt: str
    ) -> StreamingHttpResponse:
        study = selectors.reader_study_get_for_analyst(user=request.user, public_id=public_id)
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        analysis = {
            "n_resamples": data["resamples"],
            "seed": data["seed"],
            "rule": data["rule"],
            "min_reads": data["min_reads"],
            "min_pair_cases": data["min_pair_cases"],
            "prevalences": prevalences_from_query(request.query_params),
        }
        return export_response(
            user=request.user,  # type: ignore[arg-type]
            reader_study=study,
            dataset=dataset,
            fmt=fmt,
            interface=ExportAudit.Interface.API,
            bom=data["bom"],
            analysis=analysis if dataset == ExportAudit.Dataset.SIDECAR else None,
        )
