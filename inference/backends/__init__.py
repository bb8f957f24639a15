"""Backends behind one interface, and the per-process cache that loads each model once."""

from __future__ import annotations

import threading
from typing import Any, cast

from inference.backends.base import Backend, ChatBackend

BACKEND_KINDS = ("retrieval", "transformers", "openai")
# The backends that also answer text-only chats (a metric's judge).
CHAT_BACKEND_KINDS = ("transformers", "openai")
_cache: dict[tuple[str, str, str], Backend] = {}
_lock = threading.Lock()


def backend_get(*, kind: str, location: str = "", model_name: str = "", **options: Any) -> Backend:
    """Return the backend for a model, building (loading) it at most once per process.

    Loading happens here, on first use inside the worker child, never at import: a GPU worker
    parent must not touch CUDA before it forks.
    """
    key = (kind, location, model_name)
    with _lock:
        backend = _cache.get(key)
        if backend is None:
            backend = _build(kind=kind, location=location, model_name=model_name, **options)
            _cache[key] = backend
        return backend


def chat_backend_get(
    *, kind: str, location: str, model_name: str = "", **options: Any
) -> ChatBackend:
    """The backend for a text-only model (a judge), from the same per-process cache."""
    if kind not in CHAT_BACKEND_KINDS:
        raise ValueError(f"Backend {kind!r} cannot chat; expected one of {CHAT_BACKEND_KINDS}.")
    backend = backend_get(kind=kind, location=location, model_name=model_name, **options)
    return cast(ChatBackend, backend)


def _build(*, kind: str, location: str, model_name: str, **options: Any) -> Backend:
    if kind == "retrieval":
        from inference.backends.retrieval import RetrievalBackend

        return RetrievalBackend()
    if kind == "transformers":
        from inference.backends.hf import TransformersBackend

        return TransformersBackend(location, **options)
    if kind == "openai":
        from inference.backends.openai_http import OpenAIBackend

        return OpenAIBackend(location, model_name=model_name, **options)
    raise ValueError(f"Unknown backend {kind!r}; expected one of {BACKEND_KINDS}.")


def backend_cache_clear() -> None:
    with _lock:
        _cache.clear()
