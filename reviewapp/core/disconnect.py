"""Stop a streamed response when its client goes away.

a2wsgi runs each request's WSGI iteration in a thread and hands the chunks to the server;
uvicorn drops the chunks of a closed connection without a word, so a streamed export (a
server-side cursor over every rating) kept its thread and its database connection busy to
the end for a tab closed long before. Two halves, one per side of a2wsgi:

- ``DisconnectWatch`` (ASGI) listens for ``http.disconnect`` once a streamed response (one
  without Content-Length) has begun, and marks the request's ``threading.Event``;
- ``StopWhenClientGone`` (WSGI) wraps such a response's iterable, and stops iterating at the
  next chunk once the event is set, closing the response (Django closes the generator, and
  with it the cursor, and gives the connection back).

The event travels in a context variable: a2wsgi runs the WSGI call in a copy of the calling
task's context. Responses with a length (pages, frames, files) are not watched: they end on
their own, and a task per request would cost every one of them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any

from reviewapp.core.body_limits import Message, Receive, Scope, Send

# Loose on purpose: a2wsgi types its ASGI signature with its own TypedDicts.
ASGIApp = Callable[..., Awaitable[None]]

_client_gone: ContextVar[threading.Event | None] = ContextVar("client_gone", default=None)


def _has_length(headers: Iterable[tuple[Any, Any]]) -> bool:
    for name, _ in headers:
        key = name.lower() if isinstance(name, str) else name.decode("latin1").lower()
        if key == "content-length":
            return True
    return False


class DisconnectWatch:
    """ASGI middleware in front of a2wsgi: see the module's docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        gone = threading.Event()
        token = _client_gone.set(gone)
        watcher: asyncio.Task[None] | None = None

        async def watch() -> None:
            # Started once the response has begun: by then the view has read whatever of the
            # body it wanted, so nothing else is waiting on receive().
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        async def send_watched(message: Message) -> None:
            nonlocal watcher
            await send(message)
            if (
                message["type"] == "http.response.start"
                and not _has_length(message.get("headers", ()))
                and watcher is None
            ):
                watcher = asyncio.get_running_loop().create_task(watch())

        try:
            await self.app(scope, receive, send_watched)
        finally:
            _client_gone.reset(token)
            if watcher is not None:
                watcher.cancel()


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class StopWhenClientGone:
    """WSGI middleware around Django's handler: see the module's docstring."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        gone = _client_gone.get()
        streamed = False

        def start(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            nonlocal streamed
            streamed = not _has_length(headers)
            return start_response(status, headers, *args)

        response = self.app(environ, start)
        if gone is None or not streamed:
            return response
        return _until_gone(response, gone)


def _until_gone(response: Iterable[bytes], gone: threading.Event) -> Iterator[bytes]:
    try:
        for chunk in response:
            if gone.is_set():
                return
            yield chunk
    finally:
        close = getattr(response, "close", None)
        if close is not None:
            close()
