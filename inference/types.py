"""Values passed between the caller (the Celery task) and a backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

StudyKind = Literal["CXR", "CT"]


class InferenceError(Exception):
    """Generation failed for a reason a coordinator can act on; ``str()`` is safe to show."""


class RetryableInferenceError(InferenceError):
    """Generation failed for a passing reason (server busy, timeout); another try may work."""


@dataclass(frozen=True)
class ImageRef:
    """One stored DICOM instance of a study, by path: pixels never travel through the broker."""

    sop_instance_uid: str
    path: Path
    series_instance_uid: str = ""
    modality: str = ""
    view_position: str = ""
    position: float | None = None


@dataclass(frozen=True)
class StudyInput:
    """The images of one study, in slice order for CT. ``kind`` picks the prompt template."""

    study_key: str
    kind: StudyKind
    images: tuple[ImageRef, ...]
    # Clinical context for the prompt's {indication}, {technique} and {comparison}, already
    # de-identified by the caller; absent fields render as empty text.
    context: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CorpusEntry:
    """Another archived study the retrieval baseline may answer with."""

    study_key: str
    kind: StudyKind
    descriptor: Any  # numpy float32 vector from inference.descriptor
    findings: str
    impression: str


@dataclass(frozen=True)
class GenerationRequest:
    study: StudyInput
    prompt_template: str
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    # Only the retrieval baseline reads this: the other studies it may answer with.
    corpus: tuple[CorpusEntry, ...] = ()


@dataclass
class GenerationOutput:
    findings: str
    impression: str
    # The reproducibility record (DESIGN section 7): JSON-serialisable, no pixel data and no
    # patient data beyond the de-identified UIDs of the inputs.
    record: dict[str, Any]


@dataclass(frozen=True)
class ChatRequest:
    """Text in, text out (a judge's prompt): ``messages`` are ``{"role", "content"}`` dicts."""

    messages: tuple[dict[str, str], ...]
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0


@dataclass
class ChatOutput:
    text: str
    # What pins the answer (model, weights or served model id, effective generation
    # parameters, tokens); JSON-serialisable, never the prompt's text.
    record: dict[str, Any]
