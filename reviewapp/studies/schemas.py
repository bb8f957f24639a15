"""JSON schemas of the reader-study documents stored in JSONFields, and their validators.

Each ``*_validate`` is the model field's validator and is called by the service that writes
the field (see reviewapp.core.json_schema). The blinding check's schema lives in
blinding_schema.py; the protocol's in protocols/schema.json, whose full check (with the rules a
schema cannot say) is protocols.protocol_validate.
"""

from __future__ import annotations

from typing import Any

from reviewapp.core.json_schema import schema_checker
from reviewapp.studies.protocols import MAX_SPANS, MAX_TEXT, OPTION_CODES, protocol_schema

# A form item: a question id, with ".A" / ".B" for a per-report question of a pairwise case.
ITEM_ID = r"^[a-z][a-z0-9_]{0,47}(\.[AB])?$"
QUESTION_ID = r"^[a-z][a-z0-9_]{0,47}$"
OPTION_VALUE = r"^[a-z0-9_]{1,48}$"
SIDE = {"enum": ["A", "B", ""]}
SOURCE = {"enum": ["original", "ai", "edited"]}  # reports.models.Report.Kind

# ReaderStudy.sample_spec: what cases_add_sample drew ({} until a sample is drawn).
SAMPLE_SPEC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "per_stratum": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"maxLength": 64},
            "additionalProperties": {"type": "integer", "minimum": 1},
        },
        "pool_size": {"type": "integer", "minimum": 0},
    },
    "if": {"minProperties": 1},
    "then": {"required": ["per_stratum", "pool_size"]},
}

# Assignment.draft: the reading page's autosave, as the reader's form holds it (letter codes
# and texts by item id, error spans as marked); {} when there is none.
DRAFT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "answers": {
            "type": "object",
            "propertyNames": {"pattern": ITEM_ID},
            "additionalProperties": {"type": "string", "maxLength": MAX_TEXT},
        },
        "spans": {
            "type": "array",
            "maxItems": MAX_SPANS,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["side", "section", "start", "end"],
                "properties": {
                    "side": SIDE,
                    "section": {"enum": ["findings", "impression"]},
                    "start": {"type": "integer", "minimum": 0},
                    "end": {"type": "integer", "minimum": 0},
                    # Empty until the reader picks a reason.
                    "category": {"type": "string", "maxLength": 48},
                    "significant": {"type": "boolean"},
                    "replacement": {"type": "string", "maxLength": MAX_TEXT},
                },
            },
        },
    },
}

# Rating.answers: protocols.answers_resolve's document, {item id: answer}. An answer names its
# question and the side it was asked of, and, for a side, the source shown there (so analysis
# needs no re-derivation); then either the reader's text or the chosen option as the reader
# saw it (letter code and label) with its stored value.
_ANSWER_COMMON: dict[str, Any] = {
    "question": {"type": "string", "pattern": QUESTION_ID},
    "side": SIDE,
    "source": SOURCE,
}
ANSWERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "propertyNames": {"pattern": ITEM_ID},
    "additionalProperties": {"$ref": "#/$defs/answer"},
    "$defs": {
        "answer": {
            "type": "object",
            "required": ["question", "side"],
            "allOf": [
                {
                    "if": {"required": ["text"]},
                    "then": {"$ref": "#/$defs/text_answer"},
                    "else": {"$ref": "#/$defs/choice_answer"},
                },
                {
                    "if": {"properties": {"side": {"const": ""}}},
                    "then": {"not": {"required": ["source"]}},
                    "else": {"required": ["source"]},
                },
            ],
        },
        "text_answer": {
            "additionalProperties": False,
            "properties": {
                **_ANSWER_COMMON,
                "text": {"type": "string", "maxLength": MAX_TEXT},
            },
        },
        "choice_answer": {
            "additionalProperties": False,
            "required": ["code", "value", "label"],
            "properties": {
                **_ANSWER_COMMON,
                "code": {"enum": list(OPTION_CODES)},
                "value": {"type": "string", "pattern": OPTION_VALUE},
                "label": {"type": "string", "minLength": 1},
            },
        },
    },
}

_sample_spec = schema_checker(SAMPLE_SPEC_SCHEMA, field="sample_spec", code="invalid_sample_spec")
_draft = schema_checker(DRAFT_SCHEMA, field="draft", code="invalid_draft")
_answers = schema_checker(ANSWERS_SCHEMA, field="answers", code="invalid_answers")
_protocol = schema_checker(protocol_schema(), field="protocol", code="invalid_protocol")


def sample_spec_validate(value: Any) -> None:
    """Refuse a sample record that does not match SAMPLE_SPEC_SCHEMA."""
    _sample_spec(value)


def draft_validate(value: Any) -> None:
    """Refuse a draft that does not match DRAFT_SCHEMA."""
    _draft(value)


def answers_validate(value: Any) -> None:
    """Refuse stored answers that do not match ANSWERS_SCHEMA."""
    _answers(value)


def protocol_document_validate(value: Any) -> None:
    """Refuse a protocol that does not match protocols/schema.json.

    The schema only: the rules beyond it (protocols.protocol_validate) compare a protocol with
    today's built-in templates, which a study's frozen copy may legitimately predate.
    """
    _protocol(value)
