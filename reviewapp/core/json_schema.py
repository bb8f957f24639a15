"""JSON Schema checks for the documents stored in JSONFields.

Every JSONField has a schema in its app's ``schemas.py`` and one module-level validator built
from it with :func:`schema_checker`. The validator is the model field's (admin, model forms,
``full_clean``) and the service that writes the field calls it too, since services save with
``save()``, which runs no field validators.

Schemas are compiled once, at import, for two engines. jsonschema-rs (Rust) decides whether a
document is valid: the reader's draft save and rating submit each run one check, and the pure
Python jsonschema took hundreds of microseconds for a rating's answers where jsonschema-rs
takes a few. jsonschema, the reference implementation, describes what is wrong once a document
is refused (rare), in its structured errors, from which the messages are built.

Messages name the field and the place in the document, never the offending value: documents
hold readers' free text and DICOM headers, which must not reach logs or other users.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jsonschema_rs
from django.core.exceptions import ValidationError
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError

MAX_PROBLEMS = 5

# A value of a flat name/value document (provenance fields, a metric's parameters): short text,
# a number, a boolean or null, never a nested object that would hide what it holds.
FLAT_VALUE_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "maxLength": 500},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
    ]
}


def _where(error: SchemaError) -> str:
    return "/".join(str(p) for p in error.absolute_path) or "(document)"


def _describe(error: SchemaError) -> str:
    """What is wrong, in the schema's terms only (see the module docstring)."""
    rule, expected = error.validator, error.validator_value
    if rule in ("required", "additionalProperties", "dependentRequired"):
        return error.message[:200]  # names properties, which the schema or a key spells
    words = {
        "type": "must be of type {}",
        "enum": "must be one of {}",
        "const": "must be {}",
        "pattern": "must match {}",
        "minimum": "must be at least {}",
        "maximum": "must be at most {}",
        "exclusiveMinimum": "must be more than {}",
        "exclusiveMaximum": "must be less than {}",
        "minLength": "must have at least {} characters",
        "maxLength": "must have at most {} characters",
        "minItems": "must have at least {} items",
        "maxItems": "must have at most {} items",
        "minProperties": "must have at least {} properties",
        "maxProperties": "must have at most {} properties",
        "not": "must not match {}",
    }
    if rule in words:
        return words[rule].format(expected)
    return f"does not satisfy the schema's {rule!r} rule"


def schema_problems(validator: Draft202012Validator, value: Any) -> list[str]:
    """Return ``place: what is wrong`` for the first few problems of ``value``, or []."""
    errors = sorted(validator.iter_errors(value), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{_where(error)}: {_describe(error)}" for error in errors[:MAX_PROBLEMS]]


def schema_checker(schema: dict[str, Any], *, field: str, code: str) -> Callable[[Any], None]:
    """Return a check of ``schema`` that raises ValidationError(code) naming ``field``.

    Call it from a module-level function and give that to the field: migrations refer to
    validators by import path (a closure has none), so a schema change needs no migration.
    """
    Draft202012Validator.check_schema(schema)
    describer = Draft202012Validator(schema)
    fast = jsonschema_rs.Draft202012Validator(schema)

    def check(value: Any) -> None:
        try:
            if fast.is_valid(value):
                return
        except ValueError:
            pass  # a type jsonschema-rs cannot convert (an int subclass, say): see below
        # Refused, or not understood: the reference implementation has the last word.
        problems = schema_problems(describer, value)
        if problems:
            raise ValidationError(
                f"{field} does not match its schema: " + "; ".join(problems), code=code
            )

    return check
