"""The single DRF exception handler (every interface renders domain errors the same way), and
the API's pagination and JSON parser with their bounds."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, parsers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from reviewapp.core.errors import ApplicationError, ConflictError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        detail: Any = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        exc = exceptions.ValidationError(detail=detail)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, ApplicationError):
        code = status.HTTP_409_CONFLICT if isinstance(exc, ConflictError) else 400
        return Response({"detail": exc.message, "code": exc.code, **exc.extra}, status=code)
    return drf_exception_handler(exc, context)


class Pagination(LimitOffsetPagination):
    """Limit/offset pages with bounds: a ``limit`` or ``offset`` past them is a 400 that says
    so (DRF would quietly cap the first, and the database overflow on the second)."""

    max_limit = 1000
    max_offset = 2**31 - 1

    def get_limit(self, request: Request) -> int | None:
        raw = request.query_params.get(self.limit_query_param)
        if raw is None:
            return self.default_limit
        return _bounded(self.limit_query_param, raw, low=1, high=self.max_limit)

    def get_offset(self, request: Request) -> int:
        raw = request.query_params.get(self.offset_query_param)
        if raw is None:
            return 0
        return _bounded(self.offset_query_param, raw, low=0, high=self.max_offset)


def _bounded(name: str, raw: str, *, low: int, high: int) -> int:
    if not raw.isdigit() or len(raw) > 12 or not low <= int(raw) <= high:
        raise exceptions.ValidationError(
            {name: [f"Must be a whole number from {low} to {high}."]}, code="invalid_paging"
        )
    return int(raw)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing with 400 what would otherwise fail later as a 500: nesting
    deeper than MAX_DEPTH (Python's parser and every recursive walk of the data overflow
    the stack) and NUL characters, which PostgreSQL cannot store in text or jsonb."""

    MAX_DEPTH = 64

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(_TOO_DEEP.format(self.MAX_DEPTH)) from None
        _json_check(data, self.MAX_DEPTH)
        return data


_TOO_DEEP = "JSON parse error - nested deeper than {} levels."


def _json_check(data: Any, max_depth: int) -> None:
    # Iterative: a recursive walk would overflow on the very input it guards against.
    pending: list[tuple[Any, int]] = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise exceptions.ParseError(
                    "JSON parse error - text may not contain NUL (\\u0000)."
                )
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > max_depth:
            raise exceptions.ParseError(_TOO_DEEP.format(max_depth))
        items = list(value.items()) if isinstance(value, dict) else [(None, v) for v in value]
        for key, item in items:
            if isinstance(key, str) and "\x00" in key:
                raise exceptions.ParseError(
                    "JSON parse error - text may not contain NUL (\\u0000)."
                )
            pending.append((item, depth + 1))
