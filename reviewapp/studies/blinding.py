"""The blinding check: what the renderer could not remove, listed per case before a study opens.

The renderer (reviewapp.studies.rendering) removes every mark of a report's source it can
recognise. Some it cannot: a bare name, a year, an institution, a style (a list against prose,
capitals against lower case), a length. For every case this check compares what the reader will
see of its reports and lists those tells in plain words, so the coordinator decides with eyes
open; opening a draft is refused until the current check is acknowledged, and analysts see the
check and its acknowledgement with the study's results.

Decisions:
- The check reads the rendered text for what a reader sees (names, dates, signature words,
  missing sections, length) and the stored text for styles the renderer flattened but whose
  traces a reader may still notice (a numbered list reads as terse fragments; capitals lose the
  author's own casing of names and abbreviations).
- A stored check is tied to a digest of the cases, their report ids, the protocol mode and the
  renderer version; any change makes it stale, and a stale check's acknowledgement opens nothing.
- Lengths: a ratio of LENGTH_RATIO_LIMIT or more between the two rendered reports is listed.
  Reports of one case differ in length routinely; only a large ratio is a tell on its own.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from reviewapp.core.errors import ApplicationError
from reviewapp.core.roles import Role, user_has_role
from reviewapp.reports.models import Report
from reviewapp.studies.blinding_schema import TELL_KINDS, blinding_tells_validate
from reviewapp.studies.models import ReaderStudy
from reviewapp.studies.rendering import RENDERER_VERSION
from reviewapp.studies.selectors import report_sections_shown

UserLike = AbstractBaseUser | AnonymousUser
LENGTH_RATIO_LIMIT = 2.0
SHOWN_PER_KIND = 20  # the study page lists this many tells of each kind, then a count

KIND_TITLES = {
    "name_like": "Name-like words",
    "date_like": "Date-like tokens",
    "signature_like": "Signature or workflow words",
    "section_missing": "A section on one side only",
    "list_style": "List against prose",
    "upper_case": "Capitals against lower case",
    "length_ratio": "Large length difference",
}
assert set(KIND_TITLES) == set(TELL_KINDS)


@dataclass(frozen=True)
class Tell:
    case: str  # the case's public id
    kind: str  # one of TELL_KINDS
    report: str  # "first", "second" or "pair"
    message: str
    excerpt: str = ""


_LABEL = {"first": "Report 1", "second": "Report 2"}

# What a reader may still read as a mark of the source, in the rendered text.
_DATE_LIKE = re.compile(
    r"\b(?:19|20)\d{2}\b|\b\d{1,2}[/.\-]\d{1,2}(?:[/.\-]\d{2,4})?\b(?!\s*(?:cm|mm|x)\b)"
    r"|\b\d{1,2}:\d{2}\b|\b(?:january|february|april|june|july|august|september|october|"
    r"november|december|monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b"
    r"|\b(?:jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)\.?\s+\d"
    r"|\b(?:yesterday|today|tomorrow)\b",
    re.IGNORECASE,
)
_SIGNATURE_LIKE = re.compile(
    r"\b(?:signed|signature|dictat\w*|transcri\w*|attending|resident|fellow|radiologists?|"
    r"attest\w*|electronically|verified|addend(?:um|a)|preliminary|final\s+report|"
    r"reviewed\s+by|read\s+by|reported\s+by|thank\s+you|please|I\s+(?:have|agree|concur)|"
    r"hospital|infirmary|medical\s+cent(?:er|re)|department\s+of|the\s+clinician)\b",
    re.IGNORECASE,
)
# Credentials only in capitals: "do" and "md" in lower case are not credentials.
_CREDENTIALS = re.compile(r"\b(?:MD|M\.D|MBBS|FRCR|PhD|DO)\b")
# Two capitalised words inside a sentence ("seen at Riverside General") read as a name.
_NAME_LIKE = re.compile(
    r"(?<=[a-z,;:)]\s)(?:Dr\.?\s+)?[A-Z][a-z'\-]{1,}(?:\s+[A-Z][a-z'\-]+)+"
    r"|\b(?:Dr|Mr|Mrs|Ms|Prof)\.?\s+[A-Z][a-z]+"
)
_LIST_LINE = re.compile(r"^\s*(?:\(?\d{1,2}[.)]|\(?[a-hA-H]\)|[-\u2022*\u2013\u00b7])\s+", re.M)
_INLINE_NUMBER = re.compile(r"(?:^|[.;:]\s*)\(?[1-9][.)]\s+[A-Za-z]")


def _excerpt(text: str, match: re.Match[str]) -> str:
    return match.group(0).strip()[:80]


def _text_tells(case_id: str, side: str, rendered: dict[str, str]) -> list[Tell]:
    text = " ".join(v for v in rendered.values() if v)
    label = _LABEL[side]
    tells = []
    if match := _NAME_LIKE.search(text):
        tells.append(
            Tell(
                case_id,
                "name_like",
                side,
                f"{label} contains a name-like word.",
                _excerpt(text, match),
            )
        )
    if match := _DATE_LIKE.search(text):
        tells.append(
            Tell(
                case_id,
                "date_like",
                side,
                f"{label} contains a date-like token.",
                _excerpt(text, match),
            )
        )
    match = _SIGNATURE_LIKE.search(text) or _CREDENTIALS.search(text)
    if match:
        tells.append(
            Tell(
                case_id,
                "signature_like",
                side,
                f"{label} contains a signature-like or workflow phrase.",
                _excerpt(text, match),
            )
        )
    return tells


def _is_list(report: Report) -> bool:
    text = f"{report.findings}\n{report.impression}"
    return len(_LIST_LINE.findall(text)) >= 2 or len(_INLINE_NUMBER.findall(text)) >= 2


def _is_upper(report: Report) -> bool:
    letters = [c for c in f"{report.findings} {report.impression}" if c.isalpha()]
    return bool(letters) and sum(c.isupper() for c in letters) >= 0.6 * len(letters)


def _pair_tells(
    case_id: str, reports: dict[str, Report], rendered: dict[str, dict[str, str]]
) -> list[Tell]:
    tells = []
    for section in ("findings", "impression"):
        has = {side: bool(rendered[side][section]) for side in reports}
        if has["first"] != has["second"]:
            without = "first" if not has["first"] else "second"
            with_ = "second" if without == "first" else "first"
            tells.append(
                Tell(
                    case_id,
                    "section_missing",
                    "pair",
                    f"{_LABEL[without]} has no {section}; {_LABEL[with_]} has one.",
                )
            )
    lists = {side: _is_list(report) for side, report in reports.items()}
    if lists["first"] != lists["second"]:
        listed = "first" if lists["first"] else "second"
        tells.append(
            Tell(
                case_id,
                "list_style",
                "pair",
                f"One report is a numbered list ({_LABEL[listed]}), the other prose; both are "
                "shown as prose, but the list's terse items may still show.",
            )
        )
    upper = {side: _is_upper(report) for side, report in reports.items()}
    if upper["first"] != upper["second"]:
        shouted = "first" if upper["first"] else "second"
        tells.append(
            Tell(
                case_id,
                "upper_case",
                "pair",
                f"One report is all upper case ({_LABEL[shouted]}), the other not; both are shown "
                "in sentence case, but its names and abbreviations lose their own casing.",
            )
        )
    lengths = {side: len(" ".join(rendered[side].values()).strip()) for side in reports}
    short, long = sorted(lengths.values())
    if short and long / short >= LENGTH_RATIO_LIMIT:
        longer = max(lengths, key=lambda side: lengths[side])
        tells.append(
            Tell(
                case_id,
                "length_ratio",
                "pair",
                f"Length ratio {long / short:.1f}:1 ({_LABEL[longer]} is longer).",
            )
        )
    return tells


def blinding_check(*, reader_study: ReaderStudy) -> list[Tell]:
    """List, per case, the tells the renderer could not remove from what readers will see."""
    tells: list[Tell] = []
    for case in reader_study.cases.select_related("first_report", "second_report").order_by("id"):
        case_id = str(case.public_id)
        reports = {"first": case.first_report}
        if reader_study.is_pairwise and case.second_report is not None:
            reports["second"] = case.second_report
        rendered = {
            side: report_sections_shown(reader_study=reader_study, case=case, report=report)
            for side, report in reports.items()
        }
        for side in reports:
            tells.extend(_text_tells(case_id, side, rendered[side]))
        if len(reports) == 2:
            tells.extend(_pair_tells(case_id, reports, rendered))
    return tells


def blinding_digest(*, reader_study: ReaderStudy) -> str:
    """A digest of what the check looks at; any change to the cases or reports changes it."""
    cases = list(
        reader_study.cases.order_by("id").values_list(
            "public_id", "first_report_id", "second_report_id"
        )
    )
    body = json.dumps(
        {
            "renderer": RENDERER_VERSION,
            "pairwise": reader_study.is_pairwise,
            "cases": [[str(p), f, s] for p, f, s in cases],
        },
        sort_keys=True,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _may_manage(user: UserLike, study: ReaderStudy) -> bool:
    return user_has_role(user, Role.ADMIN) or (
        user_has_role(user, Role.COORDINATOR)
        and study.coordinators.filter(pk=user.pk or 0).exists()
    )


@transaction.atomic
def blinding_check_record(*, reader_study: ReaderStudy) -> list[Tell]:
    """Run the check on a draft and store its tells; any earlier acknowledgement lapses."""
    study = ReaderStudy.objects.select_for_update().get(pk=reader_study.pk)
    if study.status != ReaderStudy.Status.DRAFT:
        raise ApplicationError(
            "The blinding check runs before a study first opens.", code="blinding_not_draft"
        )
    tells = blinding_check(reader_study=study)
    stored = [asdict(t) for t in tells]
    blinding_tells_validate(stored)
    study.blinding_tells = stored
    study.blinding_digest = blinding_digest(reader_study=study)
    study.blinding_checked_at = timezone.now()
    study.blinding_acknowledged_by = None
    study.blinding_acknowledged_at = None
    study.save(
        update_fields=[
            "blinding_tells",
            "blinding_digest",
            "blinding_checked_at",
            "blinding_acknowledged_by",
            "blinding_acknowledged_at",
            "updated_at",
        ]
    )
    return tells


def _stale_error() -> ApplicationError:
    return ApplicationError(
        "The cases changed since the blinding check ran. Run the check again and review its tells.",
        code="blinding_check_stale",
    )


@transaction.atomic
def blinding_acknowledge(*, reader_study: ReaderStudy, user: UserLike) -> ReaderStudy:
    """Record that a coordinator of the study reviewed the current check's tells.

    Preconditions: the study is a draft and its stored check is current (same digest)."""
    study = ReaderStudy.objects.select_for_update().get(pk=reader_study.pk)
    if not _may_manage(user, study):
        raise PermissionDenied
    if study.status != ReaderStudy.Status.DRAFT:
        raise ApplicationError(
            "Only a draft's blinding check can be acknowledged.", code="blinding_not_draft"
        )
    if study.blinding_checked_at is None:
        raise ApplicationError(
            "Run the blinding check before acknowledging it.", code="blinding_not_checked"
        )
    if study.blinding_digest != blinding_digest(reader_study=study):
        raise _stale_error()
    study.blinding_acknowledged_by = user  # type: ignore[assignment]
    study.blinding_acknowledged_at = timezone.now()
    study.save(update_fields=["blinding_acknowledged_by", "blinding_acknowledged_at", "updated_at"])
    return study


def blinding_gate(*, reader_study: ReaderStudy) -> None:
    """Refuse to open a draft whose current blinding check is not acknowledged."""
    if reader_study.blinding_checked_at is None:
        raise ApplicationError(
            "Run the blinding check and acknowledge its tells before opening the study.",
            code="blinding_not_checked",
        )
    if reader_study.blinding_digest != blinding_digest(reader_study=reader_study):
        raise _stale_error()
    if reader_study.blinding_acknowledged_at is None:
        raise ApplicationError(
            "Review the blinding check's tells and acknowledge them before opening the study.",
            code="blinding_unacknowledged",
        )


def blinding_summary(*, reader_study: ReaderStudy) -> dict[str, Any]:
    """The stored check for coordinator and analyst pages and the API (never for readers)."""
    tells = list(reader_study.blinding_tells or [])
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for tell in tells:
        by_kind[tell["kind"]].append(tell)
    checked = reader_study.blinding_checked_at is not None
    is_current = checked and (
        reader_study.status != ReaderStudy.Status.DRAFT
        or reader_study.blinding_digest == blinding_digest(reader_study=reader_study)
    )
    by = reader_study.blinding_acknowledged_by
    return {
        "checked_at": reader_study.blinding_checked_at,
        "is_current": is_current,
        "renderer_version": RENDERER_VERSION,
        "tell_count": len(tells),
        "case_count": len({t["case"] for t in tells}),
        "tells": tells,
        "groups": [
            {
                "kind": kind,
                "title": KIND_TITLES[kind],
                "count": len(by_kind[kind]),
                "shown": by_kind[kind][:SHOWN_PER_KIND],
                "more": max(0, len(by_kind[kind]) - SHOWN_PER_KIND),
            }
            for kind in TELL_KINDS
            if by_kind[kind]
        ],
        "acknowledged_by": by.get_username() if by is not None else "",
        "acknowledged_at": reader_study.blinding_acknowledged_at,
        "is_acknowledged": reader_study.blinding_acknowledged_at is not None and is_current,
    }


# Reference answers of practice cases are shown to readers after they submit: their texts must
# not name a source, nor a side (each reader sees the two reports on sides drawn for them, so
# "Report A" would name different reports for different readers).
_REFERENCE_SIDE = re.compile(r"\breport\s+[ab]\b|\b(?:left|right|first|second)\s+report\b", re.I)
_REFERENCE_SOURCE = re.compile(
    r"\b(?:ai|a\.i\.|artificial intelligence|machine|model|generated|algorithm|original|"
    r"human|radiologists?)\b",
    re.IGNORECASE,
)


def reference_text_problems(answers: dict[str, Any], *, sources: list[Report]) -> dict[str, str]:
    """answers.<item> -> why a reference text cannot be shown to readers ({} when all can)."""
    names = {
        name.lower()
        for report in sources
        for name in (
            report.source_note,
            *((report.source.label, report.source.name) if report.source else ()),
        )
        if name and len(name) > 2
    }
    problems = {}
    for item_id, answer in answers.items():
        text = answer.get("text", "")
        if not text:
            continue
        side = _REFERENCE_SIDE.search(text)
        source = _REFERENCE_SOURCE.search(text) or next(
            (n for n in names if n in text.lower()), None
        )
        if side:
            problems[f"answers.{item_id}"] = (
                f"Readers see the two reports on sides drawn for each of them, so "
                f"\u201c{side.group(0)}\u201d would name different reports for different "
                "readers; describe the report by what it says."
            )
        elif source:
            word = source.group(0) if isinstance(source, re.Match) else source
            problems[f"answers.{item_id}"] = (
                f"Readers see this text after the case: \u201c{word}\u201d may tell them which "
                "report came from where; describe the reports by what they say."
            )
    return problems
