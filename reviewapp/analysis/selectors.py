"""Reads for analysis and exports, with the permission check built in.

Exports and the analysis page carry the unblinding key (which source was shown as A and B), so
only analysts, coordinators of that study and administrators get a study through
``reader_study_get_for_analysis``; every other function here takes the study it returns.

The tidy rows below are the single source of every number: the CSV and Parquet exports write
them, and the analysis page builds its frame from the very same rows, so what an analyst
recomputes from a download equals what the page shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from psycopg import sql as pgsql

from reviewapp.core.access import public_id_get_or_404
from reviewapp.core.roles import Role, user_has_role
from reviewapp.studies.models import ErrorSpan, Rating, ReaderStudy, StudyReader
from reviewapp.studies.protocols import outcome_values
from reviewapp.studies.selectors import reader_study_list

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
    """Studies the user may analyse and export: the studies app's rule for who sees which
    study (all for analysts and admins, else those the coordinator coordinates)."""
    return reader_study_list(user=user)


def reader_study_get_for_analysis(
    *, user: AbstractBaseUser | AnonymousUser, public_id: Any
) -> ReaderStudy:
    """Return a study the user may analyse; 403 without an analysing role, 404 if not theirs."""
    if not user_may_analyse(user):
        raise PermissionDenied("Only analysts, coordinators of the study and admins may do this.")
    return public_id_get_or_404(
        reader_study_list_for_analysis(user=user), public_id, what="reader study"
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
    "reader",
    "cohort",
    "report_source",
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
    "revision_count",
    "start",
    "end",
    "sentence_index",
    "report_a_version",
    "report_b_version",
    "report_version",
    "renderer_version",
}
BOOL_COLUMNS = {"is_significant"}
# Columns whose text people wrote (names, labels, cohort tags, report and reader texts). In
# CSV a cell of these that begins with = + - @ tab or carriage return gets a leading ' so a
# spreadsheet shows it as text instead of running it as a formula (OWASP, "CSV Injection").
# Ids, codes and protocol values are slugs or UUIDs and numbers stay numbers; Parquet is raw.
FREE_TEXT_COLUMNS = frozenset(
    {
        "study_name",
        "stratum",
        "cohort",
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
    """A free-text cell as the CSV export writes it (the same rule as ``_formula_safe``)."""
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


# The tidy tables are built by PostgreSQL: answers are unnested from the JSON with jsonb_each
# and each row comes back as one finished CSV record, fetched a few thousand at a time by a
# server-side cursor: building and writing the rows in Python took five times longer. The SQL
# is composed with psycopg's sql module, every value from a protocol a bound literal.


def _ts(column: str) -> pgsql.Composable:
    return pgsql.SQL("to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')").format(
        pgsql.SQL(column)
    )


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


def _common(reader_study: ReaderStudy) -> list[tuple[str, pgsql.Composable]]:
    """Columns every ratings row shares, as (name, expression)."""
    return [
        ("study", pgsql.Literal(str(reader_study.public_id))),
        ("study_name", pgsql.Literal(reader_study.name)),
        ("protocol", pgsql.Literal(reader_study.protocol_key)),
        (
            "protocol_version",
            pgsql.SQL("{}::int").format(pgsql.Literal(reader_study.protocol_version)),
        ),
        ("rating", pgsql.SQL("r.public_id::text")),
        ("case", pgsql.SQL("c.public_id::text")),
        ("imaging_study", pgsql.SQL("s.public_id::text")),
        ("stratum", pgsql.SQL("c.stratum")),
        ("reader", pgsql.SQL("COALESCE(rd.pseudonym, 'R??')")),
        ("cohort", pgsql.SQL("COALESCE(rd.cohort, '')")),
    ]


_KEY_COLUMNS = [
    ("source_a", "r.source_a"),
    ("source_b", "r.source_b"),
    ("candidate_side", "asg.candidate_side"),
    (
        "candidate_source",
        "CASE asg.candidate_side WHEN 'A' THEN r.source_a WHEN 'B' THEN r.source_b"
        " ELSE r.source_a END",
    ),
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


def _timing() -> list[tuple[str, pgsql.Composable]]:
    return [
        ("opened_at", _ts("asg.opened_at")),
        ("first_answer_at", _ts("asg.first_answer_at")),
        ("submitted_at", _ts("r.submitted_at")),
        ("revised_at", _ts("r.revised_at")),
        ("active_seconds", pgsql.SQL("r.active_seconds")),
        (
            "duration_seconds",
            pgsql.SQL("EXTRACT(EPOCH FROM (r.submitted_at - asg.opened_at))::float8"),
        ),
        ("revision_count", pgsql.SQL("r.version - 1")),
    ]


def _from(reader_study: ReaderStudy) -> pgsql.Composable:
    t = _tables()
    return pgsql.SQL(
        "FROM {rating} r JOIN {assignment} asg ON asg.id = r.assignment_id"
        " JOIN {case} c ON c.id = asg.case_id JOIN {study} s ON s.id = c.imaging_study_id"
        " JOIN {report} ra ON ra.id = asg.report_a_id"
        " LEFT JOIN {report} rb ON rb.id = asg.report_b_id"
        " LEFT JOIN {rendering} pa ON pa.id = " + _PINNED.format(report="asg.report_a_id") + ""
        " LEFT JOIN {rendering} pb ON pb.id = " + _PINNED.format(report="asg.report_b_id") + " "
    ).format(**t) + _readers_join(reader_study)


def _select(columns: list[tuple[str, pgsql.Composable]]) -> pgsql.Composable:
    return pgsql.SQL(", ").join(
        pgsql.SQL("{} AS {}").format(expr, pgsql.Identifier(name)) for name, expr in columns
    )


def _formula_safe(column: str, expr: pgsql.Composable) -> pgsql.Composable:
    """``expr`` with a leading ' before a formula trigger, for the free-text columns only.

    One anchored regexp_replace evaluates the expression once per cell; the class below is
    exactly FORMULA_TRIGGERS (``csv_cell_neutralise`` is the same rule in Python).
    """
    if column not in FREE_TEXT_COLUMNS:
        return expr
    return pgsql.SQL("regexp_replace(({})::text, {}, {})").format(
        expr, pgsql.Literal("^([=+@\t\r-])"), pgsql.Literal("'\\1")
    )


def _csv_field(
    column: str, expr: pgsql.Composable, *, spreadsheet_safe: bool = False
) -> pgsql.Composable:
    """One CSV field of ``column`` holding ``expr``: numbers bare, text always quoted.

    ``spreadsheet_safe``: neutralise formulas in free-text columns (CSV downloads); the
    analysis page and Parquet read the raw values.
    """
    if column in INT_COLUMNS or column in FLOAT_COLUMNS or column.startswith("outcome_"):
        return pgsql.SQL("COALESCE(({})::text, '')").format(expr)
    if spreadsheet_safe:
        expr = _formula_safe(column, expr)
    # Every text field quoted (RFC 4180 allows it and it needs no per-value test); quotes
    # inside are doubled. NULL stays an empty, unquoted field.
    return pgsql.SQL("""COALESCE('"' || replace(({})::text, '"', '""') || '"', '')""").format(expr)


def _csv_join(fields: list[pgsql.Composable]) -> pgsql.Composable:
    return pgsql.SQL(" || ',' || ").join(fields)


def _csv_record(fields: list[pgsql.Composable]) -> pgsql.Composable:
    return pgsql.SQL("{} || E'\\r\\n'").format(_csv_join(fields))


# One rating gives several tidy rows (one per answer, one per report an error-span question
# applied to), and most columns (ids, reader, the unblinding key, times) are the rating's.
# Those are formatted once per rating, in a subquery PostgreSQL may not flatten (OFFSET 0),
# rather than once per row: the formatting is most of the export's cost. The subquery hands
# the per-row expressions what they need under the alias ``rt``.
_RATING_FIELDS = [
    ("id", "r.id"),
    ("answers", "r.answers"),
    ("source_a", "r.source_a"),
    ("source_b", "r.source_b"),
    ("candidate_side", "asg.candidate_side"),
    ("case_order", "asg.case_id"),
    ("reader_order", "asg.reader_id"),
]


def _per_rating(reader_study: ReaderStudy) -> dict[str, pgsql.Composable]:
    """The ratings columns that are the same on every row of a rating, by name."""
    keys = [(n, pgsql.SQL(e)) for n, e in _KEY_COLUMNS]
    return dict([*_common(reader_study), *keys, *_timing()])


def _rating_rows(
    reader_study: ReaderStudy, fragments: list[list[str]], *, spreadsheet_safe: bool
) -> tuple[pgsql.Composable, list[pgsql.Composable]]:
    """The study's ratings, one row each, as ``FROM (...) rt``; and the formatted fragments.

    Each fragment is a run of consecutive per-rating columns already joined as CSV fields
    (column ``rt._fN``). Rows come sorted by case and reader, so the export's final sort only
    has to order each rating's few rows (an incremental sort, streaming).
    """
    per_rating = _per_rating(reader_study)
    columns = [(name, pgsql.SQL(expr)) for name, expr in _RATING_FIELDS] + [
        (
            f"_f{i}",
            _csv_join(
                [_csv_field(c, per_rating[c], spreadsheet_safe=spreadsheet_safe) for c in run]
            ),
        )
        for i, run in enumerate(fragments)
    ]
    subquery = (
        pgsql.SQL("FROM (SELECT {} ").format(_select(columns))
        + _from(reader_study)
        + pgsql.SQL(
            " WHERE asg.reader_study_id = {} ORDER BY asg.case_id, asg.reader_id OFFSET 0) AS rt"
        ).format(pgsql.Literal(reader_study.pk))
    )
    return subquery, [
        pgsql.SQL("rt.{}").format(pgsql.Identifier(f"_f{i}")) for i in range(len(fragments))
    ]


def _fragments(wanted: list[str], per_rating: set[str]) -> list[list[str]]:
    """Runs of consecutive per-rating columns in ``wanted``."""
    runs: list[list[str]] = []
    previous = False
    for column in wanted:
        if column in per_rating:
            if previous:
                runs[-1].append(column)
            else:
                runs.append([column])
        previous = column in per_rating
    return runs


def _record(
    wanted: list[str],
    per_rating: set[str],
    fragments: list[pgsql.Composable],
    per_row: dict[str, pgsql.Composable],
    *,
    spreadsheet_safe: bool,
) -> pgsql.Composable:
    """The CSV record of one tidy row: per-rating fragments and this row's own fields."""
    fields: list[pgsql.Composable] = []
    left = iter(fragments)
    previous = False
    for column in wanted:
        if column in per_rating:
            if not previous:
                fields.append(next(left))
        else:
            fields.append(_csv_field(column, per_row[column], spreadsheet_safe=spreadsheet_safe))
        previous = column in per_rating
    return _csv_record(fields)


def ratings_query(
    *,
    reader_study: ReaderStudy,
    columns: list[str] | None = None,
    spreadsheet_safe: bool = False,
) -> pgsql.Composable:
    """The tidy ratings table (see ``rating_columns``) as CSV records, ordered by case, reader.

    One text column: each row one RFC 4180 record ending in CRLF, every text field quoted.
    Comparative questions give one row per rating (``side`` and ``source`` empty: the answer
    compares the candidate with the original); per-report questions one row per report shown.
    Each error-span question adds a row per report it applied to, counting the passages marked
    and carrying the "≥1 clinically significant error" outcome.
    """
    protocol = reader_study.protocol
    questions = protocol.get("questions", [])
    answered = [q["id"] for q in questions if q["type"] != "error_spans"]
    per_report = [q["id"] for q in questions if q.get("scope") == "per_report"]
    outcomes = protocol_outcomes(protocol)
    spans = span_questions(protocol)
    wanted = columns or rating_columns(reader_study)
    per_rating = set(_per_rating(reader_study))
    ratings, fragments = _rating_rows(
        reader_study, _fragments(wanted, per_rating), spreadsheet_safe=spreadsheet_safe
    )
    value = pgsql.SQL("COALESCE(ans.value->>'value', '')")
    answer_columns = {
        "question": pgsql.SQL("q.qid"),
        "item": pgsql.SQL("ans.key"),
        "side": pgsql.SQL("COALESCE(ans.value->>'side', '')"),
        "source": pgsql.SQL(
            "CASE WHEN q.qid = ANY({}::text[]) THEN COALESCE(NULLIF(ans.value->>'source', ''),"
            " CASE WHEN ans.value->>'side' = 'B' THEN rt.source_b ELSE rt.source_a END)"
            " ELSE '' END"
        ).format(pgsql.Literal(per_report)),
        "answer_value": value,
        "answer_code": pgsql.SQL("COALESCE(ans.value->>'code', '')"),
        "answer_label": pgsql.SQL("COALESCE(ans.value->>'label', '')"),
        "answer_text": pgsql.SQL("COALESCE(ans.value->>'text', '')"),
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
        pgsql.SQL("SELECT {} AS line, rt.case_order, rt.reader_order, ans.key AS item ").format(
            _record(
                wanted, per_rating, fragments, answer_columns, spreadsheet_safe=spreadsheet_safe
            )
        )
        + ratings
        + pgsql.SQL(
            " CROSS JOIN LATERAL jsonb_each(rt.answers) AS ans"
            " CROSS JOIN LATERAL (SELECT COALESCE(ans.value->>'question',"
            " split_part(ans.key, '.', 1)) AS qid) AS q"
            " WHERE jsonb_typeof(ans.value) = 'object' AND q.qid = ANY({}::text[])"
        ).format(pgsql.Literal(answered))
    ]
    for question in spans:
        qid = pgsql.Literal(question["id"])
        condition = question.get("show_if")
        shown: pgsql.Composable = pgsql.SQL("TRUE")
        if condition:
            target = pgsql.Literal(condition["question"])
            shown = pgsql.SQL(
                "COALESCE(rt.answers -> ({} || '.' || sd.side), rt.answers -> {}) ->> 'value'"
                " = ANY({}::text[])"
            ).format(target, target, pgsql.Literal(list(condition["in"])))
        item = pgsql.SQL("CASE WHEN sd.side = '' THEN {} ELSE {} || '.' || sd.side END").format(
            qid, qid
        )
        span_columns = {
            "question": qid,
            "item": item,
            "side": pgsql.SQL("sd.side"),
            "source": pgsql.SQL("CASE WHEN sd.side = 'B' THEN rt.source_b ELSE rt.source_a END"),
            "answer_value": pgsql.SQL("COALESCE(sp.n, 0)::text"),
            "answer_code": pgsql.SQL("''"),
            "answer_label": pgsql.SQL("COALESCE(sp.n, 0) || ' passage(s) marked'"),
            "answer_text": pgsql.SQL("''"),
            **{f"outcome_{o.id}": pgsql.SQL("NULL::int") for o in outcomes},
            f"outcome_{SIGNIFICANT_ERROR}": pgsql.SQL("COALESCE(sp.sig, FALSE)::int"),
        }
        parts.append(
            pgsql.SQL("SELECT {} AS line, rt.case_order, rt.reader_order, {} AS item ").format(
                _record(
                    wanted, per_rating, fragments, span_columns, spreadsheet_safe=spreadsheet_safe
                ),
                item,
            )
            + ratings
            + pgsql.SQL(
                " CROSS JOIN LATERAL unnest(CASE WHEN rt.candidate_side IN ('A', 'B')"
                " THEN ARRAY['A', 'B'] ELSE ARRAY[''] END) AS sd(side)"
                " LEFT JOIN LATERAL (SELECT count(*) AS n, bool_or(e.is_significant) AS sig"
                " FROM {} e WHERE e.rating_id = rt.id AND e.side = sd.side) AS sp ON TRUE"
                " WHERE (sd.side = ''"
                " OR (CASE sd.side WHEN 'A' THEN rt.source_a ELSE rt.source_b END) <> '') AND {}"
            ).format(_tables()["span"], shown)
        )
    return pgsql.SQL(
        "SELECT line FROM ({}) AS tidy ORDER BY case_order, reader_order, item"
    ).format(pgsql.SQL(" UNION ALL ").join(parts))


def spans_query(*, reader_study: ReaderStudy, spreadsheet_safe: bool = False) -> pgsql.Composable:
    """The error-span table (one row per marked passage, ``SPAN_COLUMNS``) as CSV records.

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
        ("is_significant", pgsql.SQL("CASE WHEN e.is_significant THEN 'true' ELSE 'false' END")),
        ("replacement_text", pgsql.SQL("e.replacement_text")),
    ]
    keys = list(labels)
    return (
        pgsql.SQL("SELECT {} AS line FROM {} e JOIN {} rep ON rep.id = e.report_id ").format(
            _csv_record(
                [
                    _csv_field(name, expr, spreadsheet_safe=spreadsheet_safe)
                    for name, expr in columns
                ]
            ),
            _tables()["span"],
            _tables()["report"],
        )
        + pgsql.SQL(
            "JOIN {} r ON r.id = e.rating_id JOIN {} asg ON asg.id = r.assignment_id"
            " JOIN {} c ON c.id = asg.case_id JOIN {} s ON s.id = c.imaging_study_id"
            " LEFT JOIN {} pin ON pin.id = " + _PINNED.format(report="e.report_id") + " "
        ).format(
            _tables()["rating"],
            _tables()["assignment"],
            _tables()["case"],
            _tables()["study"],
            _tables()["rendering"],
        )
        + _readers_join(reader_study)
        + pgsql.SQL(
            " LEFT JOIN unnest({}::text[], {}::text[]) AS cl(value, label) ON cl.value = e.category"
            " WHERE asg.reader_study_id = {} ORDER BY c.id, asg.reader_id, e.id"
        ).format(
            pgsql.Literal(keys),
            pgsql.Literal([labels[k] for k in keys]),
            pgsql.Literal(reader_study.pk),
        )
    )


def reports_query(*, reader_study: ReaderStudy, spreadsheet_safe: bool = False) -> pgsql.Composable:
    """The renderings the study's cases pinned (``REPORT_COLUMNS``), one row each, as CSV."""
    t = _tables()
    columns = [
        *_common(reader_study)[:2],
        ("report_version_id", pgsql.SQL("rep.public_id::text")),
        ("report_source", pgsql.SQL("rep.kind")),
        ("report_version", pgsql.SQL("rep.version")),
        ("renderer_version", pgsql.SQL("pin.renderer_version")),
        ("rendered_findings", pgsql.SQL("pin.findings")),
        ("rendered_impression", pgsql.SQL("pin.impression")),
        ("sha256", pgsql.SQL("pin.sha256")),
    ]
    record = _csv_record([_csv_field(n, e, spreadsheet_safe=spreadsheet_safe) for n, e in columns])
    return pgsql.SQL(
        "SELECT {record} AS line FROM {rendering} pin JOIN {report} rep ON rep.id = pin.report_id"
        " WHERE pin.id IN (SELECT first_rendering_id FROM {case} WHERE reader_study_id = {pk}"
        " UNION SELECT second_rendering_id FROM {case} WHERE reader_study_id = {pk})"
        " ORDER BY rep.public_id, pin.renderer_version"
    ).format(
        record=record,
        rendering=t["rendering"],
        report=t["report"],
        case=t["case"],
        pk=pgsql.Literal(reader_study.pk),
    )


def dataset_query(
    *, reader_study: ReaderStudy, dataset: str, spreadsheet_safe: bool = False
) -> tuple[pgsql.Composable, list[str]]:
    """The CSV-records query and columns of one exportable dataset ("ratings", "spans" or
    "reports"). ``spreadsheet_safe``: neutralise formulas in free-text cells (CSV files)."""
    safe = spreadsheet_safe
    if dataset == "ratings":
        return ratings_query(reader_study=reader_study, spreadsheet_safe=safe), rating_columns(
            reader_study
        )
    if dataset == "spans":
        return spans_query(reader_study=reader_study, spreadsheet_safe=safe), SPAN_COLUMNS
    if dataset == "reports":
        return reports_query(reader_study=reader_study, spreadsheet_safe=safe), REPORT_COLUMNS
    raise ValueError(f"unknown dataset {dataset!r}")
