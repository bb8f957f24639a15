"""Checks of a local model directory before anything loads from it, so that a directory that
does not load fails the job with a message naming the file that is missing (models are never
downloaded at run time)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from inference.metrics.base import MetricError
from inference.types import InferenceError

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "tokenizer.model")


def require_directory(path: Path) -> None:
    """Refuse a path that is not a directory."""
    if not path.is_dir():
        raise MetricError(
            f"No model directory at {path} (models are never downloaded at run time).",
            code="metric_model_missing",
        )


def require_file(path: Path, names: Sequence[str], *, what: str) -> Path:
    """The first of ``names`` present in the directory; none: a message naming them all."""
    for name in names:
        if (path / name).is_file():
            return path / name
    if len(names) == 1:
        message = f"The model directory {path} has no {names[0]}."
    else:
        message = f"The model directory {path} has no {what}: expected one of {', '.join(names)}."
    raise MetricError(message, code="metric_model_missing_file")


def require_transformers_directory(path: Path, *, weights: Sequence[str] = WEIGHT_FILES) -> None:
    """A Hugging Face model directory: config.json, weights and a tokenizer."""
    require_directory(path)
    require_file(path, ("config.json",), what="config")
    require_file(path, weights, what="weights")
    require_file(path, TOKENIZER_FILES, what="tokenizer")


def device_resolve(preference: str) -> str:
    """``cpu``, ``cuda[:n]`` or ``auto`` (CUDA when there is one); CUDA asked for on a machine
    without it fails the job saying so."""
    from inference.backends.hf import resolve_device

    try:
        return resolve_device(preference)
    except InferenceError as exc:
        raise MetricError(str(exc), code="metric_device") from exc
