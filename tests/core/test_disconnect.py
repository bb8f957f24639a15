"""A streamed response stops when its client goes away, under the server and bridge that serve
the app (uvicorn, a2wsgi): an export's thread and database connection are not held to the end
for a closed tab."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from a2wsgi import WSGIMiddleware

from reviewapp.core.disconnect import DisconnectWatch, StopWhenClientGone

CHUNK = b"r" * 65536


class Export:
    """A WSGI app streaming chunks without a length (as an export does), ``chunks`` of them or
    forever; it records how far it got and whether it was closed."""

    def __init__(self, chunks: int | None = None) -> None:
        self.chunks = chunks
        self.sent = 0
        self.closed = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/csv")])
        return self._rows()

    def _rows(self) -> Iterator[bytes]:
        try:
            while self.chunks is None or self.sent < self.chunks:
                self.sent += 1
                yield CHUNK
        finally:
            self.closed.set()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(wsgi_app: Any) -> int:
        port = _free_port()
        app = DisconnectWatch(WSGIMiddleware(StopWhenClientGone(wsgi_app), workers=2))
        config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="error")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        while not server.started:
            threading.Event().wait(0.05)  # the server thread says when it listens; no event
        return port

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


def _request(port: int) -> socket.socket:
    client = socket.create_connection(("127.0.0.1", port))
    client.sendall(b"GET /export.csv HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    return client


def test_a_stream_stops_when_its_client_closes_the_connection(serve: Any) -> None:
    export = Export()  # endless: before the fix it ran until the process ended
    port = serve(export)
    client = _request(port)
    received = 0
    while received < 1024**2:
        received += len(client.recv(65536))
    client.close()
    assert export.closed.wait(timeout=15), f"still streaming after {export.sent} chunks"


def test_a_stream_read_to_its_end_arrives_whole(serve: Any) -> None:
    export = Export(chunks=200)
    port = serve(export)
    client = _request(port)
    data = b""
    while not data.endswith(b"0\r\n\r\n"):  # the chunked encoding's last chunk
        part = client.recv(1024**2)
        assert part, "connection closed early"
        data += part
    client.close()
    body = data.split(b"\r\n\r\n", 1)[1]
    assert body.count(CHUNK) == 200
    assert export.closed.wait(timeout=5)
