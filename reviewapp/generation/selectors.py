"""Reads of generation data, each with its permission check: coordinators and analysts see
models, jobs, runs and provenance; readers never do (it would unblind them)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet

from reviewapp.core.access import public_id_get_or_404
from reviewapp.core.roles import Role, user_has_role
from reviewapp.generation.models import GenerationJob, GenerationRun, ModelConfig
from reviewapp.imaging.models import Study
from reviewapp.reports.models import Report

User = AbstractBaseUser | AnonymousUser


def _require_staff_view(user: User) -> None:
    if not (user_has_role(user, Role.COORDINATOR) or user_has_role(user, Role.ANALYST)):
        raise PermissionDenied("Generation records are for coordinators and analysts.")


def model_config_list_for_staff(*, user: User, active_only: bool = False) -> QuerySet[ModelConfig]:
    """Configured models, for coordinators and analysts."""
    _require_staff_view(user)
    configs = ModelConfig.objects.all()
    return configs.filter(is_active=True) if active_only else configs


def model_config_get_for_staff(*, user: User, public_id: object) -> ModelConfig:
    _require_staff_view(user)
    return public_id_get_or_404(ModelConfig.objects.all(), public_id, what="model")


def job_list_for_staff(*, user: User) -> QuerySet[GenerationJob]:
    """All generation jobs, newest first."""
    _require_staff_view(user)
    return GenerationJob.objects.select_related("model_config", "created_by")


def job_get_for_staff(*, user: User, public_id: object) -> GenerationJob:
    _require_staff_view(user)
    return public_id_get_or_404(
        GenerationJob.objects.select_related("model_config", "created_by"), public_id, what="job"
    )


def run_list_for_staff(*, user: User, job: GenerationJob) -> QuerySet[GenerationRun]:
    _require_staff_view(user)
    return job.runs.select_related("study", "report").order_by("id")


def run_list_for_study_for_staff(*, user: User, study: Study) -> QuerySet[GenerationRun]:
    """Every generation run over one imaging study, newest first, with its model."""
    _require_staff_view(user)
    return study.generation_runs.select_related("job__model_config", "report").order_by("-id")


def run_get_for_staff(*, user: User, public_id: object) -> GenerationRun:
    """One run with its report and reproducibility record."""
    _require_staff_view(user)
    return public_id_get_or_404(
        GenerationRun.objects.select_related("study", "report", "job__model_config"),
        public_id,
        what="run",
    )


def ai_reports_for_model(*, model_config: ModelConfig) -> QuerySet[Report]:
    """The AI reports one model wrote (for building reader studies); the caller checks access.

    Only reports of succeeded runs count; a study generated twice by the same model yields
    its newest report first.
    """
    return (
        Report.objects.filter(
            kind=Report.Kind.AI,
            generation_run__job__model_config=model_config,
            generation_run__status=GenerationRun.Status.SUCCEEDED,
        )
        .select_related("study")
        .order_by("study_id", "-created_at")
    )


def ai_reports_latest_for_model(*, model_config: ModelConfig) -> QuerySet[Report]:
    """The newest AI report of one model per study: the candidates of a pairwise reader study."""
    newest = ai_reports_for_model(model_config=model_config).distinct("study_id").values("pk")
    return Report.objects.filter(pk__in=newest).select_related("study")


def studies_for_generation(
    *,
    user: User | None,
    modality: str = "",
    stratum: str = "",
) -> QuerySet[Study]:
    """Studies a coordinator may queue, filtered as on the generation page (``user`` None:
    the shell, which may queue any)."""
    if user is not None and not user_has_role(user, Role.COORDINATOR):
        raise PermissionDenied("Only coordinators can generate AI reports.")
    studies = Study.objects.all()
    if modality == "CT":
        studies = studies.filter(modalities__icontains="CT")
    elif modality == "CXR":
        studies = studies.filter(Q(modalities__icontains="CR") | Q(modalities__icontains="DX"))
    if stratum:
        studies = studies.filter(stratum=stratum)
    return studies.order_by("-created_at")
