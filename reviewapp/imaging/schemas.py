"""JSON schemas of the imaging documents stored in JSONFields, and their validators.

Each ``*_validate`` is the model field's validator and is called by the service that writes
the field (see reviewapp.core.json_schema).
"""

from __future__ import annotations

from typing import Any

from reviewapp.core.json_schema import schema_checker

# Instance.frame_ranges: per frame, the [offset, length] byte ranges of the stored file that
# hold it (more than one when a frame spans fragments); [] only on rows made outside import.
FRAME_RANGES_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "array",
            "prefixItems": [
                {"type": "integer", "minimum": 0},
                {"type": "integer", "minimum": 0},
            ],
            "minItems": 2,
            "maxItems": 2,
        },
    },
}

# Instance.dicom_json: the DICOM JSON model (PS3.18 F.2) of the stored header, as pydicom's
# to_json_dict writes it: tag (eight upper-case hex digits) -> attribute; a sequence's items
# are datasets of the same shape. pydicom spells an ambiguous VR it could not resolve as
# "US or SS", so those are allowed.
DICOM_JSON_SCHEMA: dict[str, Any] = {
    "$ref": "#/$defs/dataset",
    "$defs": {
        "dataset": {
            "type": "object",
            "propertyNames": {"pattern": "^[0-9A-F]{8}$"},
            "additionalProperties": {"$ref": "#/$defs/attribute"},
        },
        "attribute": {
            "type": "object",
            "required": ["vr"],
            "additionalProperties": False,
            "properties": {
                "vr": {"type": "string", "pattern": "^[A-Z]{2}( or [A-Z]{2})*$"},
                "Value": {"type": "array"},
                "BulkDataURI": {"type": "string"},
                "InlineBinary": {"type": "string"},
            },
            "if": {"properties": {"vr": {"const": "SQ"}}},
            "then": {"properties": {"Value": {"items": {"$ref": "#/$defs/dataset"}}}},
        },
    },
}

_frame_ranges = schema_checker(
    FRAME_RANGES_SCHEMA, field="frame_ranges", code="invalid_frame_ranges"
)
_dicom_json = schema_checker(DICOM_JSON_SCHEMA, field="dicom_json", code="invalid_dicom_json")


def frame_ranges_validate(value: Any) -> None:
    """Refuse a frame index that does not match FRAME_RANGES_SCHEMA."""
    _frame_ranges(value)


def dicom_json_validate(value: Any) -> None:
    """Refuse a header that does not match DICOM_JSON_SCHEMA."""
    _dicom_json(value)
