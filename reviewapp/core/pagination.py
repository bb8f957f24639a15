"""The API's pagination (settings.REST_FRAMEWORK names it; kept apart from rest_framework.views,
which reads that setting when it is imported)."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request


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
