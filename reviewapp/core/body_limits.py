"""Refuse request bodies over their route's limit before reading them (ASGI, in front of Django).

Django reads a body only when a view, a parser or the CSRF check asks for it, and then spools
uploads to temporary files; a check in a view comes after whatever read the body first. So the
limit is judged here, from the headers, before a byte of the body is read:

- a Content-Length over the limit gets 413 at once, and the connection is closed unread;
- a chunked body (no Content-Length) is counted as it arrives and cut off with 413 at the
  limit; one within its limit is handed on with its length, as WSGI needs one;
- anonymous requests may send RADREVIEW_ANONYMOUS_BODY_BYTES; a request whose credentials
  are valid (``credential_user``, Django's own check) its route's limit from
  settings.RADREVIEW_BODY_LIMITS, else RADREVIEW_MAX_BODY_BYTES. Credentials are looked up
  only for a body bigger than the anonymous bound, so ordinary requests pay nothing here.

Header names spelt with underscores are dropped here too (as gunicorn and nginx do): WSGI
spells ``X-Forwarded-For`` and ``X_Forwarded_For`` alike, and the second must not pass for the
first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from functools import cache
from tempfile import SpooledTemporaryFile
from typing import IO, Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_READ_SIZE = 64 * 1024


@cache
def _routes() -> list[tuple[re.Pattern[str], int]]:
    return [(re.compile(pattern), int(limit)) for pattern, limit in settings.RADREVIEW_BODY_LIMITS]


def route_limit(path: str) -> int:
    """The most a request with valid credentials may send to ``path``."""
    for pattern, limit in _routes():
        if pattern.match(path):
            return limit
    return int(settings.RADREVIEW_MAX_BODY_BYTES)


def _user_exists(authorization: str | None, cookie: str | None) -> bool:
    from reviewapp.accounts.authentication import credential_user

    try:
        return credential_user(authorization=authorization, cookie=cookie) is not None
    finally:
        close_old_connections()  # this thread serves no request: give the connection back


class BodyLimitMiddleware:
    """ASGI middleware: enforce the body limits above, then call ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = [(n, v) for n, v in scope.get("headers", ()) if b"_" not in n]
        scope = {**scope, "headers": headers}
        found = dict(headers)  # last one wins; duplicates of these two are refused below
        length = _content_length(headers)
        chunked = b"transfer-encoding" in found
        if length is None and not chunked:
            await self.app(scope, receive, send)  # no body (HTTP/1.1 framing)
            return
        if length == -1:
            await _refuse(send, scope, 400, "bad_content_length", "Malformed Content-Length.")
            return
        limit = await self._limit(scope, found, length)
        if length is not None:
            if length > limit:
                await _too_large(send, scope, limit)
                return
            await self.app(scope, receive, send)  # the server holds the body to its length
            return
        body = await _chunked_read(receive, limit)
        if body is None:
            await _too_large(send, scope, limit)
            return
        if body is _GONE:
            return  # the client went away mid-body: nobody to answer
        try:
            size = body.seek(0, 2)
            body.seek(0)
            scope["headers"] = [
                *(h for h in headers if h[0] != b"transfer-encoding"),
                (b"content-length", str(size).encode()),
            ]
            await self.app(scope, _replay(body, receive), send)
        finally:
            body.close()

    async def _limit(self, scope: Scope, found: dict[bytes, bytes], length: int | None) -> int:
        anonymous = int(settings.RADREVIEW_ANONYMOUS_BODY_BYTES)
        if length is not None and length <= anonymous:
            return anonymous
        limit = route_limit(scope.get("path", ""))
        if limit <= anonymous:
            return limit
        authorization = found.get(b"authorization", b"").decode("latin-1") or None
        cookie = found.get(b"cookie", b"").decode("latin-1") or None
        if not authorization and not cookie:
            return anonymous
        known = await sync_to_async(_user_exists, thread_sensitive=False)(authorization, cookie)
        return limit if known else anonymous


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The declared length; None without one, -1 when it is not one number."""
    values = {v.strip() for n, v in headers if n == b"content-length"}
    if not values:
        return None
    if len(values) != 1 or not next(iter(values)).isdigit():
        return -1
    return int(next(iter(values)))


_GONE: Any = object()


async def _chunked_read(receive: Receive, limit: int) -> IO[bytes] | None:
    """The whole body if it fits the limit; None as soon as it does not; _GONE if the client
    left. Kept in memory up to FILE_UPLOAD_MAX_MEMORY_SIZE, as Django's ASGI handler does."""
    body: IO[bytes] = SpooledTemporaryFile(  # noqa: SIM115 (closed by the caller)
        max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, mode="w+b"
    )
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            body.close()
            return _GONE
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            body.close()
            return None
        body.write(chunk)
        if not message.get("more_body", False):
            return body


def _replay(body: IO[bytes], receive: Receive) -> Receive:
    size = body.seek(0, 2)
    body.seek(0)
    done = False

    async def replayed() -> Message:
        nonlocal done
        if done:
            return await receive()  # after the body: the disconnect, whenever it comes
        chunk = body.read(_READ_SIZE)
        done = body.tell() >= size
        return {"type": "http.request", "body": chunk, "more_body": not done}

    return replayed


async def _too_large(send: Send, scope: Scope, limit: int) -> None:
    await _refuse(
        send,
        scope,
        413,
        "body_too_large",
        f"This request body is too large: at most {_size_text(limit)} may be sent here"
        + (" without logging in." if limit == settings.RADREVIEW_ANONYMOUS_BODY_BYTES else ".")
        + " Send less at a time, or ask an administrator to import large data on the server.",
    )


async def _refuse(send: Send, scope: Scope, status: int, code: str, message: str) -> None:
    accept = dict(scope.get("headers", ())).get(b"accept", b"")
    if b"text/html" in accept:
        content_type = b"text/html; charset=utf-8"
        body = f"<!doctype html><title>{status}</title><p>{message}</p>".encode()
    else:
        content_type = b"application/json"
        body = json.dumps({"detail": message, "code": code}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                # The unread body stays unread: the connection cannot be reused after it.
                (b"connection", b"close"),
                (b"x-content-type-options", b"nosniff"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _size_text(size: int) -> str:
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}".replace(".0 ", " ")
    return f"{size} bytes"
