"""Reads for analysis and exports, with the permission check built in.

Exports and the analysis page carry the unblinding key (which source was shown as A and B), so
only analysts, coordinators of that study and administrators get a study through
``reader_study_get_for_analyst``; every other function here takes the study it returns.

The tidy rows below are the single source of every number: typed rows (text, integers, floats,
time stamps, booleans as PostgreSQL types them) that the CSV and Parquet exports write and the
analysis page loads into its frame, through the same Arrow conversion, so what an analyst
recomputes from a download equals what the page shows.

Practice cases (``Case.is_practice``) are never analysed: every query here leaves them out
unless asked with ``include_practice=True``, which only the exports ask (their rows are kept
there, flagged in the ``is_practice`` column), so an analyst who drops the flagged rows of a
download recomputes the page's numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Q, QuerySet
from psycopg import sql as pgsql

from reviewapp.analysis import answers
from reviewapp.core.access import public_id_get_or_404
from reviewapp.core.roles import Role, user_has_role
from reviewapp.studies.models import Assignment, ErrorSpan, Rating, ReaderStudy, StudyReader
from reviewapp.studies.protocols import outcome_values
from reviewapp.studies.selectors import reader_study_list_for_staff

SIGNIFICANT_ERROR = "significant_error"
SIGNIFICANT_ERROR_LABEL = "≥1 clinically significant error"


# --------------------------------------------------------------------------------------------
# Access
# --------------------------------------------------------------------------------------------


def user_may_analyse(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether the user has a role that can analyse some study (analyst, coordinator, admin)."""
    return any(user_has_role(user, r) for r in (Role.ANALYST, Role.COORDINATOR, Role.ADMIN))


def reader_study_list_for_analyst(
    *, user: AbstractBaseUser | AnonymousUser
) -> QuerySet[ReaderStudy]:
    """Studies the user may analyse and export: the studies app's rule for who sees which
    study (all for analysts and admins, else those the coordinator coordinates)."""
    return reader_study_list_for_staff(user=user)


def reader_study_get_for_analyst(
    *, user: AbstractBaseUser | AnonymousUser, public_id: Any
) -> ReaderStudy:
    """Return a study the user may analyse; 403 without an analysing role, 404 if not theirs."""
    if not user_may_analyse(user):
        raise PermissionDenied("Only analysts, coordinators of the study and admins may do this.")
    return public_id_get_or_404(
        reader_study_list_for_analyst(user=user), public_id, what="reader study"
    )


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

    Which values meet an outcome is the reader-studies app's rule (``outcome_values``:
    listed values, or an ordinal threshold and every option before it).
    """
    questions = {q["id"] for q in protocol.get("questions", [])}
    return [
        Outcome(
            id=outcome["id"],
            label=outcome.get("label", outcome["id"]),
            question=outcome["question"],
            values=frozenset(outcome_values(protocol, outcome["id"])),
        )
        for outcome in protocol.get("outcomes", [])
        if outcome["question"] in questions
    ]


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
    # A practice case's rows: kept in exports, never in the analysis (see the module doc).
    "is_practice",
    "reader",
    "cohort",
    # The reader's place for this case in their list (1 = first), and where it stands:
    # pending, in_progress or submitted (never-submitted assignments are rows, answers empty).
    "reading_position",
    "status",
    *answers.ANSWER_COLUMNS,
    "source_a",
    "source_b",
    "candidate_side",
    "candidate_source",
    # Which source wrote each side: its id and the name coordinators and analysts see (an
    # arm of a multi-arm study is a pair of these).
    "source_a_id",
    "source_a_name",
    "source_b_id",
    "source_b_name",
    "report_a_version_id",
    "report_a_version",
    "report_a_sha256",
    "report_b_version_id",
    "report_b_version",
    "report_b_sha256",
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
    "is_practice",
    "reader",
    "cohort",
    "report_source",
    "report_source_id",
    "report_source_name",
    "report_version_id",
    "report_sha256",
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
# One row per rendering a case of the study pinned: the exact texts readers were shown, so an
# analyst can recompute each ``*_sha256`` (see studies.models.rendering_sha256).
REPORT_COLUMNS: list[str] = [
    "study",
    "study_name",
    "report_version_id",
    "report_source",
    "report_source_id",
    "report_source_name",
    "report_version",
    "renderer_version",
    "rendered_findings",
    "rendered_impression",
    "sha256",
]
DATETIME_COLUMNS = {"opened_at", "first_answer_at", "submitted_at", "revised_at"}
FLOAT_COLUMNS = {"active_seconds", "duration_seconds"}
INT_COLUMNS = {
    "protocol_version",
    "reading_position",
    "revision_count",
    "start",
    "end",
    "sentence_index",
    "report_a_version",
    "report_b_version",
    "report_version",
    "renderer_version",
}
BOOL_COLUMNS = {"is_significant", "is_practice"}
# Columns whose text people wrote (names, labels, cohort tags, report and reader texts). In
# CSV a cell of these that begins with = + - @ tab or carriage return gets a leading ' so a
# spreadsheet shows it as text instead of running it as a formula (OWASP, "CSV Injection").
# Ids, codes and protocol values are slugs or UUIDs and numbers stay numbers; Parquet is raw.
FREE_TEXT_COLUMNS = frozenset(
    {
        "study_name",
        "stratum",
        "cohort",
        "source_a_name",
        "source_b_name",
        "report_source_name",
        "answer_label",
        "answer_text",
        "category_label",
        "quoted_text",
        "replacement_text",
        "rendered_findings",
        "rendered_impression",
    }
)
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell_neutralise(value: str) -> str:
    """A free-text cell as the CSV export writes it (``exports.csv_neutralise`` applies this
    rule to whole Arrow columns)."""
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value


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


# The tidy tables are typed rows built by PostgreSQL: answers are unnested from the JSON with
# jsonb_each (through ``answers.answer_columns``), every column carries its SQL type, and
# ``rows.record_batches`` streams them into Arrow. Formatting for people (CSV quoting, formula
# neutralisation, ISO time stamps) happens once, in Arrow, after.
# The SQL is composed with psycopg's sql module, every value from a protocol a bound literal.


def _tables() -> dict[str, pgsql.Identifier]:
    from reviewapp.imaging.models import Study
    from reviewapp.reports.models import Report
    from reviewapp.studies.models import Assignment, Case, RenderedReport

    return {
        "rating": pgsql.Identifier(Rating._meta.db_table),
        "assignment": pgsql.Identifier(Assignment._meta.db_table),
        "case": pgsql.Identifier(Case._meta.db_table),
        "study": pgsql.Identifier(Study._meta.db_table),
        "span": pgsql.Identifier(ErrorSpan._meta.db_table),
        "report": pgsql.Identifier(Report._meta.db_table),
        "rendering": pgsql.Identifier(RenderedReport._meta.db_table),
    }


def _readers_join(reader_study: ReaderStudy) -> pgsql.Composable:
    mapping = reader_pseudonyms(reader_study=reader_study)
    ids = list(mapping)
    return pgsql.SQL(
        "LEFT JOIN unnest({}::bigint[], {}::text[], {}::text[]) AS rd(user_id, pseudonym, cohort)"
        " ON rd.user_id = asg.reader_id"
    ).format(
        pgsql.Literal(ids),
        pgsql.Literal([mapping[i][0] for i in ids]),
        pgsql.Literal([mapping[i][1] for i in ids]),
    )


def _sources_join(reader_study: ReaderStudy, *, alias: str, report: str) -> pgsql.Composable:
    """``LEFT JOIN`` naming the source of report ``report`` as ``alias`` (public_id, name):
    the study's sources are listed here with ``ReportSource.label``, the one rule for the
    name staff see, so no copy of that rule is written in SQL."""
    from reviewapp.reports.models import Report, ReportSource

    shown = Assignment.objects.filter(reader_study=reader_study)
    reports = Report.objects.filter(
        Q(pk__in=shown.values("report_a_id")) | Q(pk__in=shown.values("report_b_id"))
    )
    sources = ReportSource.objects.filter(reports__in=reports).distinct()
    found = list(sources.select_related("model_config"))
    return pgsql.SQL(
        " LEFT JOIN unnest({}::bigint[], {}::text[], {}::text[]) AS {}(id, public_id, name)"
        " ON {}.id = {}.source_id"
    ).format(
        pgsql.Literal([source.pk for source in found]),
        pgsql.Literal([str(source.public_id) for source in found]),
        pgsql.Literal([source.label for source in found]),
        pgsql.Identifier(alias),
        pgsql.Identifier(alias),
        pgsql.Identifier(report),
    )


def _common(reader_study: ReaderStudy) -> list[tuple[str, pgsql.Composable]]:
    """Columns every ratings row shares, as (name, expression)."""
    return [
        ("study", pgsql.SQL("{}::text").format(pgsql.Literal(str(reader_study.public_id)))),
        ("study_name", pgsql.SQL("{}::text").format(pgsql.Literal(reader_study.name))),
        ("protocol", pgsql.SQL("{}::text").format(pgsql.Literal(reader_study.protocol_key))),
        (
            "protocol_version",
            pgsql.SQL("{}::int").format(pgsql.Literal(reader_study.protocol_version)),
        ),
        ("rating", pgsql.SQL("r.public_id::text")),
        ("case", pgsql.SQL("c.public_id::text")),
        ("imaging_study", pgsql.SQL("s.public_id::text")),
        ("stratum", pgsql.SQL("c.stratum")),
        ("is_practice", pgsql.SQL("c.is_practice")),
        ("reader", pgsql.SQL("COALESCE(rd.pseudonym, 'R??')")),
        ("cohort", pgsql.SQL("COALESCE(rd.cohort, '')")),
    ]


# Where the assignment stands. A rating is what "submitted" means to analysis, so a row
# without one is pending or in progress whatever the assignment's own field says.
_STATUS = (
    "CASE WHEN r.id IS NOT NULL THEN 'submitted'"
    " WHEN asg.opened_at IS NOT NULL OR asg.status <> 'pending' THEN 'in_progress'"
    " ELSE 'pending' END"
)

_KEY_COLUMNS = [
    ("reading_position", "asg.position"),
    ("status", _STATUS),
    ("source_a", "r.source_a"),
    ("source_b", "r.source_b"),
    ("candidate_side", "asg.candidate_side"),
    (
        "candidate_source",
        "CASE asg.candidate_side WHEN 'A' THEN r.source_a WHEN 'B' THEN r.source_b"
        " ELSE r.source_a END",
    ),
    ("source_a_id", "sra.public_id"),
    ("source_a_name", "sra.name"),
    ("source_b_id", "srb.public_id"),
    ("source_b_name", "srb.name"),
    # Which exact report version and rendered text each side showed (see REPORT_COLUMNS).
    ("report_a_version_id", "ra.public_id::text"),
    ("report_a_version", "ra.version"),
    ("report_a_sha256", "pa.sha256"),
    ("report_b_version_id", "rb.public_id::text"),
    ("report_b_version", "rb.version"),
    ("report_b_sha256", "pb.sha256"),
]

# The rendering a case pinned for one of its reports (NULL where nothing was pinned).
_PINNED = (
    "CASE {report} WHEN c.first_report_id THEN c.first_rendering_id"
    " WHEN c.second_report_id THEN c.second_rendering_id END"
)


def _epoch_us(column: str) -> pgsql.Composable:
    """A time stamp as whole microseconds since 1970 UTC, the form ``DATETIME_COLUMNS`` travel
    in: Django's time-zone loader is Python code run per value, an integer is loaded in C
    (``rows.record_batches`` makes it an Arrow time stamp again)."""
    return pgsql.SQL("(EXTRACT(EPOCH FROM {}) * 1000000)::int8").format(pgsql.SQL(column))


def _timing() -> list[tuple[str, pgsql.Composable]]:
    return [
        ("opened_at", _epoch_us("asg.opened_at")),
        ("first_answer_at", _epoch_us("asg.first_answer_at")),
        ("submitted_at", _epoch_us("r.submitted_at")),
        ("revised_at", _epoch_us("r.revised_at")),
        ("active_seconds", pgsql.SQL("r.active_seconds::float8")),
        (
            "duration_seconds",
            pgsql.SQL("EXTRACT(EPOCH FROM (r.submitted_at - asg.opened_at))::float8"),
        ),
        ("revision_count", pgsql.SQL("r.version - 1")),
    ]


def _from(reader_study: ReaderStudy, *, submitted_only: bool) -> pgsql.Composable:
    t = _tables()
    join = "JOIN" if submitted_only else "LEFT JOIN"
    return pgsql.SQL(
        "FROM {assignment} asg " + join + " {rating} r ON r.assignment_id = asg.id"
        " JOIN {case} c ON c.id = asg.case_id JOIN {study} s ON s.id = c.imaging_study_id"
        " JOIN {report} ra ON ra.id = asg.report_a_id"
        " LEFT JOIN {report} rb ON rb.id = asg.report_b_id"
        " LEFT JOIN {rendering} pa ON pa.id = " + _PINNED.format(report="asg.report_a_id") + ""
        " LEFT JOIN {rendering} pb ON pb.id = " + _PINNED.format(report="asg.report_b_id") + " "
    ).format(**t) + (
        _readers_join(reader_study)
        + _sources_join(reader_study, alias="sra", report="ra")
        + _sources_join(reader_study, alias="srb", report="rb")
    )


def _select(columns: list[tuple[str, pgsql.Composable]]) -> pgsql.Composable:
    return pgsql.SQL(", ").join(
        pgsql.SQL("{} AS {}").format(expr, pgsql.Identifier(name)) for name, expr in columns
    )


def _per_rating(reader_study: ReaderStudy) -> dict[str, pgsql.Composable]:
    """The ratings columns that are the same on every row of an assignment, by name."""
    keys = [(n, pgsql.SQL(e)) for n, e in _KEY_COLUMNS]
    return dict([*_common(reader_study), *keys, *_timing()])


# One rating gives several tidy rows (one per answer, one per report an error-span question
# applied to), and most columns (ids, reader, the unblinding key, times) are the rating's.
# Those are computed once per assignment, in a subquery PostgreSQL may not flatten (OFFSET 0),
# sorted by case and reader so that the final sort only orders each rating's few rows (an
# incremental sort, streaming). Its helper columns start with "_".
_HELPERS = [
    ("_id", "r.id"),
    ("_answers", "r.answers"),
    ("_source_a", "r.source_a"),
    ("_source_b", "r.source_b"),
    ("_candidate_side", "asg.candidate_side"),
    ("_case_order", "asg.case_id"),
    ("_reader_order", "asg.reader_id"),
]


def _practice_filter(include_practice: bool) -> pgsql.Composable:
    return pgsql.SQL("" if include_practice else " AND NOT c.is_practice")


def _assignment_rows(
    reader_study: ReaderStudy, *, submitted_only: bool, include_practice: bool
) -> pgsql.Composable:
    """The study's assignments (with their rating, if any), one row each, as ``FROM (...) rt``."""
    columns = [(n, pgsql.SQL(e)) for n, e in _HELPERS] + list(_per_rating(reader_study).items())
    return (
        pgsql.SQL("FROM (SELECT {} ").format(_select(columns))
        + _from(reader_study, submitted_only=submitted_only)
        + pgsql.SQL(" WHERE asg.reader_study_id = {}").format(pgsql.Literal(reader_study.pk))
        + _practice_filter(include_practice)
        + pgsql.SQL(" ORDER BY asg.case_id, asg.reader_id OFFSET 0) AS rt")
    )


def _part(
    wanted: list[str],
    per_rating: set[str],
    per_row: dict[str, pgsql.Composable],
    item: pgsql.Composable,
) -> pgsql.Composable:
    """The SELECT list of one kind of tidy row: per-rating columns from ``rt``, then its own."""
    columns = [
        (c, pgsql.SQL("rt.{}").format(pgsql.Identifier(c)) if c in per_rating else per_row[c])
        for c in wanted
    ]
    return pgsql.SQL("SELECT {}, rt._case_order, rt._reader_order, {} AS _item ").format(
        _select(columns), item
    )


def ratings_query(
    *,
    reader_study: ReaderStudy,
    columns: list[str] | None = None,
    submitted_only: bool = False,
    include_practice: bool = False,
) -> pgsql.Composable:
    """The tidy ratings table (see ``rating_columns``) as typed rows, ordered by case, reader.

    Comparative questions give one row per rating (``side`` and ``source`` empty: the answer
    compares the candidate with the original); per-report questions one row per report shown.
    Each error-span question adds a row per report it applied to, counting the passages marked
    and carrying the "≥1 clinically significant error" outcome. An assignment never submitted
    is one row with its ``status`` and reading position and no answer (``submitted_only``
    leaves those out, as analysis does). Practice cases only with ``include_practice``.
    """
    protocol = reader_study.protocol
    questions = protocol.get("questions", [])
    answered = [q["id"] for q in questions if q["type"] != "error_spans"]
    per_report = [q["id"] for q in questions if q.get("scope") == "per_report"]
    outcomes = protocol_outcomes(protocol)
    spans = span_questions(protocol)
    wanted = columns or rating_columns(reader_study)
    per_rating = set(_per_rating(reader_study))
    rows = _assignment_rows(
        reader_study, submitted_only=submitted_only, include_practice=include_practice
    )
    answer_columns = answers.answer_columns(
        per_report=per_report,
        source_a=pgsql.SQL("rt._source_a"),
        source_b=pgsql.SQL("rt._source_b"),
    )
    value = answer_columns["answer_value"]
    answer_columns = {
        **answer_columns,
        **{
            f"outcome_{o.id}": pgsql.SQL(
                "CASE WHEN q.qid = {} AND {} <> '' THEN ({} = ANY({}::text[]))::int END"
            ).format(pgsql.Literal(o.question), value, value, pgsql.Literal(sorted(o.values)))
            for o in outcomes
        },
    }
    if spans:
        answer_columns[f"outcome_{SIGNIFICANT_ERROR}"] = pgsql.SQL("NULL::int")
    parts = [
        _part(wanted, per_rating, answer_columns, pgsql.SQL("ans.key"))
        + rows
        + pgsql.SQL(
            " CROSS JOIN LATERAL jsonb_each(rt._answers) AS ans"
            " CROSS JOIN LATERAL (SELECT {} AS qid) AS q"
            " WHERE jsonb_typeof(ans.value) = 'object' AND q.qid = ANY({}::text[])"
        ).format(answers.answer_question(), pgsql.Literal(answered))
    ]
    for question in spans:
        qid = pgsql.Literal(question["id"])
        condition = question.get("show_if")
        shown: pgsql.Composable = pgsql.SQL("TRUE")
        if condition:
            target = pgsql.Literal(condition["question"])
            shown = pgsql.SQL("{} = ANY({}::text[])").format(
                answers.answer_value_at(
                    pgsql.SQL("rt._answers"),
                    pgsql.SQL("{} || '.' || sd.side").format(target),
                    target,
                ),
                pgsql.Literal(list(condition["in"])),
            )
        item = pgsql.SQL("CASE WHEN sd.side = '' THEN {} ELSE {} || '.' || sd.side END").format(
            qid, qid
        )
        span_columns = {
            "question": pgsql.SQL("{}::text").format(qid),
            "item": item,
            "side": pgsql.SQL("sd.side"),
            "source": pgsql.SQL("CASE WHEN sd.side = 'B' THEN rt._source_b ELSE rt._source_a END"),
            "answer_value": pgsql.SQL("COALESCE(sp.n, 0)::text"),
            "answer_code": pgsql.SQL("''::text"),
            "answer_label": pgsql.SQL("COALESCE(sp.n, 0) || ' passage(s) marked'"),
            "answer_text": pgsql.SQL("''::text"),
            **{f"outcome_{o.id}": pgsql.SQL("NULL::int") for o in outcomes},
            f"outcome_{SIGNIFICANT_ERROR}": pgsql.SQL("COALESCE(sp.sig, FALSE)::int"),
        }
        parts.append(
            _part(wanted, per_rating, span_columns, item)
            + rows
            + pgsql.SQL(
                " CROSS JOIN LATERAL unnest(CASE WHEN rt._candidate_side IN ('A', 'B')"
                " THEN ARRAY['A', 'B'] ELSE ARRAY[''] END) AS sd(side)"
                " LEFT JOIN LATERAL (SELECT count(*) AS n, bool_or(e.is_significant) AS sig"
                " FROM {} e WHERE e.rating_id = rt._id AND e.side = sd.side) AS sp ON TRUE"
                " WHERE rt._id IS NOT NULL AND (sd.side = ''"
                " OR (CASE sd.side WHEN 'A' THEN rt._source_a ELSE rt._source_b END) <> '')"
                " AND {}"
            ).format(_tables()["span"], shown)
        )
    if not submitted_only:
        # Never submitted: the assignment's own columns, no answer.
        empty: dict[str, pgsql.Composable] = {
            **{c: pgsql.SQL("NULL::text") for c in answers.ANSWER_COLUMNS},
            **{c: pgsql.SQL("NULL::int") for c, _ in outcome_columns(protocol)},
        }
        parts.append(
            _part(wanted, per_rating, empty, pgsql.SQL("''::text"))
            + rows
            + pgsql.SQL(" WHERE rt._id IS NULL")
        )
    return pgsql.SQL(
        "SELECT {} FROM ({}) AS tidy ORDER BY _case_order, _reader_order, _item"
    ).format(
        pgsql.SQL(", ").join(pgsql.Identifier(c) for c in wanted),
        pgsql.SQL(" UNION ALL ").join(parts),
    )


def spans_query(*, reader_study: ReaderStudy, include_practice: bool = False) -> pgsql.Composable:
    """The error-span table (one row per marked passage, ``SPAN_COLUMNS``) as typed rows;
    practice cases' passages only with ``include_practice``.

    The quoted passage and its sentence were stored with the span from the rendered text the
    offsets refer to (what the reader saw), never re-derived from the stored report text.
    """
    protocol = reader_study.protocol
    labels = {
        c["value"]: c.get("label", c["value"])
        for q in span_questions(protocol)
        for c in question_options(q)
    }
    columns = [
        *_common(reader_study)[:4],
        ("rating", pgsql.SQL("r.public_id::text")),
        ("span", pgsql.SQL("e.public_id::text")),
        *_common(reader_study)[5:],
        ("report_source", pgsql.SQL("rep.kind")),
        ("report_source_id", pgsql.SQL("src.public_id")),
        ("report_source_name", pgsql.SQL("src.name")),
        ("report_version_id", pgsql.SQL("rep.public_id::text")),
        ("report_sha256", pgsql.SQL("pin.sha256")),
        ("side", pgsql.SQL("e.side")),
        ("section", pgsql.SQL("e.section")),
        ("start", pgsql.SQL("e.start")),
        ("end", pgsql.SQL('e."end"')),
        ("sentence_index", pgsql.SQL("e.sentence_index")),
        ("quoted_text", pgsql.SQL("e.quoted_text")),
        ("category", pgsql.SQL("e.category")),
        ("category_label", pgsql.SQL("COALESCE(cl.label, e.category)")),
        ("is_significant", pgsql.SQL("e.is_significant")),
        ("replacement_text", pgsql.SQL("e.replacement_text")),
    ]
    keys = list(labels)
    t = _tables()
    return (
        pgsql.SQL("SELECT {} FROM {} e JOIN {} rep ON rep.id = e.report_id ").format(
            _select(columns), t["span"], t["report"]
        )
        + pgsql.SQL(
            "JOIN {} r ON r.id = e.rating_id JOIN {} asg ON asg.id = r.assignment_id"
            " JOIN {} c ON c.id = asg.case_id JOIN {} s ON s.id = c.imaging_study_id"
            " LEFT JOIN {} pin ON pin.id = " + _PINNED.format(report="e.report_id") + " "
        ).format(t["rating"], t["assignment"], t["case"], t["study"], t["rendering"])
        + _readers_join(reader_study)
        + _sources_join(reader_study, alias="src", report="rep")
        + pgsql.SQL(
            " LEFT JOIN unnest({}::text[], {}::text[]) AS cl(value, label) ON cl.value = e.category"
            " WHERE asg.reader_study_id = {}"
        ).format(
            pgsql.Literal(keys),
            pgsql.Literal([labels[k] for k in keys]),
            pgsql.Literal(reader_study.pk),
        )
        + _practice_filter(include_practice)
        + pgsql.SQL(" ORDER BY c.id, asg.reader_id, e.id")
    )


def reports_query(*, reader_study: ReaderStudy) -> pgsql.Composable:
    """The renderings the study's cases pinned (``REPORT_COLUMNS``), one typed row each."""
    t = _tables()
    columns = [
        *_common(reader_study)[:2],
        ("report_version_id", pgsql.SQL("rep.public_id::text")),
        ("report_source", pgsql.SQL("rep.kind")),
        ("report_source_id", pgsql.SQL("src.public_id")),
        ("report_source_name", pgsql.SQL("src.name")),
        ("report_version", pgsql.SQL("rep.version")),
        ("renderer_version", pgsql.SQL("pin.renderer_version")),
        ("rendered_findings", pgsql.SQL("pin.findings")),
        ("rendered_impression", pgsql.SQL("pin.impression")),
        ("sha256", pgsql.SQL("pin.sha256")),
    ]
    return pgsql.SQL(
        "SELECT {columns} FROM {rendering} pin JOIN {report} rep ON rep.id = pin.report_id"
        "{sources} WHERE pin.id IN"
        " (SELECT first_rendering_id FROM {case} WHERE reader_study_id = {pk}"
        " UNION SELECT second_rendering_id FROM {case} WHERE reader_study_id = {pk})"
        " ORDER BY rep.public_id, pin.renderer_version"
    ).format(
        columns=_select(columns),
        sources=_sources_join(reader_study, alias="src", report="rep"),
        rendering=t["rendering"],
        report=t["report"],
        case=t["case"],
        pk=pgsql.Literal(reader_study.pk),
    )


def assignment_status_counts(
    *, reader_study: ReaderStudy, include_practice: bool = True
) -> dict[str, int]:
    """Assignments of the study by the ratings table's ``status`` (every status, 0 if none);
    by default of every case, as the ratings export holds them."""
    query = (
        pgsql.SQL("SELECT rt.status, count(*) ")
        + _assignment_rows(reader_study, submitted_only=False, include_practice=include_practice)
        + pgsql.SQL(" GROUP BY rt.status")
    )
    counts = dict.fromkeys(("pending", "in_progress", "submitted"), 0)
    with connection.cursor() as cursor:
        cursor.execute(query.as_string(connection.connection))
        counts.update({status: int(n) for status, n in cursor.fetchall()})
    return counts


def dataset_row_count(*, reader_study: ReaderStudy, dataset: str) -> int:
    """How many rows the export of one table of the study holds now."""
    query = pgsql.SQL("SELECT count(*) FROM ({}) AS q").format(
        dataset_query(reader_study=reader_study, dataset=dataset).query
    )
    with connection.cursor() as cursor:
        cursor.execute(query.as_string(connection.connection))
        return int(cursor.fetchone()[0])


# The tables an export can hold; the sidecar describes them and is not a table.
TABLE_DATASETS = ("ratings", "spans", "reports")


@dataclass(frozen=True)
class TidyQuery:
    """A tidy table's typed query and its columns, in order (``rows.record_batches``)."""

    query: pgsql.Composable
    columns: list[str]


def dataset_query(*, reader_study: ReaderStudy, dataset: str) -> TidyQuery:
    """The typed-rows query of one exportable table ("ratings", "spans" or "reports"), with
    the practice cases' rows, flagged."""
    if dataset == "ratings":
        return TidyQuery(
            ratings_query(reader_study=reader_study, include_practice=True),
            rating_columns(reader_study),
        )
    if dataset == "spans":
        return TidyQuery(
            spans_query(reader_study=reader_study, include_practice=True), SPAN_COLUMNS
        )
    if dataset == "reports":
        return TidyQuery(reports_query(reader_study=reader_study), REPORT_COLUMNS)
    raise ValueError(f"unknown dataset {dataset!r}")


def practice_ratings_count(*, reader_study: ReaderStudy) -> int:
    """How many submitted ratings of the study are of practice cases (left out of analysis)."""
    return Rating.objects.filter(
        assignment__reader_study=reader_study, assignment__case__is_practice=True
    ).count()
