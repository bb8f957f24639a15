"""Turning model text into the two sections readers are shown, and rendering prompts."""

from __future__ import annotations

import re
import string
from typing import Any

from inference.types import InferenceError

PROMPT_FIELDS = {"modality", "views", "num_images", "indication", "technique", "comparison"}
_SECTION = re.compile(r"^\s*(findings|impression|conclusion)\s*:\s*", re.IGNORECASE | re.MULTILINE)


def prompt_fields(template: str) -> set[str]:
    """The ``{field}`` names a template uses; raises ValueError on broken braces."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def render_prompt(template: str, values: dict[str, Any]) -> str:
    unknown = prompt_fields(template) - PROMPT_FIELDS
    if unknown:
        raise InferenceError(
            f"The prompt template uses unknown fields {sorted(unknown)}; "
            f"allowed: {sorted(PROMPT_FIELDS)}."
        )
    return template.format(**{k: values.get(k, "") for k in PROMPT_FIELDS})


def split_sections(text: str) -> tuple[str, str]:
    """Split generated text into (findings, impression) at FINDINGS:/IMPRESSION: headers."""
    text = text.strip()
    parts = _SECTION.split(text)
    if len(parts) == 1:
        return text, ""
    findings: list[str] = [parts[0].strip()]
    impression: list[str] = []
    for header, body in zip(parts[1::2], parts[2::2], strict=True):
        (findings if header.lower() == "findings" else impression).append(body.strip())
    return "\n".join(p for p in findings if p), "\n".join(p for p in impression if p)


def require_text(findings: str, impression: str) -> None:
    if not findings.strip() and not impression.strip():
        raise InferenceError("The model returned an empty report.")
