"""The interfaces backends implement: report generation, and text chat (a metric's judge)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from inference.types import ChatOutput, ChatRequest, GenerationOutput, GenerationRequest


class Backend(Protocol):
    kind: str
    # True when generate() needs GenerationRequest.corpus (the archive's other studies).
    needs_corpus: bool

    def generate(self, request: GenerationRequest) -> GenerationOutput:
        """Write one report; raise InferenceError with a message a coordinator can act on."""
        ...


class ChatBackend(Protocol):
    kind: str

    def chat(self, request: ChatRequest) -> ChatOutput:
        """Answer a text-only conversation greedily unless the params sample; raise
        InferenceError (RetryableInferenceError for passing causes) with a message to act on."""
        ...

    def chat_many(self, requests: Sequence[ChatRequest]) -> list[ChatOutput]:
        """Answer several chats, in order: batched on a local model, concurrent to a server."""
        ...
