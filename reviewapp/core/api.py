"""The single DRF exception handler: every interface renders domain errors the same way."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from reviewapp.core.errors import ApplicationError, ConflictError, RateLimitedError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        detail: Any = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        exc = exceptions.ValidationError(detail=detail)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, ApplicationError):
        code: int = status.HTTP_409_CONFLICT if isinstance(exc, ConflictError) else 400
        if isinstance(exc, RateLimitedError):
            code = status.HTTP_429_TOO_MANY_REQUESTS
        return Response({"detail": exc.message, "code": exc.code, **exc.extra}, status=code)
    return drf_exception_handler(exc, context)
