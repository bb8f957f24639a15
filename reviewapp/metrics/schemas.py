"""JSON schemas of the metric documents stored in JSONFields, and their validators.

Each ``*_validate`` is the model field's validator and is called by the service that writes
the field (see reviewapp.core.json_schema).
"""

from __future__ import annotations

from typing import Any

from reviewapp.core.json_schema import FLAT_VALUE_SCHEMA, schema_checker

_NAME = {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"}

# MetricJob.metrics: which metrics a job runs, each with the parameters it is built with.
METRIC_SPECS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "maxItems": 20,
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "params"],
        "properties": {"name": _NAME, "params": {"type": "object", "maxProperties": 20}},
    },
}

# MetricResult.params: what the metric says it was built with (Metric.describe()["params"]):
# flat, short values, so the digest that keys a result is over a small, stable document.
METRIC_PARAMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "maxProperties": 20,
    "propertyNames": {"type": "string", "maxLength": 64},
    "additionalProperties": FLAT_VALUE_SCHEMA,
}

# MetricResult.values: the metric's numbers for one pair ({} when the pair was skipped).
METRIC_VALUES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "maxProperties": 20,
    "propertyNames": _NAME,
    "additionalProperties": {"type": "number"},
}

# MetricResult.detail: what a corpus summary needs beyond the values (BLEU's n-gram counts,
# the labeler's 14 labels per report); never report text.
_LABELS = {
    "type": "object",
    "maxProperties": 14,
    "additionalProperties": {"enum": [1, 0, -1, None]},
}
METRIC_DETAIL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "counts": {"type": "array", "maxItems": 16, "items": {"type": "integer", "minimum": 0}},
        "candidate_labels": _LABELS,
        "reference_labels": _LABELS,
    },
}

_specs_check = schema_checker(
    METRIC_SPECS_SCHEMA, field="MetricJob.metrics", code="invalid_metric_specs"
)
_params_check = schema_checker(
    METRIC_PARAMS_SCHEMA, field="MetricResult.params", code="invalid_metric_params"
)
_values_check = schema_checker(
    METRIC_VALUES_SCHEMA, field="MetricResult.values", code="invalid_metric_values"
)
_detail_check = schema_checker(
    METRIC_DETAIL_SCHEMA, field="MetricResult.detail", code="invalid_metric_detail"
)


def metric_specs_validate(value: Any) -> None:
    """Refuse a job's metric list that does not match METRIC_SPECS_SCHEMA."""
    _specs_check(value)


def metric_params_validate(value: Any) -> None:
    """Refuse result parameters that do not match METRIC_PARAMS_SCHEMA."""
    _params_check(value)


def metric_values_validate(value: Any) -> None:
    """Refuse result values that do not match METRIC_VALUES_SCHEMA."""
    _values_check(value)


def metric_detail_validate(value: Any) -> None:
    """Refuse a result detail that does not match METRIC_DETAIL_SCHEMA."""
    _detail_check(value)
