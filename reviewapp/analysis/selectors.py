"""Reads for analysis and exports, with the permission check built in.

Exports and the analysis page carry the unblinding key (which source was shown as A and B), so
only analysts, coordinators of that study and administrators get a study through
``reader_study_get_for_analysis``; every other function here takes the study it returns.

The tidy rows below are the single source of every number: the CSV and Parquet exports write
them, and the analysis page builds its frame from the very same rows, so what an analyst
recomputes from a download equals what the page shows.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from reviewapp.core.roles import Role, user_has_role
from reviewapp.studies.models import ErrorSpan, Rating, ReaderStudy, StudyReader

SIGNIFICANT_ERROR = "significant_error"
SIGNIFICANT_ERROR_LABEL = "≥1 clinically significant error"
_CHUNK = 2000


# --------------------------------------------------------------------------------------------
# Access
# --------------------------------------------------------------------------------------------


def user_may_analyse(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether the user has a role that can analyse some study (analyst, coordinator, admin)."""
    return any(user_has_role(user, r) for r in (Role.ANALYST, Role.COORDINATOR, Role.ADMIN))


def reader_study_list_for_analysis(
    *, user: AbstractBaseUser | AnonymousUser
) -> QuerySet[ReaderStudy]:
    """Studies the user may analyse and export: all for analysts and admins, else coordinated."""
    if user_has_role(user, Role.ANALYST) or user_has_role(user, Role.ADMIN):
        return ReaderStudy.objects.all()
    if user_has_role(user, Role.COORDINATOR):
        return ReaderStudy.objects.filter(Q(coordinators=user) | Q(created_by=user)).distinct()
    return ReaderStudy.objects.none()


def reader_study_get_for_analysis(
    *, user: AbstractBaseUser | AnonymousUser, public_id: Any
) -> ReaderStudy:
    """Return a study the user may analyse; 403 without an analysing role, 404 if not theirs."""
    if not user_may_analyse(user):
        raise PermissionDenied("Only analysts, coordinators of the study and admins may do this.")
    try:
        key = public_id if isinstance(public_id, uuid.UUID) else uuid.UUID(str(public_id))
    except ValueError:
        raise Http404("No such reader study.") from None
    study = reader_study_list_for_analysis(user=user).filter(public_id=key).first()
    if study is None:
        raise Http404("No such reader study.")
    return study


# --------------------------------------------------------------------------------------------
# The protocol, as analysis needs it
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    id: str
    label: str
    question: str
    values: frozenset[str]


def question_options(question: dict[str, Any]) -> list[dict[str, Any]]:
    if question["type"] == "yes_no":
        return [{"value": "yes", "label": "Yes"}, {"value": "no", "label": "No"}]
    if question["type"] == "error_spans":
        return list(question.get("categories", []))
    return list(question.get("options", []))


def protocol_outcomes(protocol: dict[str, Any]) -> list[Outcome]:
    """The protocol's derived outcomes with the stored answer values that meet each one.

    ``at_least`` outcomes (ordinal thresholds) are met by the threshold and every option
    listed before it: protocols list ordinal options best first.
    """
    questions = {q["id"]: q for q in protocol.get("questions", [])}
    outcomes = []
    for outcome in protocol.get("outcomes", []):
        question = questions.get(outcome["question"])
        if question is None:
            continue
        if "values" in outcome:
            values = set(outcome["values"])
        else:
            ordered = [o["value"] for o in question_options(question)]
            values = set(ordered[: ordered.index(outcome["at_least"]) + 1])
        outcomes.append(
            Outcome(
                id=outcome["id"],
                label=outcome.get("label", outcome["id"]),
                question=outcome["question"],
                values=frozenset(values),
            )
        )
    return outcomes


def span_questions(protocol: dict[str, Any]) -> list[dict[str, Any]]:
    return [q for q in protocol.get("questions", []) if q["type"] == "error_spans"]


def outcome_columns(protocol: dict[str, Any]) -> list[tuple[str, str]]:
    """(column, label) of every derived-outcome column in the ratings export."""
    columns = [(f"outcome_{o.id}", o.label) for o in protocol_outcomes(protocol)]
    if span_questions(protocol):
        columns.append((f"outcome_{SIGNIFICANT_ERROR}", SIGNIFICANT_ERROR_LABEL))
    return columns


# --------------------------------------------------------------------------------------------
# Tidy rows
# --------------------------------------------------------------------------------------------

RATING_COLUMNS: list[str] = [
    "study",
    "study_name",
    "protocol",
    "protocol_version",
    "rating",
    "case",
    "imaging_study",
    "stratum",
    "reader",
    "cohort",
    "question",
    "item",
    "side",
    "source",
    "answer_value",
    "answer_code",
    "answer_label",
    "answer_text",
    "source_a",
    "source_b",
    "candidate_side",
    "candidate_source",
    "opened_at",
    "first_answer_at",
    "submitted_at",
    "revised_at",
    "active_seconds",
    "duration_seconds",
    "revision_count",
]
SPAN_COLUMNS: list[str] = [
    "study",
    "study_name",
    "protocol",
    "protocol_version",
    "rating",
    "span",
    "case",
    "imaging_study",
    "stratum",
    "reader",
    "cohort",
    "report_source",
    "side",
    "section",
    "start",
    "end",
    "sentence_index",
    "quoted_text",
    "category",
    "category_label",
    "is_significant",
    "replacement_text",
]
DATETIME_COLUMNS = {"opened_at", "first_answer_at", "submitted_at", "revised_at"}
FLOAT_COLUMNS = {"active_seconds", "duration_seconds"}
INT_COLUMNS = {"protocol_version", "revision_count", "start", "end", "sentence_index"}
BOOL_COLUMNS = {"is_significant"}


def rating_columns(reader_study: ReaderStudy) -> list[str]:
    return RATING_COLUMNS + [c for c, _ in outcome_columns(reader_study.protocol)]


def reader_pseudonyms(*, reader_study: ReaderStudy) -> dict[int, tuple[str, str]]:
    """user id -> (pseudonymous reader id, cohort): R01, R02... in the order readers joined.

    Usernames never leave in an export; the numbering is stable for a study's panel.
    """
    seats = StudyReader.objects.filter(reader_study=reader_study).order_by("id")
    mapping = {seat.reader_id: (f"R{n:02d}", seat.cohort) for n, seat in enumerate(seats, start=1)}
    # A reader who rated and then left the panel keeps their ratings; number them after.
    others = (
        Rating.objects.filter(assignment__reader_study=reader_study)
        .exclude(assignment__reader_id__in=list(mapping))
        .values_list("assignment__reader_id", flat=True)
        .distinct()
        .order_by("assignment__reader_id")
    )
    for user_id in others:
        mapping[user_id] = (f"R{len(mapping) + 1:02d}", "")
    return mapping


def _shown_if(question: dict[str, Any], answers: dict[str, Any], side: str) -> bool:
    condition = question.get("show_if")
    if not condition:
        return True
    target = condition["question"]
    stored = (answers.get(f"{target}.{side}") if side else None) or answers.get(target)
    return isinstance(stored, dict) and stored.get("value") in condition["in"]


def _answer_source(
    question: dict[str, Any], stored: dict[str, Any], sources: dict[str, str], side: str
) -> str:
    """The source of the report a per-report answer is about ("" for comparisons)."""
    if question.get("scope") != "per_report":
        return ""
    return str(stored.get("source") or sources.get(side or "A", ""))


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return (later - earlier).total_seconds()


_RATING_FIELDS = (
    "public_id",
    "answers",
    "source_a",
    "source_b",
    "version",
    "submitted_at",
    "revised_at",
    "active_seconds",
    "assignment__reader_id",
    "assignment__candidate_side",
    "assignment__opened_at",
    "assignment__first_answer_at",
    "assignment__case__public_id",
    "assignment__case__stratum",
    "assignment__case__imaging_study__public_id",
)


def rating_rows(*, reader_study: ReaderStudy) -> Iterator[dict[str, Any]]:
    """Yield the tidy ratings: one row per reader x case x question (streamed from the DB).

    Comparative questions give one row per rating (``side`` empty, ``source`` empty: the
    answer compares the candidate with the original); per-report questions one row per
    report shown. The rows of an error-span question count the passages marked on that report
    and carry the "≥1 clinically significant error" outcome.
    """
    protocol = reader_study.protocol
    questions = {q["id"]: q for q in protocol.get("questions", [])}
    outcomes = protocol_outcomes(protocol)
    by_question: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_question.setdefault(outcome.question, []).append(outcome)
    columns = [c for c, _ in outcome_columns(protocol)]
    span_qs = span_questions(protocol)
    readers = reader_pseudonyms(reader_study=reader_study)
    significant = _significant_by_rating(reader_study) if span_qs else {}
    base = {
        "study": str(reader_study.public_id),
        "study_name": reader_study.name,
        "protocol": reader_study.protocol_key,
        "protocol_version": reader_study.protocol_version,
    }
    ratings = (
        Rating.objects.filter(assignment__reader_study=reader_study)
        .order_by("assignment__case_id", "assignment__reader_id")
        .values_list(*_RATING_FIELDS)
    )
    for (
        rating_id,
        answers,
        source_a,
        source_b,
        version,
        submitted_at,
        revised_at,
        active_seconds,
        reader_id,
        candidate_side,
        opened_at,
        first_answer_at,
        case_id,
        stratum,
        imaging_id,
    ) in ratings.iterator(chunk_size=_CHUNK):
        reader, cohort = readers.get(reader_id, ("R??", ""))
        sources = {"A": source_a, "B": source_b}
        common = {
            **base,
            "rating": str(rating_id),
            "case": str(case_id),
            "imaging_study": str(imaging_id),
            "stratum": stratum,
            "reader": reader,
            "cohort": cohort,
            "source_a": source_a,
            "source_b": source_b,
            "candidate_side": candidate_side,
            "candidate_source": sources.get(candidate_side, "") if candidate_side else source_a,
            "opened_at": opened_at,
            "first_answer_at": first_answer_at,
            "submitted_at": submitted_at,
            "revised_at": revised_at,
            "active_seconds": active_seconds,
            "duration_seconds": _seconds(submitted_at, opened_at),
            "revision_count": version - 1,
            **dict.fromkeys(columns),
        }
        for item_id, stored in answers.items():
            question = questions.get(stored.get("question", item_id.split(".")[0]))
            if question is None:
                continue
            side = stored.get("side", "")
            value = stored.get("value", "")
            row = {
                **common,
                "question": question["id"],
                "item": item_id,
                "side": side,
                "source": _answer_source(question, stored, sources, side),
                "answer_value": value,
                "answer_code": stored.get("code", ""),
                "answer_label": stored.get("label", ""),
                "answer_text": stored.get("text", ""),
            }
            for outcome in by_question.get(question["id"], []):
                row[f"outcome_{outcome.id}"] = int(value in outcome.values) if value else None
            yield row
        for question in span_qs:
            shown = [s for s in ("A", "B") if sources.get(s)] if candidate_side else [""]
            for side in shown:
                if not _shown_if(question, answers, side):
                    continue
                marked, is_significant = significant.get((rating_id, side), (0, False))
                yield {
                    **common,
                    "question": question["id"],
                    "item": f"{question['id']}.{side}" if side else question["id"],
                    "side": side,
                    "source": sources[side] if side else source_a,
                    "answer_value": str(marked),
                    "answer_code": "",
                    "answer_label": f"{marked} passage(s) marked",
                    "answer_text": "",
                    f"outcome_{SIGNIFICANT_ERROR}": int(is_significant),
                }


def _significant_by_rating(
    reader_study: ReaderStudy,
) -> dict[tuple[uuid.UUID, str], tuple[int, bool]]:
    """(rating, side) -> (passages marked, any clinically significant)."""
    result: dict[tuple[uuid.UUID, str], tuple[int, bool]] = {}
    spans = ErrorSpan.objects.filter(rating__assignment__reader_study=reader_study).values_list(
        "rating__public_id", "side", "is_significant"
    )
    for rating_id, side, is_significant in spans.iterator(chunk_size=_CHUNK):
        count, any_significant = result.get((rating_id, side), (0, False))
        result[(rating_id, side)] = (count + 1, any_significant or is_significant)
    return result


_SENTENCE_END = re.compile(r"[.!?](?:\s+|$)")


def sentence_index(text: str, offset: int) -> int:
    """0-based index of the sentence holding ``offset`` (sentences end at . ! or ?)."""
    return len(_SENTENCE_END.findall(text[:offset]))


def span_rows(*, reader_study: ReaderStudy) -> Iterator[dict[str, Any]]:
    """Yield one row per marked passage, with its quoted text and sentence index."""
    protocol = reader_study.protocol
    labels = {
        c["value"]: c.get("label", c["value"])
        for q in span_questions(protocol)
        for c in question_options(q)
    }
    readers = reader_pseudonyms(reader_study=reader_study)
    spans = (
        ErrorSpan.objects.filter(rating__assignment__reader_study=reader_study)
        .order_by("rating__assignment__case_id", "rating__assignment__reader_id", "id")
        .values_list(
            "public_id",
            "rating__public_id",
            "rating__assignment__case__public_id",
            "rating__assignment__case__imaging_study__public_id",
            "rating__assignment__case__stratum",
            "rating__assignment__reader_id",
            "report__kind",
            "side",
            "section",
            "start",
            "end",
            "category",
            "is_significant",
            "replacement_text",
            "report__findings",
            "report__impression",
        )
    )
    for (
        span_id,
        rating_id,
        case_id,
        imaging_id,
        stratum,
        reader_id,
        kind,
        side,
        section,
        start,
        end,
        category,
        is_significant,
        replacement,
        findings,
        impression,
    ) in spans.iterator(chunk_size=_CHUNK):
        text = findings if section == "findings" else impression
        reader, cohort = readers.get(reader_id, ("R??", ""))
        yield {
            "study": str(reader_study.public_id),
            "study_name": reader_study.name,
            "protocol": reader_study.protocol_key,
            "protocol_version": reader_study.protocol_version,
            "rating": str(rating_id),
            "span": str(span_id),
            "case": str(case_id),
            "imaging_study": str(imaging_id),
            "stratum": stratum,
            "reader": reader,
            "cohort": cohort,
            "report_source": kind,
            "side": side,
            "section": section,
            "start": start,
            "end": end,
            "sentence_index": sentence_index(text, start),
            "quoted_text": text[start:end],
            "category": category,
            "category_label": labels.get(category, category),
            "is_significant": is_significant,
            "replacement_text": replacement,
        }
