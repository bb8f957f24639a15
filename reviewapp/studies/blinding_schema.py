"""The JSON schema of a stored blinding check (ReaderStudy.blinding_tells).

Kept apart from reviewapp.studies.blinding so that models.py can validate the field without
importing the check, which imports the models.
"""

from __future__ import annotations

from typing import Any

import jsonschema
from django.core.exceptions import ValidationError

TELL_KINDS = (
    "name_like",
    "date_like",
    "signature_like",
    "section_missing",
    "list_style",
    "upper_case",
    "length_ratio",
)
TELLS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["case", "kind", "report", "message"],
        "properties": {
            "case": {"type": "string", "format": "uuid", "maxLength": 36},
            "kind": {"enum": list(TELL_KINDS)},
            # Which of the case's reports: its first, its second, or the pair (a difference).
            "report": {"enum": ["first", "second", "pair"]},
            "message": {"type": "string", "maxLength": 300},
            "excerpt": {"type": "string", "maxLength": 80},
        },
    },
}


def blinding_tells_validate(value: Any) -> None:
    """Refuse a stored check that does not match TELLS_SCHEMA."""
    errors = sorted(
        jsonschema.Draft202012Validator(TELLS_SCHEMA).iter_errors(value), key=lambda e: e.path
    )
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(root)"
        raise ValidationError(f"Blinding tells: {where}: {first.message}", code="invalid_tells")
