"""Server-rendered pages: queue generation, watch a job, read a run's report and provenance."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from reviewapp.core.access import public_id_parse, role_required
from reviewapp.core.errors import ApplicationError
from reviewapp.core.roles import Role, user_has_role
from reviewapp.generation import selectors, services
from reviewapp.generation.models import DEFAULT_PROMPT_CT, DEFAULT_PROMPT_CXR, ModelConfig
from reviewapp.generation.services import job_counts
from reviewapp.imaging.models import Study

STUDY_PAGE = 500


@role_required(Role.COORDINATOR, Role.ANALYST)
@require_http_methods(["GET", "POST"])
def job_list(request: HttpRequest) -> HttpResponse:
    is_coordinator = user_has_role(request.user, Role.COORDINATOR)
    modality = request.GET.get("modality", "")
    stratum = request.GET.get("stratum", "")
    if request.method == "POST":
        if not is_coordinator:
            raise PermissionDenied
        model_id = public_id_parse(request.POST.get("model", ""))
        if model_id is None:
            messages.error(request, "Choose a model.")
            return redirect("generation:job_list")
        config = selectors.model_config_get_for_staff(user=request.user, public_id=model_id)
        try:
            created = services.generation_job_create_from_selection(
                user=request.user,
                model_config=config,
                modality=request.POST.get("modality", ""),
                stratum=request.POST.get("stratum", ""),
                study_refs=request.POST.getlist("studies"),
                only_missing=bool(request.POST.get("only_missing")),
            )
        except ValidationError as exc:
            for problem in exc.messages:
                messages.error(request, problem)
            return redirect("generation:job_list")
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return redirect("generation:job_list")
        for study, why in created.skipped:
            messages.warning(request, f"Study {study.label} skipped: {why}.")
        return redirect("generation:job_detail", job_id=created.job.public_id)
    studies: list[Study] = []
    if is_coordinator:
        matching = selectors.studies_for_generation(
            user=request.user, modality=modality, stratum=stratum
        )
        studies = list(matching[:STUDY_PAGE])
    jobs = [(job, job_counts(job)) for job in selectors.job_list_for_staff(user=request.user)[:50]]
    return render(
        request,
        "generation/job_list.html",
        {
            "jobs": jobs,
            "models": selectors.model_config_list_for_staff(user=request.user, active_only=True),
            "studies": studies,
            "modality": modality,
            "stratum": stratum,
            "is_coordinator": is_coordinator,
        },
    )


@role_required(Role.COORDINATOR, Role.ANALYST)
def job_detail(request: HttpRequest, job_id: str) -> HttpResponse:
    job = selectors.job_get_for_staff(user=request.user, public_id=job_id)
    runs = selectors.run_list_for_staff(user=request.user, job=job)
    counts = job_counts(job)
    return render(
        request,
        "generation/job_detail.html",
        {
            "job": job,
            "runs": runs,
            "counts": counts,
            "percent": round(100 * counts["finished"] / counts["total"]) if counts["total"] else 0,
            "is_coordinator": user_has_role(request.user, Role.COORDINATOR),
            "page_data": {
                "job": str(job.public_id),
                "api": f"/api/v1/generation/jobs/{job.public_id}/",
                "socket": f"/ws/generation/jobs/{job.public_id}/",
                "live": user_has_role(request.user, Role.COORDINATOR),
            },
        },
    )


@role_required(Role.COORDINATOR)
@require_POST
def job_cancel(request: HttpRequest, job_id: str) -> HttpResponse:
    job = selectors.job_get_for_staff(user=request.user, public_id=job_id)
    cancelled = services.generation_job_cancel(user=request.user, job=job)
    messages.info(request, f"Cancelled {cancelled} unfinished run(s).")
    return redirect("generation:job_detail", job_id=job.public_id)


@role_required(Role.COORDINATOR)
@require_POST
def run_retry(request: HttpRequest, run_id: str) -> HttpResponse:
    run = selectors.run_get_for_staff(user=request.user, public_id=run_id)
    try:
        services.generation_run_retry(user=request.user, run=run)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("generation:job_detail", job_id=run.job.public_id)


@role_required(Role.COORDINATOR, Role.ANALYST)
def run_detail(request: HttpRequest, run_id: str) -> HttpResponse:
    run = selectors.run_get_for_staff(user=request.user, public_id=run_id)
    return render(request, "generation/run_detail.html", {"run": run})


class ModelConfigForm(forms.Form):
    name = forms.CharField(max_length=100)
    backend = forms.ChoiceField(choices=ModelConfig.Backend.choices)
    location = forms.CharField(max_length=500, required=False)
    served_model_name = forms.CharField(max_length=200, required=False)
    parameters = forms.JSONField(required=False, initial=dict)
    prompt_cxr = forms.CharField(widget=forms.Textarea, required=False)
    prompt_ct = forms.CharField(widget=forms.Textarea, required=False)
    max_attempts = forms.IntegerField(min_value=1, max_value=10, initial=2)
    time_limit_seconds = forms.IntegerField(min_value=10, initial=900)
    is_active = forms.BooleanField(required=False, initial=True)


@role_required(Role.COORDINATOR, Role.ANALYST)
def model_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "generation/model_list.html",
        {
            "models": selectors.model_config_list_for_staff(user=request.user),
            "is_coordinator": user_has_role(request.user, Role.COORDINATOR),
        },
    )


@role_required(Role.COORDINATOR)
@require_http_methods(["GET", "POST"])
def model_edit(request: HttpRequest, model_id: str | None = None) -> HttpResponse:
    config = (
        selectors.model_config_get_for_staff(user=request.user, public_id=model_id)
        if model_id
        else None
    )
    if request.method == "POST":
        form = ModelConfigForm(request.POST)
        if form.is_valid():
            values = dict(form.cleaned_data)
            values["parameters"] = values["parameters"] or {}
            try:
                services.model_config_save(user=request.user, model_config=config, **values)
            except ValidationError as exc:
                for field, problems in exc.message_dict.items():
                    for problem in problems:
                        form.add_error(field if field in form.fields else None, problem)
            else:
                messages.success(request, f"Model {values['name']} saved.")
                return redirect("generation:model_list")
    elif config is not None:
        form = ModelConfigForm(
            initial={field: getattr(config, field) for field in services.MODEL_CONFIG_FIELDS}
        )
    else:
        form = ModelConfigForm(
            initial={"prompt_cxr": DEFAULT_PROMPT_CXR, "prompt_ct": DEFAULT_PROMPT_CT}
        )
    return render(request, "generation/model_form.html", {"form": form, "config": config})
