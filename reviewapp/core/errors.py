"""The one application error that services raise besides ValidationError and PermissionDenied."""

from __future__ import annotations


class ApplicationError(Exception):
    """A domain rule refused the request; ``message`` is safe to show to the user, ``code``
    (required) is what a client branches on."""

    def __init__(self, message: str, *, code: str, extra: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.extra = extra or {}


class ConflictError(ApplicationError):
    """The request raced another change (stale version, duplicate key with other content)."""


class RateLimitedError(ApplicationError):
    """The user did this too often in too short a time; try again later."""
