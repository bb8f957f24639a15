"""Pages of reader studies: the reader's worklist and case page, the coordinator's builder,
study page and live progress. Thin: parse, authorise, call one service or selector, render."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from reviewapp.core.access import role_required
from reviewapp.core.errors import ApplicationError
from reviewapp.core.roles import Role, user_has_role, users_with_role
from reviewapp.reports import selectors as report_selectors
from reviewapp.reports.models import Report, ReportSource
from reviewapp.studies import blinding, protocols, selectors, services
from reviewapp.studies.models import Rating, ReaderStudy


def _whole_number(raw: str, *, field: str, label: str, minimum: int = 0) -> int | None:
    """Parse an optional whole-number form field, explaining a bad value in words."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(
            {field: f"{label} must be a whole number (you entered {raw[:40]!r})."}
        ) from None
    if value < minimum:
        raise ValidationError({field: f"{label} must be {minimum} or more (you entered {value})."})
    return value


# --- readers ------------------------------------------------------------------------------


@require_GET
@role_required(Role.READER)
def worklist(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "studies/worklist.html",
        {"studies": selectors.worklist_for_reader(user=request.user)},
    )


@require_GET
@role_required(Role.READER)
def reading_continue(request: HttpRequest, study_id: str) -> HttpResponse:
    following = selectors.next_assignment_id_for_reader(user=request.user, study_id=study_id)
    if following is None:
        messages.success(request, "You have rated every case of this study. Thank you.")
        return redirect("studies:worklist")
    return redirect("studies:read", assignment_id=following)


@require_GET
@role_required(Role.READER)
def read(request: HttpRequest, assignment_id: str) -> HttpResponse:
    assignment = selectors.assignment_get_for_reader(user=request.user, public_id=assignment_id)
    services.assignment_open(assignment=assignment)
    view = selectors.case_view_for_reader(assignment=assignment)
    return render(request, "studies/read.html", {"case": view})


# --- coordinators -------------------------------------------------------------------------


@require_GET
@role_required(Role.COORDINATOR, Role.ANALYST)
def study_list(request: HttpRequest) -> HttpResponse:
    studies = selectors.reader_study_list_for_staff(user=request.user)
    return render(
        request,
        "studies/study_list.html",
        {"studies": studies, "can_create": user_has_role(request.user, Role.COORDINATOR)},
    )


THRESHOLDS = [
    ("no_revision", "acceptable without revision only"),
    ("minor_revision", "acceptable with minor revision or better"),
    ("major_revision", "major revision needed or better"),
]


@require_http_methods(["GET", "POST"])
@role_required(Role.COORDINATOR)
def study_new(request: HttpRequest) -> HttpResponse:
    templates = protocols.protocol_templates()
    if request.method == "POST":
        try:
            study = services.reader_study_create(
                user=request.user,
                name=request.POST.get("name", ""),
                description=request.POST.get("description", ""),
                protocol_key=request.POST.get("protocol_key", ""),
                ask_ai_guess=request.POST.get("ask_ai_guess") == "on",
                allow_revisions=request.POST.get("allow_revisions") == "on",
                acceptable_threshold=request.POST.get("acceptable_threshold") or None,
            )
        except (ValidationError, ApplicationError) as error:
            # Shown again as typed, the problem above the form.
            return render(
                request,
                "studies/study_new.html",
                {
                    "templates": templates,
                    "thresholds": THRESHOLDS,
                    "form": request.POST,
                    "problems": _problems(error),
                },
                status=400,
            )
        messages.success(request, f"Study {study.name!r} created as a draft.")
        return redirect("studies:detail", study_id=study.public_id)
    return render(
        request,
        "studies/study_new.html",
        {"templates": templates, "thresholds": THRESHOLDS, "form": {}},
    )


def _problems(error: ValidationError | ApplicationError) -> list[str]:
    """Each problem on its own line; protocol problems keep their "where: what" form, which the
    editor uses to put them beside the question they are about."""
    if isinstance(error, ApplicationError):
        return [error.message]
    if not hasattr(error, "error_dict"):
        return list(error.messages)
    return [
        message if field == "protocol" else f"{field}: {message}"
        for field, messages_ in error.message_dict.items()
        for message in messages_
    ]


def _protocol_page(
    request: HttpRequest,
    *,
    document: dict[str, Any] | None,
    text: str = "",
    study: Any = None,
    is_frozen: bool = False,
    frozen_reason: str = "",
    problems: list[str] | None = None,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "studies/protocol_edit.html",
        {
            "study": study,
            "document": document,
            # A document that did not parse comes back as typed, so no work is lost.
            "document_text": (
                json.dumps(document, indent=2, ensure_ascii=False) if document is not None else text
            ),
            "is_frozen": is_frozen,
            "frozen_reason": frozen_reason,
            "problems": problems or [],
            "templates": protocols.protocol_templates(),
            "form": request.POST if request.method == "POST" else {},
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@role_required(Role.COORDINATOR)
def protocol_new(request: HttpRequest) -> HttpResponse:
    """Compose a protocol (from a template, another study's protocol, or scratch) and create a
    draft study with it."""
    if request.method == "POST":
        text = request.POST.get("protocol", "")
        document = None
        try:
            document = protocols.protocol_parse(text)
            study = services.reader_study_create(
                user=request.user,
                name=request.POST.get("name", ""),
                description=request.POST.get("description", ""),
                protocol=document,
                ask_ai_guess=request.POST.get("ask_ai_guess") == "on",
                allow_revisions=request.POST.get("allow_revisions") == "on",
            )
        except (ValidationError, ApplicationError) as error:
            return _protocol_page(
                request, document=document, text=text, problems=_problems(error), status=400
            )
        messages.success(request, f"Study {study.name!r} created as a draft with your protocol.")
        return redirect("studies:detail", study_id=study.public_id)
    template_key = request.GET.get("template", "")
    from_study = request.GET.get("from", "")
    if from_study:
        source = selectors.reader_study_get_for_staff(user=request.user, public_id=from_study)
        return _protocol_page(request, document=protocols.protocol_next_version(source.protocol))
    if template_key:
        try:
            return _protocol_page(request, document=protocols.protocol_template(template_key))
        except ValidationError as error:
            return _protocol_page(
                request, document=protocols.protocol_blank(), problems=_problems(error), status=404
            )
    return _protocol_page(request, document=protocols.protocol_blank())


@require_http_methods(["GET", "POST"])
@role_required(Role.COORDINATOR)
def study_protocol(request: HttpRequest, study_id: str) -> HttpResponse:
    """A study's protocol: editable while the study is a draft without ratings, else read-only
    with a way to start its next version."""
    study = selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
    frozen_reason = selectors.reader_study_protocol_frozen_reason(reader_study=study)
    if request.method == "POST":
        text = request.POST.get("protocol", "")
        document = None
        try:
            document = protocols.protocol_parse(text)
            services.reader_study_protocol_update(reader_study=study, protocol=document)
        except (ValidationError, ApplicationError) as error:
            # A frozen protocol is shown as stored: the refused edit cannot be saved anyway.
            return _protocol_page(
                request,
                document=study.protocol if frozen_reason else document,
                text=text,
                study=study,
                is_frozen=bool(frozen_reason),
                frozen_reason=frozen_reason,
                problems=_problems(error),
                status=400,
            )
        messages.success(request, "Protocol saved.")
        return redirect("studies:protocol", study_id=study.public_id)
    return _protocol_page(
        request,
        document=study.protocol,
        study=study,
        is_frozen=bool(frozen_reason),
        frozen_reason=frozen_reason,
    )


def _readers() -> list[Any]:
    return list(users_with_role(Role.READER))


# The study page is one guided flow: protocol -> cases -> readers -> reading lists -> blinding
# check -> open. Each form posts to its own URL; a success redirects to its step, a refusal
# renders the page again with everything as typed and the problem in the step it concerns.
RATE_SOURCES = [
    ("candidate", "AI report"),
    ("original", "original report"),
    ("both", "both, as separate cases"),
]
STEP_OF_FIELD = {
    "candidate_source": "cases",
    "readers": "readers",
    "reads_per_case": "lists",
    "seed": "lists",
    "same_study_gap": "lists",
    "cases": "cases",
}


def _step_url(study: ReaderStudy, step: str) -> str:
    return reverse("studies:detail", args=[study.public_id]) + f"#step-{step}"


def _done(request: HttpRequest, study: ReaderStudy, step: str, text: str) -> HttpResponse:
    """Say what was done in its step and go back there."""
    messages.success(request, text, extra_tags=f"step-{step}")
    return redirect(_step_url(study, step))


def _panel_as_posted(request: HttpRequest) -> list[tuple[Any, bool, str]]:
    chosen = set(request.POST.getlist("reader"))
    return [(u, str(u.pk) in chosen, request.POST.get(f"cohort_{u.pk}", "")) for u in _readers()]


def _panel_posted(request: HttpRequest) -> list[tuple[Any, str]]:
    """The readers ticked on the page, with their cohorts."""
    return [(u, cohort.strip()) for u, chosen, cohort in _panel_as_posted(request) if chosen]


def _panel_shown(request: HttpRequest, study: ReaderStudy) -> list[tuple[Any, bool, str]]:
    """Every reader with their tick and cohort: as posted when the page sent its panel (so a
    refused form keeps them), else as saved."""
    if request.method == "POST" and "panel_shown" in request.POST:
        return _panel_as_posted(request)
    seats = {s.reader_id: s.cohort for s in study.panel.all()}
    return [(u, u.pk in seats, seats.get(u.pk, "")) for u in _readers()]


def _study_page(
    request: HttpRequest,
    study: ReaderStudy,
    *,
    step: str = "",
    error: ValidationError | ApplicationError | None = None,
) -> HttpResponse:
    """The study page; with ``error``, refused (400) with the posted values kept and each
    problem shown in the step it belongs to (``step`` by default)."""
    can_manage = selectors.reader_study_is_managed_by(user=request.user, reader_study=study)
    is_draft = study.status == ReaderStudy.Status.DRAFT
    errors: dict[str, list[str]] = {}
    invalid: list[str] = []
    if isinstance(error, ValidationError) and hasattr(error, "error_dict"):
        for name, problems in error.message_dict.items():
            errors.setdefault(STEP_OF_FIELD.get(name, step), []).extend(problems)
            invalid.append(name)
    elif error is not None:
        errors[step] = (
            [error.message] if isinstance(error, ApplicationError) else list(error.messages)
        )
    # The original first: a pair that includes it shows it as the reference side.
    sources = (
        sorted(
            report_selectors.report_sources_list(user=request.user).exclude(
                kind=ReportSource.Kind.EDITED
            ),
            key=lambda s: s.kind != ReportSource.Kind.ORIGINAL,
        )
        if can_manage and is_draft
        else []
    )
    ratings = (
        Rating.objects.filter(assignment__reader_study=study)
        .select_related("assignment__reader", "assignment__case__imaging_study")
        .order_by("assignment__reader__username", "assignment__position")
    )
    blinding_summary = blinding.blinding_summary(reader_study=study)
    modality_warnings = selectors.cases_modality_warnings(reader_study=study)
    steps = selectors.reader_study_setup_steps(
        reader_study=study, blinding_summary=blinding_summary, modality_warnings=modality_warnings
    )
    context = {
        "study": study,
        "can_manage": can_manage,
        "may_build": can_manage and is_draft,
        "steps": steps,
        "step": {s.key: s for s in steps},
        "next_step": next((s.key for s in steps if not s.is_done), "") if is_draft else "",
        "errors": errors,
        "invalid": invalid,
        "form": request.POST if error is not None else {},
        "chosen_sources": request.POST.getlist("source") if error is not None else [],
        "rate_sources": RATE_SOURCES,
        "cases": selectors.case_list(reader_study=study),
        "readers": _panel_shown(request, study) if can_manage else [],
        "panel": study.panel.select_related("reader").order_by("reader__username"),
        "progress": selectors.reader_study_progress(reader_study=study, with_contact=can_manage),
        "newer_versions": selectors.cases_with_newer_versions_count(reader_study=study),
        "modality_warnings": modality_warnings,
        "has_reading_lists": study.assignments.exists(),
        "arms": selectors.arm_list(reader_study=study),
        "designs": _design_choices(study),
        "sources": sources,
        "source_pairs": [(a, b) for i, a in enumerate(sources) for b in sources[i + 1 :]],
        "blinding": blinding_summary,
        "ratings": ratings,
        "candidate_sources": (
            selectors.candidate_sources_list(user=request.user) if can_manage and is_draft else []
        ),
        "strata": sorted(
            {
                s
                for s in selectors.case_candidates(user=request.user).values_list(
                    "stratum", flat=True
                )
                if s
            }
        ),
    }
    return render(
        request, "studies/study_detail.html", context, status=400 if error is not None else 200
    )


@require_GET
@role_required(Role.COORDINATOR, Role.ANALYST)
def study_detail(request: HttpRequest, study_id: str) -> HttpResponse:
    study = selectors.reader_study_get_for_staff(user=request.user, public_id=study_id)
    return _study_page(request, study)


def _design_choices(study: Any) -> list[dict[str, str]]:
    """The designs a coordinator may pick for this study's protocol, in plain words."""
    Design = ReaderStudy.Design
    if study.is_pairwise:
        return [
            {"value": Design.ONE_MODEL, "label": "One model against the original reports",
             "hint": "Choose the model's reports when adding cases (the simplest study)."},
            {"value": Design.VS_REFERENCE, "label": "Each chosen model against the original "
             "reports", "hint": "One arm per model: model A vs original, model B vs original."},
            {"value": Design.ALL_PAIRS, "label": "Every pair of the chosen sources",
             "hint": "Two models: model A vs model B. Add the original for all three pairs."},
            {"value": Design.CHOSEN_PAIRS, "label": "Only the pairs I tick below",
             "hint": "e.g. model A vs original, model B vs original and model A vs model B."},
        ]  # fmt: skip
    return [
        {"value": Design.ONE_MODEL, "label": "One report per case, chosen when adding cases",
         "hint": "The AI report, the original or both, as before."},
        {"value": Design.EACH_SOURCE, "label": "Each chosen source's report, rated on its own",
         "hint": "One arm per source; readers rate each report without its pair."},
    ]  # fmt: skip


def _sources_by_id(request: HttpRequest, ids: list[str]) -> list[ReportSource]:
    """Sources named by public id, in the order given; an unknown id is a form error."""
    sources = {str(s.public_id): s for s in report_selectors.report_sources_list(user=request.user)}
    unknown = [i for i in ids if i not in sources]
    if unknown:
        raise ValidationError({"sources": "Choose sources from the list."})
    return [sources[i] for i in ids]


@require_POST
@role_required(Role.COORDINATOR)
def study_design(request: HttpRequest, study_id: str) -> HttpResponse:
    """Set the study's design (its arms): the first part of the cases step."""
    study = selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
    try:
        pairs = []
        for value in request.POST.getlist("pair"):
            first_id, _, second_id = value.partition(",")
            first, second = _sources_by_id(request, [first_id, second_id])
            pairs.append((first, second))
        arms = services.arms_set(
            reader_study=study,
            design=request.POST.get("design", ""),
            sources=_sources_by_id(request, request.POST.getlist("source")),
            pairs=pairs,
        )
    except (ValidationError, ApplicationError) as error:
        return _study_page(request, study, step="cases", error=error)
    if arms:
        return _done(request, study, "cases", f"Design saved: {len(arms)} arm(s).")
    return _done(request, study, "cases", "Design saved: one model against the original reports.")


@require_POST
@role_required(Role.COORDINATOR)
def study_reading_options(request: HttpRequest, study_id: str) -> HttpResponse:
    """What readers see besides the reports (the protocol step)."""
    study = selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
    try:
        services.reader_study_reading_options_set(
            reader_study=study,
            same_study_gap=study.same_study_gap,
            show_clinical_context=request.POST.get("show_clinical_context") == "on",
        )
    except (ValidationError, ApplicationError) as error:
        return _study_page(request, study, step="protocol", error=error)
    return _done(request, study, "protocol", "Reading options saved.")


@require_POST
@role_required(Role.COORDINATOR)
def cases_add(request: HttpRequest, study_id: str) -> HttpResponse:
    study = selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
    try:
        result = _add_cases(request, study)
    except (ValidationError, ApplicationError) as error:
        return _study_page(request, study, step="cases", error=error)
    messages.success(request, f"{len(result.added)} case(s) added.", extra_tags="step-cases")
    for warning in result.warnings + result.problems[:50]:
        messages.warning(request, warning, extra_tags="step-cases")
    return redirect(_step_url(study, "cases"))


@require_POST
@role_required(Role.COORDINATOR)
def panel_save(request: HttpRequest, study_id: str) -> HttpResponse:
    study = selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
    readers = _panel_posted(request)
    try:
        services.panel_set(reader_study=study, readers=readers)
    except (ValidationError, ApplicationError) as error:
        return _study_page(request, study, step="readers", error=error)
    return _done(request, study, "readers", f"Panel set: {len(readers)} reader(s).")


@require_POST
@role_required(Role.COORDINATOR)
def reading_lists_generate(request: HttpRequest, study_id: str) -> HttpResponse:
    """Draw the reading lists for the readers ticked on the page (saved with them)."""
    study = selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
    try:
        created = services.reading_lists_generate(
            reader_study=study,
            readers=_panel_posted(request),
            same_study_gap=_whole_number(
                request.POST.get("same_study_gap", ""),
                field="same_study_gap",
                label="The gap between reads of one imaging study",
            ),
            reads_per_case=_whole_number(
                request.POST.get("reads_per_case", ""),
                field="reads_per_case",
                label="Readers per case",
                minimum=1,
            ),
            seed=_whole_number(request.POST.get("seed", ""), field="seed", label="Seed"),
        )
    except (ValidationError, ApplicationError) as error:
        return _study_page(request, study, step="lists", error=error)
    return _done(request, study, "lists", f"{created} assignments generated.")


def _status_change(
    request: HttpRequest, study_id: str, change: Callable[..., Any], done: str
) -> HttpResponse:
    """Open, pause or lock: the service decides whether the study may; a refusal is shown in
    the open step of the study page."""
    study = selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
    try:
        change(reader_study=study)
    except (ValidationError, ApplicationError) as error:
        return _study_page(request, study, step="open", error=error)
    return _done(request, study, "open", done)


@require_POST
@role_required(Role.COORDINATOR)
def study_open(request: HttpRequest, study_id: str) -> HttpResponse:
    return _status_change(request, study_id, services.reader_study_open, "Study is now open.")


@require_POST
@role_required(Role.COORDINATOR)
def study_pause(request: HttpRequest, study_id: str) -> HttpResponse:
    return _status_change(request, study_id, services.reader_study_pause, "Study is now paused.")


@require_POST
@role_required(Role.COORDINATOR)
def study_lock(request: HttpRequest, study_id: str) -> HttpResponse:
    return _status_change(request, study_id, services.reader_study_lock, "Study is now locked.")


@require_http_methods(["GET", "POST"])
@role_required(Role.COORDINATOR)
def study_refresh_reports(request: HttpRequest, study_id: str) -> HttpResponse:
    """Preview (GET) and apply (POST) moving a draft study's cases to the latest versions."""
    study = selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
    if request.method == "POST":
        try:
            result = services.cases_refresh_to_latest(reader_study=study)
        except ApplicationError as error:
            return _study_page(request, study, step="cases", error=error)
        moved = len({move.case.pk for move in result.moved})
        for problem in result.problems:
            messages.error(request, problem, extra_tags="step-cases")
        return _done(
            request, study, "cases", f"{moved} case(s) moved to the latest report versions."
        )
    return render(
        request,
        "studies/study_refresh_reports.html",
        {
            "study": study,
            "moves": selectors.cases_refresh_preview(reader_study=study),
            "is_draft": study.status == study.Status.DRAFT,
        },
    )


@require_POST
@role_required(Role.COORDINATOR)
def study_blinding_check(request: HttpRequest, study_id: str) -> HttpResponse:
    study = selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
    try:
        tells = blinding.blinding_check_record(reader_study=study)
    except ApplicationError as error:
        return _study_page(request, study, step="blinding", error=error)
    cases = len({t.case for t in tells})
    return _done(
        request,
        study,
        "blinding",
        f"Blinding check done: {len(tells)} tell(s) in {cases} case(s). Review them below.",
    )


@require_POST
@role_required(Role.COORDINATOR)
def study_blinding_acknowledge(request: HttpRequest, study_id: str) -> HttpResponse:
    study = selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
    try:
        blinding.blinding_acknowledge(reader_study=study, user=request.user)
    except ApplicationError as error:
        return _study_page(request, study, step="blinding", error=error)
    return _done(request, study, "blinding", "Blinding check acknowledged; the study may open.")


def _candidate_reports(request: HttpRequest, source_public_id: str) -> QuerySet[Report]:
    """The AI reports a case may pair with the original: one source's newest per study, or
    any AI report when no source is chosen (a study with several is then named and skipped)."""
    if not source_public_id:
        return Report.objects.filter(kind=Report.Kind.AI)
    source = selectors.candidate_source_get(user=request.user, public_id=source_public_id)
    return selectors.candidate_reports_of_source(source=source)


def _per_stratum(text: str) -> dict[str, int]:
    """``normal: 20, abnormal: 20`` (or one per line) as counts per stratum."""
    per_stratum: dict[str, int] = {}
    for line in text.replace(",", "\n").splitlines():
        if ":" in line:
            name, count = line.split(":", 1)
            per_stratum[name.strip()] = (
                _whole_number(
                    count, field="sample", label=f"The count of stratum {name.strip()!r}", minimum=1
                )
                or 0
            )
        elif line.strip():
            raise ValidationError(
                {"sample": f"Write each stratum as name: count (got {line.strip()[:40]!r})."}
            )
    return per_stratum


def _add_cases(request: HttpRequest, study: Any) -> services.CasesAdded:
    uids = [u.strip() for u in request.POST.get("study_uids", "").split() if u.strip()]
    candidates = _candidate_reports(request, request.POST.get("candidate_source", "").strip())
    return services.cases_add_from_selection(
        reader_study=study,
        user=request.user,
        candidate_reports=candidates,
        modality=request.POST.get("modality", "").strip(),
        stratum=request.POST.get("stratum", "").strip(),
        study_uids=uids or None,
        rate_source=request.POST.get("rate_source", "candidate"),
        per_stratum=_per_stratum(request.POST.get("sample", "")),
        seed=_whole_number(
            request.POST.get("sample_seed", ""), field="sample_seed", label="Sample seed"
        ),
    )


@require_POST
@role_required(Role.COORDINATOR)
def case_remove(request: HttpRequest, study_id: str, case_id: str) -> HttpResponse:
    study = selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
    case = selectors.case_get(reader_study=study, public_id=case_id)
    try:
        services.cases_remove(reader_study=study, cases=[case])
    except ApplicationError as error:
        return _study_page(request, study, step="cases", error=error)
    return _done(request, study, "cases", f"Case {case.imaging_study.label} removed.")


@require_POST
@role_required(Role.COORDINATOR)
def study_delete(request: HttpRequest, study_id: str) -> HttpResponse:
    study = selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
    name = study.name
    try:
        services.reader_study_delete(reader_study=study)
    except ApplicationError as error:
        return _study_page(request, study, step="open", error=error)
    messages.success(request, f"Draft study {name!r} deleted.")
    return redirect("studies:list")


@require_GET
@role_required(Role.COORDINATOR, Role.ANALYST)
def study_progress(request: HttpRequest, study_id: str) -> HttpResponse:
    study = selectors.reader_study_get_for_staff(user=request.user, public_id=study_id)
    manages = selectors.reader_study_is_managed_by(user=request.user, reader_study=study)
    return render(
        request,
        "studies/study_progress.html",
        {
            "study": study,
            "progress": selectors.reader_study_progress(reader_study=study, with_contact=manages),
            "may_export": manages,
        },
    )


@require_GET
@role_required(Role.COORDINATOR)
def study_progress_export(request: HttpRequest, study_id: str) -> HttpResponse:
    """The progress table as CSV: names and e-mail of readers, so coordinators of the study
    and admins only (analysts see the page, not the file)."""
    study = selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
    progress = selectors.reader_study_progress(reader_study=study, with_contact=True)
    response = HttpResponse(
        selectors.progress_csv(progress), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="progress-{study.public_id}.csv"'
    return response


@require_GET
@role_required(Role.COORDINATOR, Role.ANALYST)
def rating_history(request: HttpRequest, study_id: str, assignment_id: str) -> HttpResponse:
    study = selectors.reader_study_get_for_staff(user=request.user, public_id=study_id)
    rating = selectors.rating_get_for_staff(reader_study=study, assignment_id=assignment_id)
    users = dict(get_user_model().objects.values_list("pk", "username"))
    history = selectors.rating_history(rating=rating)
    for entry in history:
        entry["by"] = users.get(entry["by_user_id"], "")
    return render(
        request,
        "studies/rating_history.html",
        {"study": study, "assignment": rating.assignment, "history": history},
    )


# --- practice cases -----------------------------------------------------------------------


@require_GET
@role_required(Role.COORDINATOR, Role.ANALYST)
def study_practice(request: HttpRequest, study_id: str) -> HttpResponse:
    """The study's cases, to choose practice cases and reach their reference answers."""
    study = selectors.reader_study_get_for_staff(user=request.user, public_id=study_id)
    return render(
        request,
        "studies/study_practice.html",
        {
            "study": study,
            "can_manage": selectors.reader_study_is_managed_by(
                user=request.user, reader_study=study
            ),
            "rows": selectors.practice_cases_for_coordinator(reader_study=study),
            "has_reading_lists": study.assignments.exists(),
        },
    )


@require_POST
@role_required(Role.COORDINATOR)
def case_practice(request: HttpRequest, study_id: str, case_id: str) -> HttpResponse:
    """Make a case (with its other arms' cases) a practice case, or a real one again."""
    study = selectors.reader_study_get_for_coordinator(user=request.user, public_id=study_id)
    case = selectors.case_get(reader_study=study, public_id=case_id)
    is_practice = request.POST.get("is_practice") == "1"
    try:
        changed = services.case_practice_set(reader_study=study, case=case, is_practice=is_practice)
    except ApplicationError as error:
        messages.error(request, " ".join(_problems(error)))
    else:
        label = case.imaging_study.label
        if not changed:
            messages.info(
                request, f"{label} was already {'a practice' if is_practice else 'a real'} case."
            )
        elif is_practice:
            messages.success(request, f"{label} is a practice case; enter its reference answers.")
        else:
            messages.success(request, f"{label} is a real case again.")
    return redirect(reverse("studies:practice", args=[study.public_id]) + f"#case-{case.public_id}")


@require_http_methods(["GET", "POST"])
@role_required(Role.COORDINATOR, Role.ANALYST)
def case_reference(request: HttpRequest, study_id: str, case_id: str) -> HttpResponse:
    """The reference answers of a practice case: the questions as readers see them."""
    study = selectors.reader_study_get_for_staff(user=request.user, public_id=study_id)
    case = selectors.case_get(reader_study=study, public_id=case_id)
    can_manage = selectors.reader_study_is_managed_by(user=request.user, reader_study=study)
    problems: list[str] = []
    answers: dict[str, str] | None = None
    errors: dict[str, str] = {}
    if request.method == "POST":
        if not can_manage:
            raise PermissionDenied
        # One value per question (a radio group or a text box); an empty box is no answer.
        answers = {
            key: value
            for key in request.POST
            if key != "csrfmiddlewaretoken" and (value := request.POST.get(key, "").strip())
        }
        try:
            services.case_reference_set(
                reader_study=study, case=case, answers=answers, user=request.user
            )
        except ApplicationError as error:
            problems = [error.message]
        except ValidationError as error:
            # Each message beside its question, as on the reading page; the rest above.
            for key, texts in error.message_dict.items():
                item = key.removeprefix("answers.")
                if item != key:
                    errors[item] = " ".join(texts)
                else:
                    problems += texts
            problems = problems or ["Some answers need attention: see the marked questions."]
        else:
            messages.success(request, f"Reference answers of {case.imaging_study.label} saved.")
            return redirect(
                reverse("studies:practice", args=[study.public_id]) + f"#case-{case.public_id}"
            )
    view = selectors.reference_form_for_coordinator(
        reader_study=study, case=case, answers=answers, errors=errors
    )
    return render(
        request,
        "studies/case_reference.html",
        {
            "study": study,
            "case": case,
            "view": view,
            "problems": problems,
            "can_edit": can_manage and study.status == ReaderStudy.Status.DRAFT,
        },
        status=400 if problems else 200,
    )
