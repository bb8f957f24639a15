"""CORS for DICOMweb, so a viewer served from another origin (OHIF) can use the archive.

Only the origins named in ``DICOMWEB_CORS_ALLOWED_ORIGINS`` (scheme, host and port, exactly)
are answered, and only under /dicomweb/. A preflight (``OPTIONS`` with
Access-Control-Request-Method) carries no credentials by definition, so it is answered here,
before authentication; the request that follows is authenticated as any other, by token or
by session (cookies need the origin to be same-site, and a STOW-RS by session also needs the
origin in ``CSRF_TRUSTED_ORIGINS``).
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

PREFIX = "/dicomweb/"
ALLOWED_METHODS = "GET, HEAD, POST, OPTIONS"
ALLOWED_HEADERS = (
    "Accept, Authorization, Content-Type, If-None-Match, X-CSRFToken, X-Requested-With"
)
# What a client script may read of an answer besides the simple headers.
EXPOSED_HEADERS = "Content-Length, Content-Location, ETag, Warning, WWW-Authenticate"
PREFLIGHT_MAX_AGE = "600"


def _allowed_origin(request: HttpRequest) -> str | None:
    origin = request.headers.get("Origin")
    if not origin or not request.path.startswith(PREFIX):
        return None
    return origin if origin in settings.DICOMWEB_CORS_ALLOWED_ORIGINS else None


class DicomwebCorsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        origin = _allowed_origin(request)
        is_preflight = request.method == "OPTIONS" and bool(
            request.headers.get("Access-Control-Request-Method")
        )
        if origin and is_preflight:
            response = HttpResponse(status=204)
            response["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
        else:
            response = self.get_response(request)
        if request.path.startswith(PREFIX):
            # Whether the answer carries the CORS headers depends on the Origin: caches must
            # not hand one origin's answer to another.
            response.headers.setdefault("Vary", "Origin")
            if "Origin" not in response["Vary"]:
                response["Vary"] = f"{response['Vary']}, Origin"
        if origin:
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Allow-Credentials"] = "true"
            response["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        return response
