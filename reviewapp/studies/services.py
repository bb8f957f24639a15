"""Every write of reader studies: building, opening and locking a study, drafts and ratings.

All four interfaces (pages, API, websocket pushes, benchmarks) call these; none writes itself.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.db.models import QuerySet
from django.utils import timezone

from reviewapp.core.errors import ApplicationError, ConflictError
from reviewapp.core.events import send_on_commit
from reviewapp.core.history import history_context_set
from reviewapp.core.roles import Role, user_has_role
from reviewapp.imaging.models import Study
from reviewapp.reports.models import Report, ReportSource
from reviewapp.reports.services import report_source_edited, report_source_original
from reviewapp.studies import blinding, protocols, reading_lists, schemas, selectors
from reviewapp.studies.models import (
    Assignment,
    Case,
    ErrorSpan,
    Rating,
    RatingWrite,
    ReaderStudy,
    RenderedReport,
    StudyArm,
    StudyReader,
    rendering_sha256,
)
from reviewapp.studies.rendering import RENDERER_VERSION, report_render

UserLike = AbstractBaseUser | AnonymousUser
logger = logging.getLogger(__name__)
MAX_DRAFT_BYTES = 256 * 1024


def progress_group(reader_study: ReaderStudy) -> str:
    return f"reader_study_progress_{reader_study.public_id.hex}"


# --- building a study --------------------------------------------------------------------


@transaction.atomic
def reader_study_create(
    *,
    user: UserLike,
    name: str,
    protocol_key: str | None = None,
    protocol: dict[str, Any] | None = None,
    description: str = "",
    ask_ai_guess: bool = False,
    allow_revisions: bool = True,
    acceptable_threshold: str | None = None,
) -> ReaderStudy:
    """Create a draft study from a template (or a composed protocol); its creator coordinates."""
    if not user_has_role(user, Role.COORDINATOR):
        raise PermissionDenied
    if (protocol_key is None) == (protocol is None):
        raise ValidationError({"protocol": "Give a template key or a protocol document."})
    document = protocols.protocol_template(protocol_key) if protocol_key else protocol
    if not isinstance(document, dict):
        raise ValidationError({"protocol": "The protocol must be a JSON object."})
    protocols.protocol_validate(document)
    prepared = protocols.protocol_prepare(
        document, ask_ai_guess=ask_ai_guess, acceptable_threshold=acceptable_threshold
    )
    study = ReaderStudy(
        name=name.strip(),
        description=description,
        protocol=prepared,
        protocol_key=prepared["key"],
        protocol_version=prepared["version"],
        ask_ai_guess=ask_ai_guess,
        allow_revisions=allow_revisions,
        created_by=user,  # type: ignore[misc]
    )
    study.full_clean()
    study.save()
    study.coordinators.add(user)  # type: ignore[arg-type]
    return study


@transaction.atomic
def reader_study_protocol_update(*, reader_study: ReaderStudy, protocol: dict[str, Any]) -> None:
    """Replace the protocol; refused once any rating exists (the version is then frozen)."""
    study = ReaderStudy.objects.select_for_update().get(pk=reader_study.pk)
    if Rating.objects.filter(assignment__reader_study=study).exists():
        raise ApplicationError(
            "This study has ratings, so its protocol is frozen; create a new study to change it.",
            code="protocol_frozen",
        )
    if study.status != ReaderStudy.Status.DRAFT:
        raise ApplicationError("Only a draft study's protocol can change.", code="not_draft")
    protocols.protocol_validate(protocol)
    study.protocol = protocols.protocol_prepare(protocol, ask_ai_guess=study.ask_ai_guess)
    study.protocol_key = protocol["key"]
    study.protocol_version = protocol["version"]
    study.save(update_fields=["protocol", "protocol_key", "protocol_version", "updated_at"])
    # Reference answers answer the old questions: the coordinator enters them again.
    study.cases.filter(is_practice=True).update(
        reference_answers={}, reference_set_by=None, reference_set_at=None
    )
    reader_study.refresh_from_db()


def _require_draft(study: ReaderStudy, what: str) -> None:
    if study.status != ReaderStudy.Status.DRAFT:
        raise ApplicationError(
            f"{what} is only possible while the study is a draft (it is {study.status}).",
            code="not_draft",
        )


SourcePair = tuple[ReportSource, ReportSource | None]


def _arms_for_design(
    *,
    design: str,
    sources: Sequence[ReportSource],
    pairs: Sequence[tuple[ReportSource, ReportSource]],
) -> list[SourcePair]:
    """The (first, second) sources of each arm a design names, in a stable order."""
    Design = ReaderStudy.Design
    if design == Design.VS_REFERENCE:
        reference = report_source_original()
        candidates = [s for s in sources if s.pk != reference.pk]
        if not candidates:
            raise ValidationError({"sources": "Choose at least one model to compare."})
        return [(reference, c) for c in candidates]
    if design == Design.ALL_PAIRS:
        if len(sources) < 2:
            raise ValidationError({"sources": "Choose at least two sources to pair."})
        return [(a, b) for i, a in enumerate(sources) for b in sources[i + 1 :]]
    if design == Design.CHOSEN_PAIRS:
        if not pairs:
            raise ValidationError({"pairs": "Choose at least one pair of sources."})
        seen: set[frozenset[int]] = set()
        for a, b in pairs:
            if a.pk == b.pk:
                raise ValidationError({"pairs": f"{a.label} cannot be paired with itself."})
            if frozenset((a.pk, b.pk)) in seen:
                raise ValidationError({"pairs": f"{a.label} and {b.label} are paired twice."})
            seen.add(frozenset((a.pk, b.pk)))
        return [(a, b) for a, b in pairs]
    if design == Design.EACH_SOURCE:
        if not sources:
            raise ValidationError({"sources": "Choose at least one source to rate."})
        return [(s, None) for s in sources]
    raise ValidationError({"design": "Choose one of the study designs."})


@transaction.atomic
def arms_set(
    *,
    reader_study: ReaderStudy,
    design: str,
    sources: Sequence[ReportSource] = (),
    pairs: Sequence[tuple[ReportSource, ReportSource]] = (),
) -> list[StudyArm]:
    """Set what the study's reads compare: its design and the arms it names.

    Only in a draft without cases (cases are made per arm). ``design`` "" returns the study
    to one model against the original, chosen per model run when adding cases. Pair designs
    need a pairwise protocol, "each source on its own" a single-report one.
    """
    study = ReaderStudy.objects.select_for_update().get(pk=reader_study.pk)
    _require_draft(study, "Choosing the design")
    if study.cases.exists():
        raise ApplicationError(
            "This study already has cases, which were made for its current design. Remove "
            "them first, or build a new study with the design you want.",
            code="design_after_cases",
        )
    if design not in ReaderStudy.Design.values:
        raise ValidationError({"design": "Choose one of the study designs."})
    if len({s.pk for s in sources}) != len(sources):
        raise ValidationError({"sources": "Each source can be chosen once."})
    chosen: list[SourcePair] = []
    if design:
        is_single = design == ReaderStudy.Design.EACH_SOURCE
        if study.is_pairwise == is_single:
            need = "a pairwise" if is_single is False else "a single-report"
            raise ValidationError(
                {
                    "design": f"This design needs {need} protocol; this study's protocol is "
                    f"{'pairwise' if study.is_pairwise else 'single-report'}."
                }
            )
        chosen = _arms_for_design(design=design, sources=sources, pairs=pairs)
        if study.ask_ai_guess and any(
            ReportSource.Kind.ORIGINAL not in (a.kind, b.kind if b else None) for a, b in chosen
        ):
            raise ValidationError(
                {
                    "design": 'Asking "which report was the AI\'s?" needs the original report in '
                    "every pair; turn that question off for pairs of models."
                }
            )
    study.arms.all().delete()
    arms = [
        StudyArm.objects.create(
            reader_study=study, position=position, first_source=first, second_source=second
        )
        for position, (first, second) in enumerate(chosen, start=1)
    ]
    study.design = design
    study.save(update_fields=["design", "updated_at"])
    reader_study.design = design
    return arms


@transaction.atomic
def reader_study_reading_options_set(
    *, reader_study: ReaderStudy, same_study_gap: int, show_clinical_context: bool
) -> ReaderStudy:
    """Set the reading-list gap between reads of one imaging study (before the lists are
    drawn) and whether readers see the clinical information (until the study opens)."""
    study = ReaderStudy.objects.select_for_update().get(pk=reader_study.pk)
    _require_draft(study, "Changing the reading options")
    if not 0 <= same_study_gap <= 100:
        raise ValidationError({"same_study_gap": "Choose a gap between 0 and 100 cases."})
    if same_study_gap != study.same_study_gap and study.assignments.exists():
        raise ApplicationError(
            "The reading lists are already drawn with the current gap; they are never redrawn.",
            code="assigned",
        )
    study.same_study_gap = same_study_gap
    study.show_clinical_context = show_clinical_context
    study.save(update_fields=["same_study_gap", "show_clinical_context", "updated_at"])
    return study


@dataclass
class CasesAdded:
    added: list[Case] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _require_no_reading_lists(study: ReaderStudy) -> None:
    # Reading lists are drawn once from the cases present (seeded, balanced, never redrawn):
    # a case added afterwards would sit in the study and never reach a reader.
    if study.assignments.exists():
        raise ApplicationError(
            "The reading lists are already generated, so a case added now would never be "
            "read. Add these cases to a new study, or delete this draft study and build it "
            "again with all its cases before generating the reading lists.",
            code="cases_after_assignments",
        )


def _candidate_for(
    study: Study, candidates: Sequence[Report] | None, *, problems: list[str]
) -> Report | None:
    pool = [r for r in (candidates or []) if r.study_id == study.pk]
    if not pool:
        problems.append(f"Study {study.label}: no AI report of the chosen source.")
        return None
    if len(pool) > 1:
        problems.append(
            f"Study {study.label}: AI reports from {len(pool)} sources or runs; "
            'choose one under "AI reports from".'
        )
        return None
    return pool[0]


@transaction.atomic
def cases_add(
    *,
    reader_study: ReaderStudy,
    imaging_studies: Iterable[Study],
    candidate_reports: QuerySet[Report] | None = None,
    rate_source: str = "candidate",
) -> CasesAdded:
    """Add one case per imaging study; studies lacking a needed report are named and skipped.

    Pairwise protocols compare the study's original report with its one report among
    ``candidate_reports`` (e.g. the AI reports of one model run). Single-report protocols rate
    the candidate (``rate_source="candidate"``), the original, or both as separate cases.
    A study with arms ignores both: it adds one case per arm from each arm's sources.
    """
    study = ReaderStudy.objects.select_for_update().get(pk=reader_study.pk)
    _require_draft(study, "Adding cases")
    _require_no_reading_lists(study)
    if rate_source not in ("candidate", "original", "both"):
        raise ValidationError({"rate_source": "Choose candidate, original or both."})
    arms = list(study.arms.select_related("first_source", "second_source"))
    if arms:
        result = _cases_add_for_arms(study=study, imaging_studies=list(imaging_studies), arms=arms)
        result.warnings = selectors.cases_modality_warnings(reader_study=study, cases=result.added)
        return result
    result = CasesAdded()
    candidates = list(candidate_reports) if candidate_reports is not None else None
    for imaging in imaging_studies:
        original = Report.objects.filter(
            study=imaging, kind=Report.Kind.ORIGINAL, is_latest=True
        ).first()
        pairs: list[tuple[Report, Report | None]] = []
        if study.is_pairwise:
            if original is None:
                result.problems.append(f"Study {imaging.label}: no original report.")
                continue
            candidate = _candidate_for(imaging, candidates, problems=result.problems)
            if candidate is None:
                continue
            pairs.append((original, candidate))
        else:
            if rate_source in ("candidate", "both"):
                candidate = _candidate_for(imaging, candidates, problems=result.problems)
                if candidate is not None:
                    pairs.append((candidate, None))
            if rate_source in ("original", "both"):
                if original is None:
                    result.problems.append(f"Study {imaging.label}: no original report.")
                else:
                    pairs.append((original, None))
        for first, second in pairs:
            if Case.objects.filter(
                reader_study=study, first_report=first, second_report=second
            ).exists():
                result.problems.append(f"Study {imaging.label}: already a case of this study.")
                continue
            result.added.append(
                Case.objects.create(
                    reader_study=study,
                    imaging_study=imaging,
                    first_report=first,
                    second_report=second,
                    stratum=imaging.stratum,
                )
            )
    result.warnings = selectors.cases_modality_warnings(reader_study=study, cases=result.added)
    return result


def _cases_add_for_arms(
    *, study: ReaderStudy, imaging_studies: list[Study], arms: list[StudyArm]
) -> CasesAdded:
    """One case per imaging study and arm; a study lacking a report of any arm's source is
    named and skipped whole, so every arm is read on the same imaging studies (paired)."""
    result = CasesAdded()
    sources = {s.pk: s for arm in arms for s in (arm.first_source, arm.second_source) if s}
    reports = selectors.reports_latest_by_source(
        imaging_ids=[i.pk for i in imaging_studies], sources=list(sources.values())
    )
    existing = set(
        Case.objects.filter(reader_study=study).values_list("imaging_study_id", "arm_id")
    )
    new: list[Case] = []
    for imaging in imaging_studies:
        missing = [s.label for pk, s in sources.items() if (imaging.pk, pk) not in reports]
        if missing:
            result.problems.append(
                f"Study {imaging.label}: no report from {', '.join(sorted(missing))}."
            )
            continue
        if any((imaging.pk, arm.pk) in existing for arm in arms):
            result.problems.append(f"Study {imaging.label}: already a case of this study.")
            continue
        for arm in arms:
            second = arm.second_source
            new.append(
                Case(
                    reader_study=study,
                    imaging_study=imaging,
                    arm=arm,
                    first_report=reports[(imaging.pk, arm.first_source_id)],
                    second_report=reports[(imaging.pk, second.pk)] if second else None,
                    stratum=imaging.stratum,
                )
            )
    result.added = Case.objects.bulk_create(new, batch_size=2000)
    return result


def stratified_sample(
    *, pool: Sequence[Study], per_stratum: dict[str, int], seed: int
) -> tuple[list[Study], list[str]]:
    """Draw ``per_stratum[s]`` studies of each stratum, reproducibly from ``seed``."""
    rng = random.Random(seed)
    chosen: list[Study] = []
    problems: list[str] = []
    for stratum in sorted(per_stratum):
        wanted = per_stratum[stratum]
        # Sort by a stable key first: the same seed and pool give the same sample forever.
        members = sorted((s for s in pool if s.stratum == stratum), key=lambda s: str(s.public_id))
        if wanted > len(members):
            problems.append(
                f"Stratum {stratum!r}: {wanted} wanted but only {len(members)} available."
            )
            continue
        chosen.extend(rng.sample(members, wanted))
    return chosen, problems


@transaction.atomic
def cases_add_sample(
    *,
    reader_study: ReaderStudy,
    pool: Sequence[Study],
    per_stratum: dict[str, int],
    candidate_reports: QuerySet[Report] | None = None,
    seed: int | None = None,
    rate_source: str = "candidate",
) -> CasesAdded:
    """Add a stratified random sample of ``pool`` as cases and record the seed used."""
    study = ReaderStudy.objects.select_for_update().get(pk=reader_study.pk)
    _require_draft(study, "Sampling cases")
    _require_no_reading_lists(study)
    if not per_stratum or any(not isinstance(n, int) or n < 1 for n in per_stratum.values()):
        raise ValidationError({"per_stratum": "Give a positive count for each stratum."})
    seed = seed if seed is not None else secrets.randbits(48)
    chosen, problems = stratified_sample(pool=pool, per_stratum=per_stratum, seed=seed)
    if problems:
        raise ValidationError({"per_stratum": problems})
    study.sample_seed = seed
    study.sample_spec = {"per_stratum": per_stratum, "pool_size": len(pool)}
    schemas.sample_spec_validate(study.sample_spec)
    study.save(update_fields=["sample_seed", "sample_spec", "updated_at"])
    reader_study.sample_seed = seed
    return cases_add(
        reader_study=study,
        imaging_studies=chosen,
        candidate_reports=candidate_reports,
        rate_source=rate_source,
    )


@transaction.atomic
def cases_add_from_selection(
    *,
    reader_study: ReaderStudy,
    user: AbstractBaseUser | AnonymousUser,
    candidate_reports: QuerySet[Report],
    modality: str = "",
    stratum: str = "",
    study_uids: list[str] | None = None,
    rate_source: str = "candidate",
    per_stratum: dict[str, int] | None = None,
    seed: int | None = None,
) -> CasesAdded:
    """Add the cases a coordinator selected: by filters or a list of StudyInstanceUIDs or
    accession pseudonyms, all of them or a stratified sample (``per_stratum``).

    The one use case behind the study page and the API. A listed id that matches no study
    with the reports this protocol needs is named in ``problems``.
    """
    arm_sources = selectors.arm_sources(reader_study=reader_study)
    pool = selectors.case_candidates(
        user=user,
        modality=modality,
        stratum=stratum,
        candidate_reports=(
            candidate_reports if reader_study.is_pairwise and not arm_sources else None
        ),
        sources=arm_sources or None,
        study_uids=study_uids,
    )
    problems: list[str] = []
    if study_uids is not None:
        found = set(pool.values_list("study_instance_uid", flat=True)) | set(
            pool.values_list("accession_pseudonym", flat=True)
        )
        problems += [
            f"{uid}: no such study, or it lacks the reports this protocol needs"
            for uid in study_uids
            if uid not in found
        ]
    if per_stratum:
        result = cases_add_sample(
            reader_study=reader_study,
            pool=list(pool),
            per_stratum=per_stratum,
            candidate_reports=candidate_reports,
            seed=seed,
            rate_source=rate_source,
        )
    else:
        result = cases_add(
            reader_study=reader_study,
            imaging_studies=pool,
            candidate_reports=candidate_reports,
            rate_source=rate_source,
        )
    return CasesAdded(
        added=result.added, problems=problems + result.problems, warnings=result.warnings
    )


@dataclass
class CasesRefreshed:
    moved: list[selectors.ReportMove] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@transaction.atomic
def cases_refresh_to_latest(*, reader_study: ReaderStudy) -> CasesRefreshed:
    """Move a draft study's cases (and their assignments) to the latest report versions.

    Refused past draft (code ``not_draft``): an opened study keeps what its readers saw.
    A case whose move would duplicate another case of the study is named and left as it is.
    """
    study = ReaderStudy.objects.select_for_update().get(pk=reader_study.pk)
    _require_draft(study, "Moving cases to the latest report versions")
    result = CasesRefreshed()
    by_case: dict[int, list[selectors.ReportMove]] = {}
    for move in selectors.cases_refresh_preview(reader_study=study):
        by_case.setdefault(move.case.pk, []).append(move)
    for moves in by_case.values():
        case = moves[0].case
        reports = {"first": case.first_report, "second": case.second_report}
        for move in moves:
            reports[move.slot] = move.new
        first, second = reports["first"], reports["second"]
        assert first is not None
        if (
            Case.objects.filter(reader_study=study, first_report=first, second_report=second)
            .exclude(pk=case.pk)
            .exists()
        ):
            result.problems.append(
                f"Case {case.public_id}: another case already compares the latest versions; "
                "remove one of the two."
            )
            continue
        case.first_report, case.second_report = first, second
        case.save(update_fields=["first_report", "second_report", "updated_at"])
        # Assignments show the case's reports on the sides drawn for them: the sides stay,
        # the versions follow the case.
        for move in moves:
            Assignment.objects.filter(case=case, report_a=move.old).update(report_a=move.new)
            Assignment.objects.filter(case=case, report_b=move.old).update(report_b=move.new)
        result.moved.extend(moves)
    return result


@transaction.atomic
def cases_remove(*, reader_study: ReaderStudy, cases: Iterable[Case]) -> int:
    """Remove cases from a draft study; returns how many cases went.

    Their assignments go with them (a draft has no ratings); the rest of each reader's list
    keeps its order and sides.
    """
    study = ReaderStudy.objects.select_for_update().get(pk=reader_study.pk)
    _require_draft(study, "Removing cases")
    ids = [c.pk for c in cases]
    removed = Case.objects.filter(reader_study=study, pk__in=ids)
    count = removed.count()
    removed.delete()
    return count


@transaction.atomic
def reader_study_delete(*, reader_study: ReaderStudy) -> None:
    """Delete a draft study with its cases, panel and reading lists.

    Refused past draft (code ``not_draft``): once readers could open it, its ratings and
    history are the record of the study; lock it instead.
    """
    study = ReaderStudy.objects.select_for_update().get(pk=reader_study.pk)
    _require_draft(study, "Deleting the study")
    study.delete()


def _require_panel_open(study: ReaderStudy) -> None:
    _require_draft(study, "Changing the readers")
    reason = selectors.panel_closed_reason(reader_study=study)
    if reason:
        raise ApplicationError(reason, code="assigned")


@transaction.atomic
def panel_set(
    *, reader_study: ReaderStudy, readers: Sequence[tuple[AbstractBaseUser, str]]
) -> list[StudyReader]:
    """Set the study's readers (user, cohort tag); only before assignments exist."""
    study = ReaderStudy.objects.select_for_update().get(pk=reader_study.pk)
    _require_panel_open(study)
    problems = [
        f"{user.get_username()}: not a reader"
        for user, _ in readers
        if not user_has_role(user, Role.READER)
    ]
    if problems:
        raise ValidationError({"readers": problems})
    study.panel.all().delete()
    return [
        StudyReader.objects.create(reader_study=study, reader_id=user.pk, cohort=cohort.strip())
        for user, cohort in readers
    ]


@transaction.atomic
def panel_reader_add(
    *, reader_study: ReaderStudy, reader: AbstractBaseUser, cohort: str = ""
) -> StudyReader:
    """Seat one reader with a cohort tag (e.g. who accepted an invitation); a reader already
    seated keeps the seat and takes the new cohort when one is given. Same rules as
    ``panel_set``: a draft without reading lists, a user holding the reader role."""
    study = ReaderStudy.objects.select_for_update().get(pk=reader_study.pk)
    _require_panel_open(study)
    if not user_has_role(reader, Role.READER):
        raise ValidationError({"readers": [f"{reader.get_username()}: not a reader"]})
    seat, created = StudyReader.objects.get_or_create(
        reader_study=study, reader_id=reader.pk, defaults={"cohort": cohort.strip()}
    )
    if not created and cohort.strip() and seat.cohort != cohort.strip():
        seat.cohort = cohort.strip()
        seat.save(update_fields=["cohort"])
    return seat


@transaction.atomic
def assignments_generate(
    *,
    reader_study: ReaderStudy,
    reads_per_case: int | None = None,
    seed: int | None = None,
) -> int:
    """Generate every reader's list once: which cases, in what order, which side is A;
    returns how many assignments it wrote.

    ``reads_per_case`` None: every reader reads every case; k: each case of each arm goes to
    k readers, with loads differing by at most one. Practice cases go to every reader, first.
    All draws come from ``seed`` (recorded); the rules are in ``reading_lists``.
    """
    study = ReaderStudy.objects.select_for_update().get(pk=reader_study.pk)
    _require_draft(study, "Generating assignments")
    if study.assignments.exists():
        raise ApplicationError(
            "Assignments were already generated for this study; they are never redrawn.",
            code="assigned",
        )
    readers = list(study.panel.order_by("reader_id").values_list("reader_id", flat=True))
    # Plain tuples (id, imaging study, arm, first report, second report, public id): the
    # draw and the rows need nothing else, and model instances for every case cost seconds.
    cases = {
        row[0]: row
        for row in study.cases.order_by("id").values_list(
            "id", "imaging_study_id", "arm_id", "first_report_id", "second_report_id", "public_id"
        )
    }
    practice = set(study.cases.filter(is_practice=True).values_list("id", flat=True))
    if not readers:
        raise ValidationError({"readers": "Add at least one reader first."})
    if len(cases) == len(practice):
        raise ValidationError(
            {"cases": "Add at least one case first (practice cases are not enough)."}
        )
    if reads_per_case is not None and not 1 <= reads_per_case <= len(readers):
        raise ValidationError(
            {"reads_per_case": f"Choose between 1 and {len(readers)} readers per case."}
        )
    pairwise = study.is_pairwise
    if pairwise:
        for _, _, _, _, second_id, public_id in cases.values():
            if second_id is None:
                raise ApplicationError(
                    f"Case {public_id} lacks its second report; remove it first.",
                    code="case_incomplete",
                )
    seed = seed if seed is not None else secrets.randbits(48)
    try:
        keys = [
            reading_lists.CaseKey(case=row[0], imaging=row[1], arm=row[2]) for row in cases.values()
        ]
        lists = reading_lists.reading_lists_draw(
            cases=[key for key in keys if key.case not in practice],
            practice=[key for key in keys if key.case in practice],
            readers=readers,
            reads_per_case=reads_per_case,
            pairwise=pairwise,
            gap=study.same_study_gap,
            seed=seed,
        )
    except reading_lists.SpreadImpossible as error:
        raise ValidationError({"same_study_gap": str(error)}) from None
    now = timezone.now()
    rows = []
    for reader_id, reads in lists.items():
        for position, read in enumerate(reads, start=1):
            _, _, _, first_id, second_id, _ = cases[read.case]
            a: int = first_id
            b: int | None = second_id if read.side else None
            if read.side == "A":
                # Checked above: every case of a pairwise study has its second report.
                assert second_id is not None
                a, b = second_id, first_id
            rows.append(
                (uuid.uuid4(), now, now, study.pk, read.case, reader_id, position, a, b, read.side)
            )
    _assignments_copy(rows)
    study.assignment_seed = seed
    study.reads_mode = ReaderStudy.ReadsMode.ALL if reads_per_case is None else "k"
    study.reads_per_case = reads_per_case
    study.assignments_generated_at = timezone.now()
    study.save(
        update_fields=[
            "assignment_seed",
            "reads_mode",
            "reads_per_case",
            "assignments_generated_at",
            "updated_at",
        ]
    )
    reader_study.refresh_from_db()
    return len(rows)


@transaction.atomic
def reading_lists_generate(
    *,
    reader_study: ReaderStudy,
    readers: Sequence[tuple[AbstractBaseUser, str]],
    same_study_gap: int | None = None,
    reads_per_case: int | None = None,
    seed: int | None = None,
) -> int:
    """Draw the reading lists for the panel and gap the coordinator has in front of them:
    save both, then draw, all or nothing; returns how many assignments it wrote.

    The study page asks for readers and lists in one place: lists drawn for the panel as last
    saved, while other ticks sit unsaved on the screen, would be lists for the wrong readers.
    """
    panel_set(reader_study=reader_study, readers=readers)
    if same_study_gap is not None:
        reader_study_reading_options_set(
            reader_study=reader_study,
            same_study_gap=same_study_gap,
            show_clinical_context=reader_study.show_clinical_context,
        )
    return assignments_generate(reader_study=reader_study, reads_per_case=reads_per_case, seed=seed)


# The columns _assignments_copy writes; the rest take the values a new assignment has.
_ASSIGNMENT_COPY_COLUMNS = (
    "public_id",
    "created_at",
    "updated_at",
    "reader_study_id",
    "case_id",
    "reader_id",
    "position",
    "report_a_id",
    "report_b_id",
    "candidate_side",
)


def _assignments_copy(rows: list[tuple[Any, ...]]) -> None:
    """Insert new assignment rows with COPY, in the caller's transaction.

    A study's lists are written once and can hold 100k+ rows; an INSERT through the ORM
    costs seconds per 10k rows, COPY a fraction of that. The other columns are those of a
    new, unread assignment (``Assignment``'s field defaults, checked by a test).
    """
    table = connection.ops.quote_name(Assignment._meta.db_table)
    names = [*_ASSIGNMENT_COPY_COLUMNS, "status", "draft", "draft_seq", "active_seconds"]
    columns = ", ".join(connection.ops.quote_name(c) for c in names)
    extra = (Assignment.Status.PENDING, "{}", 0, 0.0)
    connection.ensure_connection()
    raw = connection.connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row((*row, *extra))


def _case_problems(study: ReaderStudy) -> list[str]:
    problems = []
    for case in study.cases.select_related("first_report", "second_report"):
        reports = (
            [case.first_report, case.second_report] if study.is_pairwise else [case.first_report]
        )
        for report in reports:
            if report is None:
                problems.append(f"Case {case.public_id}: a report is missing.")
            elif not any(report_render(report).values()):
                problems.append(f"Case {case.public_id}: a report has no readable text.")
    return problems


def rendering_pin(*, report: Report) -> RenderedReport:
    """The rendering of ``report`` by the current renderer, stored once and never changed."""
    existing = RenderedReport.objects.filter(
        report=report, renderer_version=RENDERER_VERSION
    ).first()
    if existing is not None:
        return existing
    sections = report_render(report)
    try:
        # A savepoint: two studies opening at once may both render the same report.
        with transaction.atomic():
            return RenderedReport.objects.create(
                report=report,
                renderer_version=RENDERER_VERSION,
                findings=sections["findings"],
                impression=sections["impression"],
                sha256=rendering_sha256(**sections),
            )
    except IntegrityError:
        return RenderedReport.objects.get(report=report, renderer_version=RENDERER_VERSION)


def _cases_pin(study: ReaderStudy) -> int:
    """Pin the rendering of each case side not pinned yet; pins already made never change."""
    pinned = 0
    cases = study.cases.select_related("first_report", "second_report").filter(
        models.Q(first_rendering__isnull=True)
        | models.Q(second_report__isnull=False, second_rendering__isnull=True)
    )
    for case in cases:
        fields = []
        if case.first_rendering_id is None:
            case.first_rendering = rendering_pin(report=case.first_report)
            fields.append("first_rendering")
        if case.second_report is not None and case.second_rendering_id is None:
            case.second_rendering = rendering_pin(report=case.second_report)
            fields.append("second_rendering")
        case.save(update_fields=[*fields, "updated_at"])
        pinned += 1
    return pinned


@transaction.atomic
def reader_study_open(
    *, reader_study: ReaderStudy, acknowledged_by: UserLike | None = None
) -> None:
    """Open (or resume) a study for reading; refused while any case lacks one of its reports
    or, for a draft, until its current blinding check is acknowledged.

    ``acknowledged_by``: run the blinding check now and record this coordinator's
    acknowledgement of it (scripts and seeding; pages and the API acknowledge separately)."""
    if acknowledged_by is not None and reader_study.status == ReaderStudy.Status.DRAFT:
        blinding.blinding_check_record(reader_study=reader_study)
        blinding.blinding_acknowledge(reader_study=reader_study, user=acknowledged_by)
    study = ReaderStudy.objects.select_for_update().get(pk=reader_study.pk)
    if study.status == ReaderStudy.Status.LOCKED:
        raise ApplicationError("A locked study cannot be reopened.", code="locked")
    if study.status == ReaderStudy.Status.OPEN:
        return
    if not study.assignments.exists():
        raise ApplicationError(
            "Generate the assignments before opening the study.", code="no_assignments"
        )
    problems = _case_problems(study)
    if problems:
        # Reports are never generated on demand while a reader waits: that would make one
        # side's timing and freshness differ from the other's.
        raise ApplicationError(
            "The study cannot open: " + " ".join(problems[:10]), code="case_incomplete"
        )
    if study.status == ReaderStudy.Status.DRAFT:
        _require_practice_references(study)
        blinding.blinding_gate(reader_study=study)
    # From here on readers see these exact texts, whatever new versions or renderers come.
    _cases_pin(study)
    study.status = ReaderStudy.Status.OPEN
    study.opened_at = study.opened_at or timezone.now()
    study.save(update_fields=["status", "opened_at", "updated_at"])
    reader_study.refresh_from_db()
    _progress_push_on_commit(study)


@transaction.atomic
def reader_study_pause(*, reader_study: ReaderStudy) -> None:
    """Pause an open study: readers can look but not submit until it reopens."""
    study = ReaderStudy.objects.select_for_update().get(pk=reader_study.pk)
    if study.status != ReaderStudy.Status.OPEN:
        raise ApplicationError("Only an open study can be paused.", code="not_open")
    study.status = ReaderStudy.Status.PAUSED
    study.save(update_fields=["status", "updated_at"])
    reader_study.refresh_from_db()
    _progress_push_on_commit(study)


@transaction.atomic
def reader_study_lock(*, reader_study: ReaderStudy) -> None:
    """Lock a study for good: no further ratings, revisions or changes."""
    study = ReaderStudy.objects.select_for_update().get(pk=reader_study.pk)
    if study.status == ReaderStudy.Status.LOCKED:
        return
    if study.status == ReaderStudy.Status.DRAFT:
        raise ApplicationError(
            "A draft study has nothing to lock; delete it instead.", code="draft_not_lockable"
        )
    study.status = ReaderStudy.Status.LOCKED
    study.locked_at = timezone.now()
    study.save(update_fields=["status", "locked_at", "updated_at"])
    reader_study.refresh_from_db()
    _progress_push_on_commit(study)


# --- practice cases -----------------------------------------------------------------------


def _require_practice_changeable(study: ReaderStudy) -> None:
    _require_draft(study, "Choosing practice cases")
    # Practice cases are placed first in every list and outside the balance of real reads
    # when the lists are drawn, which happens once.
    if study.assignments.exists():
        raise ApplicationError(
            "The reading lists are already generated, with these cases in them; practice "
            "cases can only be chosen before the lists are generated.",
            code="practice_after_reading_lists",
        )


@transaction.atomic
def case_practice_set(*, reader_study: ReaderStudy, case: Case, is_practice: bool) -> list[Case]:
    """Make a case a practice case (or a real one again), with every other arm's case of its
    imaging study; returns the cases changed.

    Only in a draft before the reading lists exist (codes ``not_draft``,
    ``practice_after_reading_lists``); at least one real case must stay
    (``practice_no_real_case``). Unmarking drops the reference answers.
    """
    study = ReaderStudy.objects.select_for_update().get(pk=reader_study.pk)
    _require_practice_changeable(study)
    siblings = list(
        Case.objects.select_for_update()
        .filter(reader_study=study, imaging_study_id=case.imaging_study_id)
        .order_by("id")
    )
    if not siblings:
        raise ApplicationError("This case is not part of the study.", code="case_not_in_study")
    if (
        is_practice
        and not Case.objects.filter(reader_study=study, is_practice=False)
        .exclude(imaging_study_id=case.imaging_study_id)
        .exists()
    ):
        raise ApplicationError(
            "Every other case is a practice case already: a study needs at least one real "
            "case to analyse.",
            code="practice_no_real_case",
        )
    changed = [c for c in siblings if c.is_practice != is_practice]
    for sibling in changed:
        sibling.is_practice = is_practice
        if not is_practice:
            sibling.reference_answers = {}
            sibling.reference_set_by = None
            sibling.reference_set_at = None
        sibling.save(
            update_fields=[
                "is_practice",
                "reference_answers",
                "reference_set_by",
                "reference_set_at",
                "updated_at",
            ]
        )
    return changed


@transaction.atomic
def case_reference_set(
    *, reader_study: ReaderStudy, case: Case, answers: Any, user: UserLike
) -> Case:
    """Store the reference answers readers see after submitting a practice case.

    ``answers`` are the coordinator's form, as a reader's form gives them (letter codes and
    texts by item id) with the case's first report shown as Report A; they pass the rating
    path's checks (``protocols.answers_resolve``, the answers schema), and a text may not name
    a side or a source (readers see the reports on sides of their own). Only while the study
    is a draft (``not_draft``), for a practice case (``not_practice``).
    """
    study = ReaderStudy.objects.select_for_update().get(pk=reader_study.pk)
    _require_draft(study, "Entering reference answers")
    locked = (
        Case.objects.select_for_update(of=("self",))
        .select_related("first_report", "second_report")
        .filter(reader_study=study, pk=case.pk)
        .first()
    )
    if locked is None:
        raise ApplicationError("This case is not part of the study.", code="case_not_in_study")
    if not locked.is_practice:
        raise ApplicationError(
            "Only practice cases have reference answers; mark this case as practice first.",
            code="not_practice",
        )
    protocol = protocols.protocol_for_reference(study.protocol)
    sides = protocols.reference_sides(study.protocol)
    reports = {"A": locked.first_report, "B": locked.second_report}
    if not sides.is_pairwise:
        reports = {"": locked.first_report}
    raw = protocols.answers_applicable(protocol, sides, answers)
    resolved = protocols.answers_resolve(
        protocol,
        sides,
        raw_answers=raw,
        raw_spans=[],
        sources={side: r.kind for side, r in reports.items() if r is not None},
        report_texts={},
    )
    problems = blinding.reference_text_problems(
        resolved.answers, sources=[r for r in reports.values() if r is not None]
    )
    if problems:
        raise ValidationError(problems)
    schemas.answers_validate(resolved.answers)
    locked.reference_answers = resolved.answers
    locked.reference_set_by = user  # type: ignore[assignment]
    locked.reference_set_at = timezone.now()
    locked.save(
        update_fields=["reference_answers", "reference_set_by", "reference_set_at", "updated_at"]
    )
    return locked


def _require_practice_references(study: ReaderStudy) -> None:
    missing = selectors.practice_cases_without_reference_count(reader_study=study)
    if missing:
        raise ApplicationError(
            f"{missing} practice case{'s' if missing != 1 else ''} still lack"
            f"{'' if missing != 1 else 's'} reference answers; enter them on the practice "
            "cases page before opening the study.",
            code="practice_reference_missing",
        )


# --- reading ------------------------------------------------------------------------------


def _require_open(study: ReaderStudy) -> None:
    if study.status != ReaderStudy.Status.OPEN:
        message = {
            ReaderStudy.Status.PAUSED: "The study is paused; your draft is kept. Try later.",
            ReaderStudy.Status.LOCKED: "The study is locked; no further changes are accepted.",
        }.get(ReaderStudy.Status(study.status), "The study is not open for reading.")
        raise ApplicationError(message, code=f"study_{study.status}")


def assignment_open(*, assignment: Assignment) -> Assignment:
    """Record when the reader first opened the case (server time), while the study is open."""
    if (
        assignment.opened_at is not None
        or assignment.reader_study.status != ReaderStudy.Status.OPEN
    ):
        return assignment  # revisits change nothing
    now = timezone.now()
    # One conditional UPDATE, no lock: the row's own WHERE decides, so of two tabs opening
    # the case at once the first records the time and the second changes nothing.
    opened = Assignment.objects.filter(pk=assignment.pk, opened_at__isnull=True).update(
        opened_at=now,
        status=models.Case(
            models.When(
                status=Assignment.Status.PENDING, then=models.Value(Assignment.Status.IN_PROGRESS)
            ),
            default=models.F("status"),
        ),
        updated_at=now,
    )
    if opened:
        assignment.opened_at = now
        if assignment.status == Assignment.Status.PENDING:
            assignment.status = Assignment.Status.IN_PROGRESS
    return assignment


@transaction.atomic
def draft_save(
    *, assignment: Assignment, draft: Any, seq: int, active_seconds: float | None = None
) -> Assignment:
    """Autosave the reader's work in progress; a save older than the stored one is ignored."""
    if not isinstance(draft, dict):
        raise ValidationError({"draft": "The draft must be an object."})
    if len(json.dumps(draft)) > MAX_DRAFT_BYTES:
        raise ValidationError({"draft": "The draft is too large."})
    schemas.draft_validate(draft)
    locked = (
        Assignment.objects.select_for_update().select_related("reader_study").get(pk=assignment.pk)
    )
    _require_open(locked.reader_study)
    if seq <= locked.draft_seq:
        return locked  # an older autosave overtaken on the wire: the newer one is kept
    now = timezone.now()
    locked.draft = draft
    locked.draft_seq = seq
    locked.draft_saved_at = now
    if active_seconds is not None and active_seconds >= 0:
        locked.active_seconds = max(locked.active_seconds, float(active_seconds))
    if locked.first_answer_at is None and draft.get("answers"):
        locked.first_answer_at = now
    if locked.status == Assignment.Status.PENDING:
        locked.status = Assignment.Status.IN_PROGRESS
    locked.save(
        update_fields=[
            "draft",
            "draft_seq",
            "draft_saved_at",
            "active_seconds",
            "first_answer_at",
            "status",
            "updated_at",
        ]
    )
    return locked


def _payload_digest(answers: Any, spans: Any) -> str:
    body = json.dumps({"answers": answers, "spans": spans}, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def _texts_shown(assignment: Assignment) -> dict[str, dict[str, str]]:
    """side -> section -> the text the reader was shown (and span offsets refer to)."""
    sides = protocols.Sides(candidate_side=assignment.candidate_side)
    shown = (
        {"A": assignment.report_a, "B": assignment.report_b}
        if sides.is_pairwise
        else {"": assignment.report_a}
    )
    return {
        side: selectors.report_sections_shown(
            reader_study=assignment.reader_study, case=assignment.case, report=report
        )
        for side, report in shown.items()
        if report is not None
    }


def _resolve(
    assignment: Assignment, answers: Any, spans: Any, texts: dict[str, dict[str, str]]
) -> protocols.ResolvedAnswers:
    study = assignment.reader_study
    sides = protocols.Sides(candidate_side=assignment.candidate_side)
    shown = (
        {"A": assignment.report_a, "B": assignment.report_b}
        if sides.is_pairwise
        else {"": assignment.report_a}
    )
    return protocols.answers_resolve(
        study.protocol,
        sides,
        raw_answers=answers,
        raw_spans=spans,
        sources={side: report.kind for side, report in shown.items() if report is not None},
        report_texts=texts,
    )


# Sentences end at . ! or ? followed by whitespace or the end of the text (as a reader would
# split them); the span's sentence is the number of such ends before its start.
_SENTENCE_END = re.compile(r"[.!?](?:\s+|\Z)")


def sentence_index(text: str, start: int) -> int:
    """The 0-based sentence of ``text`` in which offset ``start`` falls."""
    return len(_SENTENCE_END.findall(text[:start]))


def _spans_store(
    *,
    rating: Rating,
    assignment: Assignment,
    resolved: protocols.ResolvedAnswers,
    texts: dict[str, dict[str, str]],
    is_new: bool,
) -> list[ErrorSpan]:
    if not is_new:
        rating.error_spans.all().delete()
    shown = {"A": assignment.report_a, "B": assignment.report_b, "": assignment.report_a}
    stored = []
    for span in resolved.spans:
        report = shown[span["side"]]
        assert report is not None  # answers_resolve only accepts spans on shown reports
        # Quoted now, from the text the offsets refer to: the export needs no re-rendering.
        text = texts[span["side"]][span["section"]]
        stored.append(
            ErrorSpan.objects.create(
                rating=rating,
                report=report,
                quoted_text=text[span["start"] : span["end"]],
                sentence_index=sentence_index(text, span["start"]),
                **span,
            )
        )
    return stored


def _edited_report(
    *,
    assignment: Assignment,
    resolved: protocols.ResolvedAnswers,
    texts: dict[str, dict[str, str]],
    reader: UserLike,
) -> Report | None:
    """The reader's corrected report (kind edited), when they marked passages to replace."""
    if not resolved.spans:
        return None
    shown = {"A": assignment.report_a, "B": assignment.report_b, "": assignment.report_a}
    sides = {span["side"] for span in resolved.spans}
    if len(sides) != 1:
        return None  # edits on both sides of a pair make no single edited report
    side = sides.pop()
    source = shown[side]
    assert source is not None
    rendered = texts[side]
    edited = {
        section: protocols.text_apply_edits(
            text, [s for s in resolved.spans if s["section"] == section]
        )
        for section, text in rendered.items()
    }
    if not any(edited.values()):
        return None
    return Report.objects.create(
        study=source.study,
        kind=Report.Kind.EDITED,
        source=report_source_edited(),
        findings=edited["findings"],
        impression=edited["impression"],
        author=reader,  # type: ignore[misc]
        derived_from=source,
        source_note="error correction",
    )


@dataclass
class RatingResult:
    rating: Rating
    created: bool  # False when the idempotency key replayed an earlier write
    spans: list[ErrorSpan] | None = None  # the rating's spans when this write stored them


def _replay(key: uuid.UUID, digest: str, assignment: Assignment) -> RatingResult | None:
    write = RatingWrite.objects.select_related("rating").filter(idempotency_key=key).first()
    if write is None:
        return None
    if write.rating.assignment_id != assignment.pk or write.payload_sha256 != digest:
        raise ConflictError(
            "This request key was already used for different answers; "
            "reload the case and submit again.",
            code="idempotency_key_reused",
        )
    return RatingResult(rating=write.rating, created=False)


def rating_submit(
    *,
    assignment: Assignment,
    reader: UserLike,
    answers: Any,
    spans: Any = None,
    idempotency_key: uuid.UUID,
    active_seconds: float | None = None,
) -> RatingResult:
    """Store the first rating of an assignment, once per idempotency key.

    A retry with the same key and answers returns the stored rating; a second submit with a
    new key when a rating exists is a conflict (revise it with its version instead).
    """
    try:
        return _rating_submit(
            assignment=assignment,
            reader=reader,
            answers=answers,
            spans=spans,
            idempotency_key=idempotency_key,
            active_seconds=active_seconds,
        )
    except IntegrityError:
        # Two copies of the same request raced past the replay check; the winner's row is
        # committed now, so the loser replays it.
        digest = _payload_digest(answers, spans)
        replay = _replay(idempotency_key, digest, assignment)
        if replay is None:
            raise
        return replay


def _assignment_lock_for_write(
    *, assignment: Assignment, reader: UserLike, idempotency_key: uuid.UUID, digest: str
) -> tuple[Assignment, RatingResult | None]:
    """Lock the assignment row for a rating write; return it and the earlier result when this
    key was already used (a double click or a retried request), checking reader and status."""
    # The row lock serialises a double click: the second request waits, then replays.
    locked = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related(
            "reader_study",
            "report_a",
            "report_b",
            "rating",
            "case__first_rendering",
            "case__second_rendering",
        )
        .get(pk=assignment.pk)
    )
    if locked.reader_id != reader.pk:
        raise PermissionDenied
    replay = _replay(idempotency_key, digest, locked)
    if replay is not None:
        return locked, replay
    _require_open(locked.reader_study)
    return locked, None


@transaction.atomic
def _rating_submit(
    *,
    assignment: Assignment,
    reader: UserLike,
    answers: Any,
    spans: Any,
    idempotency_key: uuid.UUID,
    active_seconds: float | None,
) -> RatingResult:
    digest = _payload_digest(answers, spans)
    locked, replay = _assignment_lock_for_write(
        assignment=assignment, reader=reader, idempotency_key=idempotency_key, digest=digest
    )
    if replay is not None:
        return replay
    existing = selectors.rating_of(locked)
    if existing is not None:
        raise ConflictError(
            "This case already has a submitted rating (version "
            f"{existing.version}); reload it and revise instead.",
            code="already_submitted",
            extra={"version": existing.version},
        )
    texts = _texts_shown(locked)
    resolved = _resolve(locked, answers, spans, texts)
    schemas.answers_validate(resolved.answers)
    now = timezone.now()
    seconds = max(float(active_seconds or 0), locked.active_seconds)
    history_context_set(user=reader.pk, action="rating_submit")
    rating = Rating.objects.create(
        assignment=locked,
        answers=resolved.answers,
        source_a=locked.report_a.kind,
        source_b=locked.report_b.kind if locked.report_b else "",
        ai_guess=resolved.ai_guess,
        version=1,
        submitted_at=now,
        active_seconds=seconds,
    )
    spans = _spans_store(
        rating=rating, assignment=locked, resolved=resolved, texts=texts, is_new=True
    )
    edited = _edited_report(assignment=locked, resolved=resolved, texts=texts, reader=reader)
    if edited is not None:
        rating.edited_report = edited
        rating.save(update_fields=["edited_report", "updated_at"])
    RatingWrite.objects.create(
        idempotency_key=idempotency_key, rating=rating, version=1, payload_sha256=digest
    )
    locked.status = Assignment.Status.SUBMITTED
    locked.submitted_at = now
    locked.first_answer_at = locked.first_answer_at or now
    locked.opened_at = locked.opened_at or now
    locked.active_seconds = seconds
    locked.draft = {}
    locked.save(
        update_fields=[
            "status",
            "submitted_at",
            "first_answer_at",
            "opened_at",
            "active_seconds",
            "draft",
            "updated_at",
        ]
    )
    _progress_push_on_commit(locked.reader_study)
    return RatingResult(rating=rating, created=True, spans=spans)


def rating_revise(
    *,
    assignment: Assignment,
    reader: UserLike,
    expected_version: int,
    answers: Any,
    spans: Any = None,
    idempotency_key: uuid.UUID,
    active_seconds: float | None = None,
) -> RatingResult:
    """Replace a submitted rating's answers if ``expected_version`` is still current."""
    try:
        return _rating_revise(
            assignment=assignment,
            reader=reader,
            expected_version=expected_version,
            answers=answers,
            spans=spans,
            idempotency_key=idempotency_key,
            active_seconds=active_seconds,
        )
    except IntegrityError:
        replay = _replay(idempotency_key, _payload_digest(answers, spans), assignment)
        if replay is None:
            raise
        return replay


@transaction.atomic
def _rating_revise(
    *,
    assignment: Assignment,
    reader: UserLike,
    expected_version: int,
    answers: Any,
    spans: Any,
    idempotency_key: uuid.UUID,
    active_seconds: float | None,
) -> RatingResult:
    digest = _payload_digest(answers, spans)
    locked, replay = _assignment_lock_for_write(
        assignment=assignment, reader=reader, idempotency_key=idempotency_key, digest=digest
    )
    if replay is not None:
        return replay
    if not locked.reader_study.allow_revisions:
        raise ApplicationError("This study does not allow revising ratings.", code="no_revisions")
    if locked.case.is_practice:
        # The reference answers were shown once this case was submitted: a revision would
        # only copy them.
        raise ApplicationError(
            "A practice case keeps the answers first given; its reference answers are shown.",
            code="practice_submitted",
        )
    rating = Rating.objects.select_for_update().filter(assignment=locked).first()
    if rating is not None:
        rating.assignment = locked  # the answer names its study: no second look-up
    if rating is None:
        raise ApplicationError("Nothing to revise yet: submit this case first.", code="no_rating")
    if rating.version != expected_version:
        raise ConflictError(
            f"This rating was changed elsewhere (it is now version {rating.version}, you edited "
            f"version {expected_version}). Reload the case to see the current answers.",
            code="stale_version",
            extra={"version": rating.version},
        )
    texts = _texts_shown(locked)
    resolved = _resolve(locked, answers, spans, texts)
    schemas.answers_validate(resolved.answers)
    history_context_set(user=reader.pk, action="rating_revise")
    rating.answers = resolved.answers
    rating.ai_guess = resolved.ai_guess
    rating.version += 1
    rating.revised_at = timezone.now()
    if active_seconds is not None:
        rating.active_seconds = max(rating.active_seconds, float(active_seconds))
    spans = _spans_store(
        rating=rating, assignment=locked, resolved=resolved, texts=texts, is_new=False
    )
    edited = _edited_report(assignment=locked, resolved=resolved, texts=texts, reader=reader)
    rating.edited_report = edited or rating.edited_report
    rating.save()
    # The autosaved revision-in-progress is now the rating; a reload must not offer it again.
    locked.draft = {}
    locked.save(update_fields=["draft", "updated_at"])
    RatingWrite.objects.create(
        idempotency_key=idempotency_key,
        rating=rating,
        version=rating.version,
        payload_sha256=digest,
    )
    _progress_push_on_commit(locked.reader_study)
    return RatingResult(rating=rating, created=True, spans=spans)


# --- live progress ------------------------------------------------------------------------


def _progress_push_on_commit(study: ReaderStudy) -> None:
    """After commit, tell the study's progress sockets that something changed.

    The event carries no figures: the sockets recompute them (coalescing a burst of ratings
    into one query), so a reader's submission costs one message, not the progress queries,
    and nothing at all is computed while no coordinator is watching."""
    send_on_commit(progress_group(study), {"type": "progress.changed"})
