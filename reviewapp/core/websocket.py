"""Which pages may open our websockets: the site's own origin, scheme, host and port alike.

A browser sends the Origin of the page that opens a socket, and sockets are not covered by
the same-origin policy or CSRF tokens; the session cookie goes along whatever the page. So a
socket is accepted only from the origin the request itself names (its scheme, as the server
saw it or a trusted proxy said, and its Host, which must be one of ALLOWED_HOSTS), or from
one of CSRF_TRUSTED_ORIGINS, as Django's CSRF check judges a form post. Channels' own
AllowedHostsOriginValidator compares the host name only: another port on the same host
(another application) or plain http passed it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

Scope = MutableMapping[str, Any]
ASGIApp = Callable[..., Awaitable[None]]
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_key(origin: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or port is None:
        return None
    return parts.scheme, parts.hostname, port


def origin_allowed(scope: Scope) -> bool:
    """True when the socket's Origin is the site's own origin or a trusted one."""
    headers = dict(scope.get("headers", ()))
    origin = _origin_key(headers.get(b"origin", b"").decode("latin-1"))
    if origin is None:
        return False
    trusted = {_origin_key(o) for o in settings.CSRF_TRUSTED_ORIGINS}
    if origin in trusted:
        return True
    host = headers.get(b"host", b"").decode("latin-1").lower()
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    scheme = "https" if scope.get("scheme") == "wss" else "http"
    return origin == _origin_key(f"{scheme}://{host}")


class OriginValidator:
    """ASGI middleware for websockets: refuse a socket from any other origin."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if origin_allowed(scope):
            await self.app(scope, receive, send)
        else:
            await WebsocketDenier()(scope, receive, send)
