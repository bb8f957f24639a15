"""The stored answers of a rating, as analysis reads them: one schema, one place.

``Rating.answers`` is written by ``studies.protocols.answers_resolve`` and is an object of
item id -> stored answer. An item id is the question id, or ``<question>.<side>`` for a
per-report question asked once for each report shown (side "A" or "B"). A stored answer is an
object (``ANSWER_SCHEMA``):

- ``question``: the protocol question id (older rows may lack it: the item id's part before
  the first ".").
- ``side``: "A", "B" or "" (a comparative or single-report question).
- ``source``: the report kind on that side, recorded with the answer (the unblinding key);
  only per-report items carry it.
- ``value``: the protocol's option value (what outcomes are defined on); ``code``: the letter
  the reader chose; ``label``: the option's text as the reader saw it.
- ``text``: the reader's words, for free-text questions (then no value, code or label).

Error spans are not answers: they are rows of their own (``ErrorSpan``), counted per report in
the ratings table and listed one per passage in the spans table.

``answer_columns`` turns this schema into the ratings table's per-answer columns, as SQL over
one ``jsonb_each`` row (``ans.key``: item id, ``ans.value``: stored answer), and
``answer_value_at`` reads one item's value (a follow-up question's condition); the exports and
the analysis frame read answers through these and nowhere else, so a change to the stored
shape is made here once.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql as pgsql

ANSWER_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Stored answers of one rating",
    "type": "object",
    "propertyNames": {"pattern": r"^[A-Za-z0-9_\-]+(\.[AB])?$"},
    "additionalProperties": {
        "type": "object",
        "properties": {
            "question": {"type": "string"},
            "side": {"enum": ["A", "B", ""]},
            "source": {"type": "string"},
            "value": {"type": "string"},
            "code": {"type": "string"},
            "label": {"type": "string"},
            "text": {"type": "string"},
        },
        "oneOf": [{"required": ["value"]}, {"required": ["text"]}],
    },
}

# Per-answer columns of the ratings table, in table order; outcome columns follow them.
ANSWER_COLUMNS = [
    "question",
    "item",
    "side",
    "source",
    "answer_value",
    "answer_code",
    "answer_label",
    "answer_text",
]


def answer_question() -> pgsql.Composable:
    """The question id of the answer ``ans`` (its own field, else the item id's stem)."""
    return pgsql.SQL("COALESCE(ans.value->>'question', split_part(ans.key, '.', 1))")


def answer_value_at(answers: pgsql.Composable, *items: pgsql.Composable) -> pgsql.Composable:
    """The stored ``value`` of the first of ``items`` (item ids) present in ``answers``."""
    found = pgsql.SQL(", ").join(pgsql.SQL("{} -> ({})").format(answers, i) for i in items)
    return pgsql.SQL("COALESCE({}) ->> 'value'").format(found)


def answer_columns(
    *, per_report: list[str], source_a: pgsql.Composable, source_b: pgsql.Composable
) -> dict[str, pgsql.Composable]:
    """SQL for each of ``ANSWER_COLUMNS`` of the answer ``ans`` (question id as ``q.qid``).

    ``per_report``: the protocol's per-report question ids, whose rows name the report they are
    about (``source``), falling back to the rating's key for rows stored before answers
    carried their source. Absent fields are "" so a present answer has no NULL text.
    """
    value = pgsql.SQL("COALESCE(ans.value->>{}, '')")
    return {
        "question": pgsql.SQL("q.qid"),
        "item": pgsql.SQL("ans.key"),
        "side": value.format(pgsql.Literal("side")),
        "source": pgsql.SQL(
            "CASE WHEN q.qid = ANY({}::text[]) THEN COALESCE(NULLIF(ans.value->>'source', ''),"
            " CASE WHEN ans.value->>'side' = 'B' THEN {} ELSE {} END) ELSE '' END"
        ).format(pgsql.Literal(per_report), source_b, source_a),
        "answer_value": value.format(pgsql.Literal("value")),
        "answer_code": value.format(pgsql.Literal("code")),
        "answer_label": value.format(pgsql.Literal("label")),
        "answer_text": value.format(pgsql.Literal("text")),
    }
