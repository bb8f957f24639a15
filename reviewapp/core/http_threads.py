"""Django's HTTP requests, each run start to finish in one pooled thread behind the ASGI server.

Django's own ASGI handler runs a synchronous project by hopping between the event loop and a
thread for every middleware hook (``MiddlewareMixin`` wraps ``process_request`` and
``process_response`` in ``sync_to_async``) and again for the view: about twenty hops per
request here. Each hop waits for the loop and for the GIL, so under load the hops, not the
work, made most of a rating's latency tail. Here the ASGI server reads the request, one hop
hands it to Django's ordinary WSGI handler in a thread of a fixed pool, and the response comes
back as one message (streamed responses chunk by chunk, with back-pressure). Websockets and
the frames fast path stay on the event loop, in front of this.

Every request goes through the same Django stack as before (middleware, views, signals, the
connection pool): only where it runs changed.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from tempfile import SpooledTemporaryFile
from typing import IO, Any

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class ThreadedWSGI:
    """An ASGI application serving HTTP through ``wsgi_app`` on ``threads`` threads."""

    def __init__(self, wsgi_app: WSGIApp, *, threads: int) -> None:
        self.wsgi_app = wsgi_app
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"{type(self).__name__} serves HTTP only, not {scope['type']!r}")
        body = await _body_read(receive)
        if body is None:
            return  # the client went away before the request was complete
        exchange = _Exchange(scope, body, send)
        listener = asyncio.ensure_future(_disconnect_wait(receive, exchange.disconnected))
        try:
            # thread_sensitive=False with our executor: async_to_sync inside the thread (a
            # streamed chunk, a channel-layer event) hands its work back to this event loop.
            run = sync_to_async(exchange.run, thread_sensitive=False, executor=self.executor)
            buffered = await run(self.wsgi_app)
            if buffered is not None:
                start, content = buffered
                await send(start)
                await send({"type": "http.response.body", "body": content})
        finally:
            listener.cancel()
            body.close()


async def _body_read(receive: Receive) -> IO[bytes] | None:
    # Spooled to disk past FILE_UPLOAD_MAX_MEMORY_SIZE, as Django's ASGI handler does.
    body: IO[bytes] = SpooledTemporaryFile(  # noqa: SIM115 (closed by the caller)
        max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, mode="w+b"
    )
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            body.close()
            return None
        body.write(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body.seek(0)
    return body


async def _disconnect_wait(receive: Receive, disconnected: threading.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            disconnected.set()
            return


class _Exchange:
    """One request and its response; ``run`` is called in a pool thread."""

    def __init__(self, scope: Scope, body: IO[bytes], send: Send) -> None:
        self.scope = scope
        self.body = body
        self.send = send
        self.disconnected = threading.Event()
        self.start: Message | None = None
        self.start_sent = False

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None and self.start_sent:
            raise exc_info[1].with_traceback(exc_info[2])
        self.start = {
            "type": "http.response.start",
            "status": int(status.split(" ", 1)[0]),
            "headers": [
                # Django's Set-Cookie values start with a space (cookie.output(header="")).
                (name.lower().encode("latin-1"), value.strip().encode("latin-1"))
                for name, value in headers
            ],
        }
        return self._write_unsupported

    @staticmethod
    def _write_unsupported(data: bytes) -> None:
        raise NotImplementedError("Django never uses the WSGI write() callable")

    def run(self, wsgi_app: WSGIApp) -> tuple[Message, bytes] | None:
        """Run the request; return (start, body) for the event loop to send, or None when the
        response was streamed from here."""
        result = wsgi_app(_environ(self.scope, self.body), self.start_response)
        try:
            if isinstance(result, list | tuple) or getattr(result, "streaming", None) is False:
                content = b"".join(result)  # a plain HttpResponse: one block, one message
                assert self.start is not None
                return self.start, content
            self._stream(result)
            return None
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()  # Django's request_finished: the database connection goes back

    def _stream(self, result: Iterable[bytes]) -> None:
        send = async_to_sync(self.send)
        for chunk in result:
            if self.disconnected.is_set():
                return  # nobody is reading: stop producing (close() ends the iterator)
            self._start_send(send)
            if chunk:
                send({"type": "http.response.body", "body": chunk, "more_body": True})
        self._start_send(send)
        send({"type": "http.response.body", "body": b""})

    def _start_send(self, send: Callable[[Message], None]) -> None:
        if not self.start_sent:
            assert self.start is not None
            send(self.start)
            self.start_sent = True


def _environ(scope: Scope, body: IO[bytes]) -> dict[str, Any]:
    """The WSGI environ (PEP 3333) of an ASGI HTTP scope whose body has been read."""
    root_path = scope.get("root_path", "")
    path = scope["path"]
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    size = body.seek(0, 2)
    body.seek(0)
    server = scope.get("server") or ("localhost", 80)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": root_path.encode("utf-8").decode("latin-1"),
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1] if server[1] is not None else 80),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        # The body as read, whatever the framing (a chunked upload has no Content-Length).
        "CONTENT_LENGTH": str(size),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"] = client[0]
        environ["REMOTE_PORT"] = str(client[1])
    for raw_name, raw_value in scope.get("headers", ()):
        header = raw_name.decode("latin-1")
        if "_" in header:
            continue  # X_Forwarded_For would pass for X-Forwarded-For: drop it (as gunicorn)
        name = header.upper().replace("-", "_")
        if name == "CONTENT_LENGTH":
            continue
        key = name if name == "CONTENT_TYPE" else f"HTTP_{name}"
        value = raw_value.decode("latin-1")
        if key in environ:
            # HTTP/2 may split the cookie header; other repeated headers join with commas.
            value = environ[key] + ("; " if key == "HTTP_COOKIE" else ",") + value
        environ[key] = value
    return environ
