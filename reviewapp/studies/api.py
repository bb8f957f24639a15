"""REST API of reader studies: thin views that parse, call one service or selector, answer.

Everything a reader can reach lives under ``my/`` and is built by the reader selectors, which
never include source labels, report ids or dates; every response here is ``no-store``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from reviewapp.core.permissions import IsCoordinator, IsCoordinatorOrAnalyst, IsReader
from reviewapp.reports import selectors as report_selectors
from reviewapp.reports.models import Report
from reviewapp.studies import blinding, protocols, selectors, services
from reviewapp.studies.models import Assignment, Case, ErrorSpan, Rating, ReaderStudy


class NoStoreAPIView(APIView):
    """Responses may carry blinded case data or answers: no cache may keep them."""

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        return response


# --- serializers --------------------------------------------------------------------------


class ReaderStudyOut(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id")
    coordinators: serializers.SlugRelatedField = serializers.SlugRelatedField(
        many=True, read_only=True, slug_field="username"
    )

    class Meta:
        model = ReaderStudy
        fields = [
            "id",
            "name",
            "description",
            "status",
            "protocol_key",
            "protocol_version",
            "protocol",
            "ask_ai_guess",
            "allow_revisions",
            "reads_mode",
            "reads_per_case",
            "sample_seed",
            "sample_spec",
            "assignment_seed",
            "assignments_generated_at",
            "design",
            "same_study_gap",
            "show_clinical_context",
            "coordinators",
            "created_at",
            "opened_at",
            "locked_at",
        ]


class CaseOut(serializers.ModelSerializer):
    """Coordinator/analyst view of a case: includes the unblinding key (report sources)."""

    id = serializers.UUIDField(source="public_id")
    study_instance_uid = serializers.CharField(source="imaging_study.study_instance_uid")
    first_report = serializers.UUIDField(source="first_report.public_id")
    first_report_kind = serializers.CharField(source="first_report.kind")
    second_report = serializers.UUIDField(source="second_report.public_id", allow_null=True)
    second_report_kind = serializers.CharField(source="second_report.kind", allow_null=True)

    class Meta:
        model = Case
        fields = [
            "id",
            "study_instance_uid",
            "stratum",
            "first_report",
            "first_report_kind",
            "second_report",
            "second_report_kind",
            "is_practice",
        ]


class AssignmentKeyOut(serializers.ModelSerializer):
    """Coordinator/analyst view of an assignment: who reads what, where, on which side."""

    id = serializers.UUIDField(source="public_id")
    case = serializers.UUIDField(source="case.public_id")
    reader = serializers.CharField(source="reader.username")

    class Meta:
        model = Assignment
        fields = [
            "id",
            "case",
            "reader",
            "position",
            "candidate_side",
            "status",
            "opened_at",
            "first_answer_at",
            "submitted_at",
            "active_seconds",
        ]


ProgressOut = inline_serializer(
    "ReaderStudyProgress",
    {
        "study": serializers.UUIDField(),
        "status": serializers.CharField(),
        "total": serializers.IntegerField(),
        "submitted": serializers.IntegerField(),
        "practice_total": serializers.IntegerField(),
        "practice_submitted": serializers.IntegerField(),
        "revisions": serializers.IntegerField(),
        "median_seconds": serializers.FloatField(allow_null=True),
        "median_text": serializers.CharField(),
        "idle_days": serializers.IntegerField(),
        "pace_days": serializers.IntegerField(),
        "own_pace_min_reads": serializers.IntegerField(),
        "readers": serializers.ListField(child=serializers.DictField()),
        "reminders": serializers.CharField(),
    },
)
HistoryOut = inline_serializer(
    "RatingHistoryEntry",
    {
        "event": serializers.CharField(),
        "at": serializers.DateTimeField(),
        "version": serializers.IntegerField(),
        "answers": serializers.DictField(),
        "ai_guess": serializers.CharField(required=False),
        "by_user_id": serializers.IntegerField(allow_null=True, required=False),
        "action": serializers.CharField(required=False),
    },
    many=True,
)
CaseViewOut = inline_serializer(
    "ReaderCaseView",
    {
        "assignment": serializers.UUIDField(),
        "study": serializers.DictField(),
        "protocol": serializers.DictField(),
        "position": serializers.IntegerField(),
        "total": serializers.IntegerField(),
        "counter": serializers.CharField(),
        "practice": serializers.DictField(allow_null=True),
        "status": serializers.CharField(),
        "previous": serializers.UUIDField(allow_null=True),
        "next": serializers.UUIDField(allow_null=True),
        "image_study_uid": serializers.CharField(),
        "next_image_study_uid": serializers.CharField(allow_null=True),
        "clinical": serializers.ListField(child=serializers.DictField()),
        "reports": serializers.ListField(child=serializers.DictField()),
        "form": serializers.ListField(child=serializers.DictField()),
        "draft": serializers.DictField(),
        "draft_seq": serializers.IntegerField(),
        "rating": serializers.DictField(allow_null=True),
        "can_write": serializers.BooleanField(),
    },
)
ReaderRatingOut = inline_serializer(
    "ReaderRating",
    {
        "assignment": serializers.UUIDField(),
        "version": serializers.IntegerField(),
        "answers": serializers.DictField(),
        "spans": serializers.ListField(child=serializers.DictField()),
        "submitted_at": serializers.DateTimeField(),
        "revised_at": serializers.DateTimeField(allow_null=True),
        "next": serializers.UUIDField(allow_null=True),
    },
)


def _reader_rating(
    rating: Rating, *, user: Any, spans: list[ErrorSpan] | None = None
) -> dict[str, Any]:
    assignment = rating.assignment
    following = selectors.next_assignment_id_for_reader(
        user=user, study_id=assignment.reader_study.public_id
    )
    return {
        "assignment": str(assignment.public_id),
        "version": rating.version,
        "answers": selectors.answers_for_reader(rating.answers),
        "spans": selectors.spans_for_reader(rating, stored=spans),
        "submitted_at": rating.submitted_at,
        "revised_at": rating.revised_at,
        "next": str(following) if following else None,
    }


# --- coordinators and analysts ------------------------------------------------------------


class ProtocolTemplatesApi(NoStoreAPIView):
    permission_classes = [IsCoordinatorOrAnalyst]

    @extend_schema(
        summary="Built-in protocol templates",
        responses=inline_serializer(
            "ProtocolTemplates",
            {"templates": serializers.ListField(child=serializers.DictField())},
        ),
    )
    def get(self, request: Request) -> Response:
        return Response(
            {"templates": protocols.protocol_templates(), "schema": protocols.protocol_schema()}
        )


class ReaderStudyListApi(NoStoreAPIView):
    permission_classes = [IsCoordinatorOrAnalyst]

    class CreateIn(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        description = serializers.CharField(required=False, allow_blank=True, default="")
        protocol_key = serializers.ChoiceField(choices=protocols.TEMPLATE_KEYS, required=False)
        protocol = serializers.JSONField(required=False)
        ask_ai_guess = serializers.BooleanField(default=False)
        allow_revisions = serializers.BooleanField(default=True)
        acceptable_threshold = serializers.CharField(required=False, allow_blank=True)

    @extend_schema(
        summary="Reader studies I coordinate (all, for analysts)",
        responses=ReaderStudyOut(many=True),
    )
    def get(self, request: Request) -> Response:
        studies = selectors.reader_study_list_for_staff(user=request.user).prefetch_related(
            "coordinators"
        )
        return Response(ReaderStudyOut(studies, many=True).data)

    @extend_schema(
        summary="Create a draft reader study", request=CreateIn, responses={201: ReaderStudyOut}
    )
    def post(self, request: Request) -> Response:
        if not IsCoordinator().has_permission(request, self):
            raise PermissionDenied  # analysts read studies; only coordinators create them
        data = self.CreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        study = services.reader_study_create(
            user=request.user,
            name=data.validated_data["name"],
            description=data.validated_data["description"],
            protocol_key=data.validated_data.get("protocol_key"),
            protocol=data.validated_data.get("protocol"),
            ask_ai_guess=data.validated_data["ask_ai_guess"],
            allow_revisions=data.validated_data["allow_revisions"],
            acceptable_threshold=data.validated_data.get("acceptable_threshold") or None,
        )
        return Response(ReaderStudyOut(study).data, status=status.HTTP_201_CREATED)


class ReaderStudyDetailApi(NoStoreAPIView):
    permission_classes = [IsCoordinatorOrAnalyst]

    @extend_schema(summary="One reader study", responses=ReaderStudyOut)
    def get(self, request: Request, study_id: str) -> Response:
        study = selectors.reader_study_get_for_staff(user=request.user, public_id=study_id)
        return Response(ReaderStudyOut(study).data)


class CasesApi(NoStoreAPIView):
    permission_classes = [IsCoordinatorOrAnalyst]

    class AddIn(serializers.Serializer):
        study_uids = serializers.ListField(
            child=serializers.CharField(max_length=64), required=False, max_length=20000
        )
        modality = serializers.CharField(required=False, allow_blank=True, default="")
        stratum = serializers.CharField(required=False, allow_blank=True, default="")
        candidate_report_ids = serializers.ListField(
            child=serializers.UUIDField(), required=False, max_length=20000
        )
        candidate_source = serializers.UUIDField(
            required=False,
            help_text="A report source (GET /api/v1/reports/sources): compare with the latest "
            "report of this source on each study.",
        )
        rate_source = serializers.ChoiceField(
            choices=["candidate", "original", "both"], default="candidate"
        )
        per_stratum = serializers.DictField(
            child=serializers.IntegerField(min_value=1), required=False
        )
        seed = serializers.IntegerField(required=False, min_value=0)

    AddOut = inline_serializer(
        "CasesAdded",
        {
            "added": CaseOut(many=True),
            "problems": serializers.ListField(child=serializers.CharField()),
            "warnings": serializers.ListField(child=serializers.CharField()),
        },
    )

    @extend_schema(
        summary="Cases of a study, with their report sources", responses=CaseOut(many=True)
    )
    def get(self, request: Request, study_id: str) -> Response:
        study = selectors.reader_study_get_for_staff(user=request.user, public_id=study_id)
        return Response(CaseOut(selectors.case_list(reader_study=study), many=True).data)

    @extend_schema(
        summary="Add cases by filters or an uploaded list, optionally a stratified sample",
        request=AddIn,
        responses={201: AddOut},
    )
    def post(self, request: Request, study_id: str) -> Response:
        study = selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
        data = self.AddIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        candidates = Report.objects.filter(kind__in=[Report.Kind.AI, Report.Kind.EDITED])
        if "candidate_report_ids" in values:
            candidates = candidates.filter(public_id__in=values["candidate_report_ids"])
        elif "candidate_source" in values:
            candidates = selectors.candidate_reports_of_source(
                source=selectors.candidate_source_get(
                    user=request.user, public_id=values["candidate_source"]
                )
            )
        else:
            candidates = candidates.filter(kind=Report.Kind.AI)
        result = services.cases_add_from_selection(
            reader_study=study,
            user=request.user,
            candidate_reports=candidates,
            modality=values["modality"],
            stratum=values["stratum"],
            study_uids=values.get("study_uids"),
            rate_source=values["rate_source"],
            per_stratum=values.get("per_stratum"),
            seed=values.get("seed"),
        )
        return Response(
            {
                "added": CaseOut(result.added, many=True).data,
                "problems": result.problems,
                "warnings": result.warnings,
            },
            status=status.HTTP_201_CREATED,
        )


class PanelApi(NoStoreAPIView):
    permission_classes = [IsCoordinator]

    class SeatIn(serializers.Serializer):
        username = serializers.CharField()
        cohort = serializers.CharField(required=False, allow_blank=True, default="")

    class PanelIn(serializers.Serializer):
        readers = serializers.ListField(child=serializers.DictField(), min_length=1)

    PanelOut = inline_serializer(
        "Panel", {"readers": serializers.ListField(child=serializers.DictField())}
    )

    @extend_schema(
        summary="Set the study's readers and cohorts", request=PanelIn, responses=PanelOut
    )
    def put(self, request: Request, study_id: str) -> Response:
        study = selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
        data = self.PanelIn(data=request.data)
        data.is_valid(raise_exception=True)
        seats = []
        for raw in data.validated_data["readers"]:
            seat = self.SeatIn(data=raw)
            seat.is_valid(raise_exception=True)
            seats.append(seat.validated_data)
        users = {
            u.get_username(): u
            for u in get_user_model().objects.filter(username__in=[s["username"] for s in seats])
        }
        missing = [s["username"] for s in seats if s["username"] not in users]
        if missing:
            raise serializers.ValidationError({"readers": [f"{m}: no such user" for m in missing]})
        created = services.panel_set(
            reader_study=study, readers=[(users[s["username"]], s["cohort"]) for s in seats]
        )
        return Response(
            {
                "readers": [
                    {"username": s.reader.get_username(), "cohort": s.cohort} for s in created
                ]
            }
        )


class AssignmentsApi(NoStoreAPIView):
    permission_classes = [IsCoordinatorOrAnalyst]

    class GenerateIn(serializers.Serializer):
        reads_per_case = serializers.IntegerField(required=False, min_value=1, allow_null=True)
        seed = serializers.IntegerField(required=False, min_value=0)

    @extend_schema(
        summary="Every assignment with its side (the unblinding key)",
        responses=AssignmentKeyOut(many=True),
    )
    def get(self, request: Request, study_id: str) -> Response:
        study = selectors.reader_study_get_for_staff(user=request.user, public_id=study_id)
        rows = study.assignments.select_related("case", "reader").order_by("reader_id", "position")
        return Response(AssignmentKeyOut(rows, many=True).data)

    @extend_schema(
        summary="Generate the reading lists once (seeded order and balanced A/B sides)",
        request=GenerateIn,
        responses={201: ReaderStudyOut},
    )
    def post(self, request: Request, study_id: str) -> Response:
        study = selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
        data = self.GenerateIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.assignments_generate(
            reader_study=study,
            reads_per_case=data.validated_data.get("reads_per_case"),
            seed=data.validated_data.get("seed"),
        )
        return Response(ReaderStudyOut(study).data, status=status.HTTP_201_CREATED)


ArmsOut = inline_serializer(
    "StudyArm",
    {
        "position": serializers.IntegerField(),
        "label": serializers.CharField(),
        "first_source": serializers.UUIDField(),
        "second_source": serializers.UUIDField(allow_null=True),
        "cases": serializers.IntegerField(),
    },
    many=True,
)


def _arm_out(arm: Any) -> dict[str, Any]:
    return {
        "position": arm.position,
        "label": arm.label,
        "first_source": arm.first_source.public_id,
        "second_source": arm.second_source.public_id if arm.second_source else None,
        "cases": arm.case_count,
    }


class ArmsApi(NoStoreAPIView):
    """The study's design and arms: what its reads compare (coordinators and analysts see
    them; only coordinators set them, in a draft without cases)."""

    permission_classes = [IsCoordinatorOrAnalyst]

    class DesignIn(serializers.Serializer):
        design = serializers.ChoiceField(choices=ReaderStudy.Design.choices, allow_blank=True)
        sources = serializers.ListField(child=serializers.UUIDField(), required=False)
        pairs = serializers.ListField(
            child=serializers.ListField(child=serializers.UUIDField(), min_length=2, max_length=2),
            required=False,
        )

    @extend_schema(summary="The study's arms (report sources compared)", responses=ArmsOut)
    def get(self, request: Request, study_id: str) -> Response:
        study = selectors.reader_study_get_for_staff(user=request.user, public_id=study_id)
        return Response([_arm_out(a) for a in selectors.arm_list(reader_study=study)])

    @extend_schema(
        summary="Set the design: each model vs the original, all pairs, chosen pairs, or each "
        "source on its own",
        request=DesignIn,
        responses={200: ArmsOut},
    )
    def post(self, request: Request, study_id: str) -> Response:
        study = selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
        data = self.DesignIn(data=request.data)
        data.is_valid(raise_exception=True)
        sources = {s.public_id: s for s in report_selectors.report_sources_list(user=request.user)}
        wanted = [*data.validated_data.get("sources", [])] + [
            i for pair in data.validated_data.get("pairs", []) for i in pair
        ]
        if any(i not in sources for i in wanted):
            raise serializers.ValidationError({"sources": "No such report source."})
        services.arms_set(
            reader_study=study,
            design=data.validated_data["design"],
            sources=[sources[i] for i in data.validated_data.get("sources", [])],
            pairs=[(sources[a], sources[b]) for a, b in data.validated_data.get("pairs", [])],
        )
        return Response([_arm_out(a) for a in selectors.arm_list(reader_study=study)])


class StudyStatusApi(NoStoreAPIView):
    permission_classes = [IsCoordinator]

    class ActionIn(serializers.Serializer):
        action = serializers.ChoiceField(choices=["open", "pause", "lock"])

    @extend_schema(
        summary="Open, pause or lock a study", request=ActionIn, responses=ReaderStudyOut
    )
    def post(self, request: Request, study_id: str) -> Response:
        study = selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
        data = self.ActionIn(data=request.data)
        data.is_valid(raise_exception=True)
        action = {
            "open": services.reader_study_open,
            "pause": services.reader_study_pause,
            "lock": services.reader_study_lock,
        }[data.validated_data["action"]]
        action(reader_study=study)
        return Response(ReaderStudyOut(study).data)


ReportMoveOut = inline_serializer(
    "ReportMove",
    {
        "case": serializers.UUIDField(),
        "imaging_study": serializers.UUIDField(),
        "slot": serializers.ChoiceField(choices=["first", "second"]),
        "source": serializers.CharField(),
        "old_version": serializers.IntegerField(),
        "new_version": serializers.IntegerField(),
        "old_report": serializers.UUIDField(),
        "new_report": serializers.UUIDField(),
        "summary": serializers.CharField(),
    },
    many=True,
)


class RefreshReportsApi(NoStoreAPIView):
    """Move a draft study's cases to the latest report versions: GET shows what would change,
    POST does it (refused past draft with code ``not_draft``)."""

    permission_classes = [IsCoordinator]

    @extend_schema(
        summary="Cases whose reports have newer versions (preview)",
        responses=inline_serializer("ReportMovesPreview", {"moves": ReportMoveOut}),
    )
    def get(self, request: Request, study_id: str) -> Response:
        study = selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
        moves = selectors.cases_refresh_preview(reader_study=study)
        return Response({"moves": [move.as_dict() for move in moves]})

    @extend_schema(
        summary="Move a draft study's cases to the latest report versions",
        request=None,
        responses=inline_serializer(
            "ReportMovesApplied",
            {
                "moved": ReportMoveOut,
                "problems": serializers.ListField(child=serializers.CharField()),
            },
        ),
    )
    def post(self, request: Request, study_id: str) -> Response:
        study = selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
        result = services.cases_refresh_to_latest(reader_study=study)
        return Response(
            {"moved": [move.as_dict() for move in result.moved], "problems": result.problems}
        )


BlindingOut = inline_serializer(
    "BlindingCheck",
    {
        "checked_at": serializers.DateTimeField(allow_null=True),
        "is_current": serializers.BooleanField(),
        "renderer_version": serializers.IntegerField(),
        "tell_count": serializers.IntegerField(),
        "case_count": serializers.IntegerField(),
        "tells": serializers.ListField(child=serializers.DictField()),
        "acknowledged_by": serializers.CharField(),
        "acknowledged_at": serializers.DateTimeField(allow_null=True),
        "is_acknowledged": serializers.BooleanField(),
    },
)


def _blinding_out(study: ReaderStudy) -> dict[str, Any]:
    summary = blinding.blinding_summary(reader_study=study)
    summary.pop("groups")  # page layout; the API gives the flat list
    return summary


class SetupStepsApi(NoStoreAPIView):
    permission_classes = [IsCoordinatorOrAnalyst]

    StepOut = inline_serializer(
        "SetupStep",
        {
            "key": serializers.ChoiceField(
                choices=["protocol", "cases", "readers", "lists", "blinding", "open"]
            ),
            "title": serializers.CharField(),
            "is_done": serializers.BooleanField(),
            "summary": serializers.CharField(),
            "warning": serializers.CharField(),
        },
        many=True,
    )

    @extend_schema(
        summary="The steps of building the study, each done or not, with what is missing",
        responses=StepOut,
    )
    def get(self, request: Request, study_id: str) -> Response:
        study = selectors.reader_study_get_for_staff(user=request.user, public_id=study_id)
        steps = selectors.reader_study_setup_steps(
            reader_study=study,
            blinding_summary=blinding.blinding_summary(reader_study=study),
            modality_warnings=selectors.cases_modality_warnings(reader_study=study),
        )
        return Response([asdict(step) for step in steps])


class BlindingApi(NoStoreAPIView):
    permission_classes = [IsCoordinatorOrAnalyst]

    @extend_schema(
        summary="The stored blinding check: tells per case and its acknowledgement",
        responses=BlindingOut,
    )
    def get(self, request: Request, study_id: str) -> Response:
        study = selectors.reader_study_get_for_staff(user=request.user, public_id=study_id)
        return Response(_blinding_out(study))

    @extend_schema(
        summary="Run the blinding check on a draft (an earlier acknowledgement lapses)",
        request=None,
        responses=BlindingOut,
    )
    def post(self, request: Request, study_id: str) -> Response:
        study = selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
        blinding.blinding_check_record(reader_study=study)
        study.refresh_from_db()
        return Response(_blinding_out(study))


class BlindingAcknowledgementApi(NoStoreAPIView):
    permission_classes = [IsCoordinator]

    @extend_schema(
        summary="Acknowledge the current blinding check's tells, so the draft may open",
        request=None,
        responses=BlindingOut,
    )
    def post(self, request: Request, study_id: str) -> Response:
        study = selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
        acknowledged = blinding.blinding_acknowledge(reader_study=study, user=request.user)
        return Response(_blinding_out(acknowledged))


class ProgressApi(NoStoreAPIView):
    permission_classes = [IsCoordinatorOrAnalyst]

    @extend_schema(summary="Progress per reader and overall", responses=ProgressOut)
    def get(self, request: Request, study_id: str) -> Response:
        study = selectors.reader_study_get_for_staff(user=request.user, public_id=study_id)
        managed = selectors.reader_study_is_managed_by(user=request.user, reader_study=study)
        return Response(selectors.reader_study_progress(reader_study=study, with_contact=managed))


class StudyRatingHistoryApi(NoStoreAPIView):
    permission_classes = [IsCoordinatorOrAnalyst]

    @extend_schema(
        summary="Every version of one rating (append-only, trigger-written)", responses=HistoryOut
    )
    def get(self, request: Request, study_id: str, assignment_id: str) -> Response:
        study = selectors.reader_study_get_for_staff(user=request.user, public_id=study_id)
        rating = selectors.rating_get_for_staff(reader_study=study, assignment_id=assignment_id)
        return Response(selectors.rating_history(rating=rating))


# --- readers ------------------------------------------------------------------------------


class WorklistApi(NoStoreAPIView):
    permission_classes = [IsReader]

    @extend_schema(
        summary="My reader studies with progress and the next case",
        responses=inline_serializer(
            "Worklist", {"studies": serializers.ListField(child=serializers.DictField())}
        ),
    )
    def get(self, request: Request) -> Response:
        return Response({"studies": selectors.worklist_for_reader(user=request.user)})


class MyAssignmentsApi(NoStoreAPIView):
    permission_classes = [IsReader]

    @extend_schema(
        summary="My assignments (in my reading order)",
        parameters=[OpenApiParameter("study", str, description="reader study id")],
        responses=inline_serializer(
            "MyAssignment",
            {
                "id": serializers.UUIDField(),
                "study": serializers.UUIDField(),
                "position": serializers.IntegerField(),
                "status": serializers.CharField(),
            },
            many=True,
        ),
    )
    def get(self, request: Request) -> Response:
        rows = selectors.assignment_list_for_reader(
            user=request.user, study_id=request.query_params.get("study")
        )
        return Response(
            [
                {
                    "id": str(a.public_id),
                    "study": str(a.reader_study.public_id),
                    "position": a.position,
                    "status": a.status,
                }
                for a in rows
            ]
        )


class MyAssignmentApi(NoStoreAPIView):
    permission_classes = [IsReader]

    @extend_schema(
        summary="One case to read (blinded); records when it was opened", responses=CaseViewOut
    )
    def get(self, request: Request, assignment_id: str) -> Response:
        assignment = selectors.assignment_get_for_reader(user=request.user, public_id=assignment_id)
        services.assignment_open(assignment=assignment)
        return Response(selectors.case_view_for_reader(assignment=assignment))


class DraftApi(NoStoreAPIView):
    permission_classes = [IsReader]

    class DraftIn(serializers.Serializer):
        draft = serializers.DictField()
        seq = serializers.IntegerField(min_value=1)
        active_seconds = serializers.FloatField(required=False, min_value=0)

    @extend_schema(
        summary="Autosave my work in progress",
        request=DraftIn,
        responses=inline_serializer("DraftSaved", {"seq": serializers.IntegerField()}),
    )
    def put(self, request: Request, assignment_id: str) -> Response:
        assignment = selectors.assignment_ref_get_for_reader(
            user=request.user, public_id=assignment_id
        )
        data = self.DraftIn(data=request.data)
        data.is_valid(raise_exception=True)
        saved = services.draft_save(
            assignment=assignment,
            draft=data.validated_data["draft"],
            seq=data.validated_data["seq"],
            active_seconds=data.validated_data.get("active_seconds"),
        )
        return Response({"seq": saved.draft_seq})


class RatingIn(serializers.Serializer):
    answers = serializers.DictField()
    spans = serializers.ListField(child=serializers.DictField(), required=False, default=list)
    idempotency_key = serializers.UUIDField()
    active_seconds = serializers.FloatField(required=False, min_value=0)


class ReviseIn(RatingIn):
    version = serializers.IntegerField(min_value=1)


class MyRatingApi(NoStoreAPIView):
    permission_classes = [IsReader]

    @extend_schema(summary="My rating of this case", responses=ReaderRatingOut)
    def get(self, request: Request, assignment_id: str) -> Response:
        rating = selectors.rating_get_for_reader(user=request.user, assignment_id=assignment_id)
        return Response(_reader_rating(rating, user=request.user))

    @extend_schema(
        summary="Submit my rating (idempotent on idempotency_key)",
        request=RatingIn,
        responses={201: ReaderRatingOut, 200: ReaderRatingOut},
    )
    def post(self, request: Request, assignment_id: str) -> Response:
        assignment = selectors.assignment_ref_get_for_reader(
            user=request.user, public_id=assignment_id
        )
        data = RatingIn(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.rating_submit(
            assignment=assignment,
            reader=request.user,
            answers=data.validated_data["answers"],
            spans=data.validated_data["spans"],
            idempotency_key=data.validated_data["idempotency_key"],
            active_seconds=data.validated_data.get("active_seconds"),
        )
        return Response(
            _reader_rating(result.rating, user=request.user, spans=result.spans),
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )

    @extend_schema(
        summary="Revise my rating; 409 if `version` is no longer current",
        request=ReviseIn,
        responses=ReaderRatingOut,
    )
    def put(self, request: Request, assignment_id: str) -> Response:
        assignment = selectors.assignment_ref_get_for_reader(
            user=request.user, public_id=assignment_id
        )
        data = ReviseIn(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.rating_revise(
            assignment=assignment,
            reader=request.user,
            expected_version=data.validated_data["version"],
            answers=data.validated_data["answers"],
            spans=data.validated_data["spans"],
            idempotency_key=data.validated_data["idempotency_key"],
            active_seconds=data.validated_data.get("active_seconds"),
        )
        return Response(_reader_rating(result.rating, user=request.user, spans=result.spans))


class MyRatingHistoryApi(NoStoreAPIView):
    permission_classes = [IsReader]

    @extend_schema(
        summary="Every version of my rating of this case",
        responses=inline_serializer(
            "ReaderRatingHistoryEntry",
            {
                "version": serializers.IntegerField(),
                "at": serializers.DateTimeField(),
                "event": serializers.CharField(),
                "answers": serializers.DictField(),
            },
            many=True,
        ),
    )
    def get(self, request: Request, assignment_id: str) -> Response:
        rating = selectors.rating_get_for_reader(user=request.user, assignment_id=assignment_id)
        return Response(selectors.rating_history_for_reader(rating=rating))


# --- practice cases -----------------------------------------------------------------------


class CasePracticeApi(NoStoreAPIView):
    """Make a case a practice case (with its other arms' cases) or a real one again."""

    permission_classes = [IsCoordinator]

    class PracticeIn(serializers.Serializer):
        is_practice = serializers.BooleanField()

    @extend_schema(
        summary="Make a case (and its imaging study's other arms) practice, or real again; "
        "a draft before the reading lists only",
        request=PracticeIn,
        responses=CaseOut(many=True),
    )
    def post(self, request: Request, study_id: str, case_id: str) -> Response:
        study = selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
        case = selectors.case_get(reader_study=study, public_id=case_id)
        data = self.PracticeIn(data=request.data)
        data.is_valid(raise_exception=True)
        changed = services.case_practice_set(
            reader_study=study, case=case, is_practice=data.validated_data["is_practice"]
        )
        return Response(CaseOut(changed, many=True).data)


ReferenceOut = inline_serializer(
    "PracticeReference",
    {
        "case": serializers.UUIDField(),
        "is_practice": serializers.BooleanField(),
        "answers": serializers.DictField(),
        "set_at": serializers.DateTimeField(allow_null=True),
    },
)


def _reference_out(case: Case, *, reader_study: ReaderStudy) -> dict[str, Any]:
    form = selectors.reference_form_for_coordinator(reader_study=reader_study, case=case)
    return {
        "case": case.public_id,
        "is_practice": case.is_practice,
        "answers": {item["id"]: item["value"] for item in form["form"] if item["value"]},
        "set_at": case.reference_set_at,
    }


class CaseReferenceApi(NoStoreAPIView):
    """A practice case's reference answers, as letter codes and texts with the case's first
    report as Report A (the readers' form items of those sides)."""

    permission_classes = [IsCoordinatorOrAnalyst]

    class ReferenceIn(serializers.Serializer):
        answers = serializers.DictField()

    @extend_schema(summary="The reference answers of a practice case", responses=ReferenceOut)
    def get(self, request: Request, study_id: str, case_id: str) -> Response:
        study = selectors.reader_study_get_for_staff(user=request.user, public_id=study_id)
        case = selectors.case_get(reader_study=study, public_id=case_id)
        return Response(_reference_out(case, reader_study=study))

    @extend_schema(
        summary="Set the reference answers readers see after a practice case (draft only)",
        request=ReferenceIn,
        responses=ReferenceOut,
    )
    def put(self, request: Request, study_id: str, case_id: str) -> Response:
        study = selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
        case = selectors.case_get(reader_study=study, public_id=case_id)
        data = self.ReferenceIn(data=request.data)
        data.is_valid(raise_exception=True)
        saved = services.case_reference_set(
            reader_study=study,
            case=case,
            answers=data.validated_data["answers"],
            user=request.user,
        )
        return Response(_reference_out(saved, reader_study=study))
