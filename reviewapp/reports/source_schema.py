"""The JSON schema of an imported source's free provenance fields (ReportSource.provenance).

Kept apart from models.py so that services can validate an upload's provenance with the same
rule before anything is stored.
"""

from __future__ import annotations

from typing import Any

import jsonschema
from django.core.exceptions import ValidationError

from reviewapp.core.json_schema import FLAT_VALUE_SCHEMA

PROVENANCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "maxProperties": 30,
    "propertyNames": {"type": "string", "minLength": 1, "maxLength": 64},
    # Flat on purpose: provenance is shown as a table of name/value pairs, and a nested blob
    # would hide whatever it holds from the coordinator who has to check it.
    "additionalProperties": FLAT_VALUE_SCHEMA,
}


def source_provenance_validate(value: Any) -> None:
    """Refuse provenance that does not match PROVENANCE_SCHEMA."""
    errors = sorted(
        jsonschema.Draft202012Validator(PROVENANCE_SCHEMA).iter_errors(value), key=lambda e: e.path
    )
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(root)"
        raise ValidationError(f"Provenance: {where}: {first.message}", code="invalid_provenance")
