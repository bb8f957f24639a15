"""JSON schemas of the generation documents stored in JSONFields, and their validators.

Each ``*_validate`` is the model field's validator and is called by the service that writes
the field (see reviewapp.core.json_schema).
"""

from __future__ import annotations

from typing import Any

from inference.backends import BACKEND_KINDS
from reviewapp.core.json_schema import schema_checker

MAX_THROTTLE_SECONDS = 300
_NUMBER_OR_NULL = {"type": ["number", "null"]}

# ModelConfig.parameters: generation and preprocessing options handed to the backend (see
# docs/generation.md); throttle_seconds is the pipeline's own (a pause before each run).
PARAMETERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "max_new_tokens": {"type": "integer", "minimum": 1},
        "do_sample": {"type": "boolean"},
        "temperature": {"type": "number", "minimum": 0},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "top_k": {"type": "integer", "minimum": 0},
        "num_beams": {"type": "integer", "minimum": 1},
        "repetition_penalty": {"type": "number", "exclusiveMinimum": 0},
        "no_repeat_ngram_size": {"type": "integer", "minimum": 0},
        "seed": {"type": "integer"},
        "system_prompt": {"type": "string"},
        "ct_slices": {"type": "integer", "minimum": 1},
        # [center, width] in Hounsfield units, one to three windows (the image's channels).
        "ct_windows": {
            "type": "array",
            "minItems": 1,
            "maxItems": 3,
            "items": {
                "type": "array",
                "prefixItems": [{"type": "number"}, {"type": "number", "exclusiveMinimum": 0}],
                "minItems": 2,
                "maxItems": 2,
            },
        },
        "max_side": {"type": "integer", "minimum": 1},
        "max_images": {"type": "integer", "minimum": 1},
        "device": {"type": "string"},
        "timeout_s": {"type": "number", "exclusiveMinimum": 0},
        "retries": {"type": "integer", "minimum": 0},
        "backoff_s": {"type": "number", "minimum": 0},
        "throttle_seconds": {"type": "number", "minimum": 0, "maximum": MAX_THROTTLE_SECONDS},
    },
}
KNOWN_PARAMETERS = frozenset(PARAMETERS_SCHEMA["properties"])

# GenerationRun.provenance: the reproducibility record of a succeeded run ({} before then):
# the backend's record (inference.types.GenerationOutput.record; each backend adds its own
# keys, e.g. the retrieval baseline's "retrieved") plus what the pipeline adds: the model
# configuration as it was, the attempt, the worker and the pipeline's timings.
PROVENANCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "if": {"minProperties": 1},
    "then": {
        "required": [
            "backend",
            "is_baseline",
            "model",
            "seed",
            "inputs",
            "software",
            "device",
            "timings_s",
            "model_config",
            "attempt",
            "worker",
        ],
        "properties": {
            "backend": {"enum": list(BACKEND_KINDS)},
            "is_baseline": {"type": "boolean"},
            "model": {"type": "object"},
            "prompt": {"type": ["string", "null"]},
            "prompt_template": {"type": "string"},
            "generation_params": {"type": "object"},
            "requested_params": {"type": "object"},
            "seed": {"type": "integer"},
            "inputs": {
                "type": "object",
                "required": ["study", "sop_instance_uids", "preprocessing"],
                "properties": {
                    "study": {"type": "string"},
                    "sop_instance_uids": {"type": "array", "items": {"type": "string"}},
                    "preprocessing": {"type": "object"},
                },
            },
            "software": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
            "device": {
                "type": "object",
                "required": ["device"],
                "properties": {"device": {"type": "string"}},
            },
            "timings_s": {"type": "object", "additionalProperties": {"type": "number"}},
            "tokens": {
                "type": ["object", "null"],
                "properties": {"input": _NUMBER_OR_NULL, "output": _NUMBER_OR_NULL},
            },
            "model_config": {
                "type": "object",
                "required": ["name", "public_id", "backend", "parameters"],
                "properties": {
                    "name": {"type": "string"},
                    "public_id": {"type": "string"},
                    "backend": {"enum": list(BACKEND_KINDS)},
                    "parameters": {"type": "object"},
                },
            },
            "attempt": {"type": "integer", "minimum": 1},
            "worker": {"type": "string"},
        },
    },
}

_parameters = schema_checker(PARAMETERS_SCHEMA, field="parameters", code="invalid_parameters")
_provenance = schema_checker(PROVENANCE_SCHEMA, field="provenance", code="invalid_provenance")


def parameters_validate(value: Any) -> None:
    """Refuse model parameters that do not match PARAMETERS_SCHEMA."""
    _parameters(value)


def provenance_validate(value: Any) -> None:
    """Refuse a reproducibility record that does not match PROVENANCE_SCHEMA."""
    _provenance(value)
