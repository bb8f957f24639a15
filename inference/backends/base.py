"""The interface every backend implements."""

from __future__ import annotations

from typing import Protocol

from inference.types import GenerationOutput, GenerationRequest


class Backend(Protocol):
    kind: str
    # True when generate() needs GenerationRequest.corpus (the archive's other studies).
    needs_corpus: bool

    def generate(self, request: GenerationRequest) -> GenerationOutput:
        """Write one report; raise InferenceError with a message a coordinator can act on."""
        ...
