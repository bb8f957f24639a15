"""A cheaper way in for WADO-RS frame requests, in front of Django's ASGI handler.

A viewer scrolling a CT asks for hundreds of frames a second. Each one answered by the full
stack (middleware, DRF, three queries, the sync-view thread) costs far more than reading the
frame. Here a frame request whose credentials and instance were checked moments ago is
answered straight from the event loop: one dictionary lookup and one ``pread`` per range.
The same goes for first-frames requests (several slices of a stack at once, see frames.py).

The credentials are checked on every request by ``credential_user``, Django's and DRF's own
code (one indexed query), so a revoked or expired token or an ended session stops at once.
What is cached, for ``FAST_PATH_TTL`` seconds: (user, study, series, instance) -> where its
frames lie, resolved by ``frame_sources_get``, the same selector (and permission rule) the
Django view uses; so a withdrawn assignment stops frames within the TTL. The bytes
themselves never change. Only successes are cached. Anything else (no or unknown
credentials, not visible, bad frame numbers, an Accept that needs transcoding, any error) is
passed to Django untouched, so there is one implementation of every refusal.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from django.db import close_old_connections

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]

FAST_PATH_TTL = 30.0
MAX_ENTRIES = 50_000
_SERIES_PATH = r"^/dicomweb/studies/([0-9.]{1,64})/series/([0-9.]{1,64})"
_FRAMES_PATH = re.compile(_SERIES_PATH + r"/instances/([0-9.]{1,64})/frames/([0-9]+(?:,[0-9]+)*)$")
_FIRST_FRAMES_PATH = re.compile(_SERIES_PATH + r"/first-frames$")


class _TTLCache:
    def __init__(self, ttl: float, max_entries: int) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.entries: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any) -> Any:
        entry = self.entries.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            self.entries.pop(key, None)
            return None
        return entry[1]

    def put(self, key: Any, value: Any) -> None:
        if len(self.entries) >= self.max_entries:
            self.entries.clear()  # crude, bounded, and only ever costs a re-check
        self.entries[key] = (time.monotonic() + self.ttl, value)


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


def _released(function: Any) -> Any:
    """Run ``function`` in an executor thread, then give its database connection back: these
    threads serve no request, so nothing else would return it to the pool (or close it)."""

    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(run, thread_sensitive=False)


def _sources_resolve(user: Any, study: str, series: str, sops: list[str]) -> dict[str, Any]:
    from reviewapp.imaging.dicomweb_selectors import frame_sources_get

    return frame_sources_get(user=user, study_uid=study, series_uid=series, sop_uids=sops)


def _first_frames_list(scope: Scope) -> list[str] | None:
    """The instance list of a first-frames query string, or None if it is anything else
    (Django then answers, with the error)."""
    from reviewapp.imaging.dicomweb import frames

    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if list(query) != ["instances"] or len(query["instances"]) != 1:
        return None
    try:
        return frames.instance_list_parse(query["instances"][0])
    except frames.InstanceListError:
        return None


class FramesFastPath:
    """ASGI wrapper: serve checked frame requests itself, hand everything else to ``app``."""

    def __init__(self, app: ASGIApp, *, ttl: float = FAST_PATH_TTL) -> None:
        self.app = app
        self.sources = _TTLCache(ttl, MAX_ENTRIES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope.get("method") == "GET"
            and await self._serve(scope, send)
        ):
            return
        await self.app(scope, receive, send)

    async def _serve(self, scope: Scope, send: Send) -> bool:
        """Answer a frames or first-frames request, or return False (Django then answers)."""
        path = scope.get("path", "")
        if (match := _FRAMES_PATH.match(path)) is not None:
            return await self._serve_frames(scope, send, match.groups())
        if (match := _FIRST_FRAMES_PATH.match(path)) is not None:
            return await self._serve_first_frames(scope, send, match.groups())
        return False

    async def _user(self, scope: Scope) -> Any:
        from reviewapp.accounts.authentication import credential_user

        authorization = _header(scope, b"authorization")
        cookie = _header(scope, b"cookie")
        if not authorization and not cookie:
            return None
        # Checked on every request, by Django's own code: never cached, so a revoked or
        # expired token or an ended session stops at once.
        return await _released(credential_user)(authorization=authorization, cookie=cookie)

    async def _sources(self, user: Any, study: str, series: str, sops: list[str]) -> list[Any]:
        """The frame source of each instance, from the cache or in one query for the rest;
        None in place of one that is not visible."""
        found = {sop: self.sources.get((user.pk, study, series, sop)) for sop in sops}
        unknown = [sop for sop, source in found.items() if source is None]
        if unknown:
            resolved = await _released(_sources_resolve)(user, study, series, unknown)
            for sop, source in resolved.items():
                self.sources.put((user.pk, study, series, sop), source)
                found[sop] = source
        return [found[sop] for sop in sops]

    async def _serve_frames(self, scope: Scope, send: Send, groups: tuple[str, ...]) -> bool:
        from reviewapp.imaging.dicomweb.frames import FramePart

        study, series, sop, frame_list = groups
        user = await self._user(scope)
        if user is None:
            return False
        (source,) = await self._sources(user, study, series, [sop])
        if source is None:
            return False
        numbers = [int(n) for n in frame_list.split(",")]
        if any(n < 1 or n > len(source.frame_ranges) for n in numbers):
            return False
        return await _answer(scope, send, [FramePart(source, number) for number in numbers])

    async def _serve_first_frames(self, scope: Scope, send: Send, groups: tuple[str, ...]) -> bool:
        from reviewapp.imaging.dicomweb.frames import FramePart, first_frame_location

        study, series = groups
        sops = _first_frames_list(scope)
        if sops is None:
            return False
        user = await self._user(scope)
        if user is None:
            return False
        sources = await self._sources(user, study, series, sops)
        if any(source is None or not source.frame_ranges for source in sources):
            return False
        path = scope["path"]
        parts = [
            FramePart(source, 1, first_frame_location(path, sop))
            for sop, source in zip(sops, sources, strict=True)
        ]
        return await _answer(scope, send, parts)


async def _answer(scope: Scope, send: Send, parts: list[Any]) -> bool:
    """Send the frames, or return False (Django then answers) if they cannot be served."""
    from reviewapp.imaging.dicomweb import frames, media
    from reviewapp.imaging.dicomweb.views import FRAME_CACHE_CONTROL

    try:
        payload, content_type = frames.frames_body(parts, accept=_header(scope, b"accept"))
    except (media.NotAcceptableError, OSError):
        return False
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", content_type.encode("latin-1")),
                (b"content-length", str(len(payload)).encode("latin-1")),
                (b"cache-control", FRAME_CACHE_CONTROL.encode("latin-1")),
                (b"x-content-type-options", b"nosniff"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
    return True
