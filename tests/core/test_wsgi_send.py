"""The HTTP bridge hands response messages to the loop without waiting a loop turn for each,
yet a streamed response never runs more than the queue's size ahead of its client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from reviewapp.core.wsgi_send import WSGIBridge


def _get_root() -> dict[str, Any]:
    """An ASGI scope for ``GET /``."""
    return {
        "type": "http", "method": "GET", "path": "/", "raw_path": b"/", "query_string": b"",
        "headers": [], "http_version": "1.1", "scheme": "http", "root_path": "",
        "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1234),
    }  # fmt: skip


def test_a_streamed_response_waits_for_a_slow_client_and_every_chunk_arrives_in_order() -> None:
    produced: list[int] = []
    delivered: list[bytes] = []
    ahead: list[int] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        for n in range(200):
            produced.append(n)
            # How far the producing thread has run ahead of what the client received.
            ahead.append(len(produced) - len(delivered))
            yield f"{n},".encode()

    bridge = WSGIBridge(app, workers=2, send_queue_size=4)
    scope = _get_root()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            await asyncio.sleep(0.001)  # a slow client
            delivered.append(message.get("body", b""))

    asyncio.run(bridge(scope, receive, send))
    assert b"".join(delivered) == b"".join(f"{n},".encode() for n in range(200))
    # start + chunks in flight: never more than the queue's size (plus the one being made).
    assert max(ahead) <= 4 + 2


def test_a_client_gone_mid_stream_does_not_leave_the_thread_waiting() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        for _ in range(1000):
            yield b"x"

    bridge = WSGIBridge(app, workers=1, send_queue_size=2)
    scope = _get_root()
    sent = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal sent
        sent += 1
        if sent > 5:
            raise OSError("client gone")

    async def run() -> None:
        with contextlib.suppress(OSError):
            await asyncio.wait_for(bridge(scope, receive, send), timeout=10)
        # The request's thread finished (it was not left waiting for room).
        bridge.executor.shutdown(wait=True)

    asyncio.run(run())
    assert sent == 6
