"""Django middleware of our own."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse


class QueryStringNulMiddleware:
    """Refuse a query string carrying a NUL character with 400 and a message.

    Search filters go into SQL as parameters, and PostgreSQL cannot hold NUL in text: psycopg
    raises on such a value, which would surface as a 500 from whichever filter met it first.
    Checked once here, for every page and API, rather than in each filter.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if any("\x00" in k or any("\x00" in v for v in vs) for k, vs in request.GET.lists()):
            return JsonResponse(
                {
                    "detail": "The query string contains a NUL character (%00); remove it.",
                    "code": "nul_in_query",
                },
                status=400,
            )
        return self.get_response(request)
