"""a2wsgi's HTTP bridge without a loop turn per response message.

a2wsgi (1.10) hands each response message of a WSGI request (the start, every body chunk) to
the event loop with ``run_coroutine_threadsafe(...).result()``: the request's thread waits for
the loop to take each one. At saturation, with the GIL contended, those waits held every
request thread while the CPU idled (bench/RESULTS.md, the quiet readers pair). Here the thread
schedules the message and goes on; a semaphore keeps at most ``send_queue_size`` messages in
flight per request, so a streamed export still waits for its client (memory stays bounded).
Everything else is a2wsgi's.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from a2wsgi.wsgi import WSGIMiddleware, WSGIResponder


class _Responder(WSGIResponder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.capacity = max(1, self.send_queue.maxsize)
        self.room = threading.Semaphore(self.capacity)
        self.send_queue = asyncio.Queue()  # unbounded: ``room`` bounds what is in flight
        self.broken = False

    def send(self, message: Any) -> None:
        self.room.acquire()
        if self.broken:
            raise OSError("the client connection is gone")
        self.loop.call_soon_threadsafe(self.send_queue.put_nowait, message)

    async def sender(self, send: Any) -> None:
        try:
            while True:
                message = await self.send_queue.get()
                if message is None:
                    break
                await send(message)
                self.room.release()
        except Exception:
            # The client is gone (the server refuses the message): the request's thread
            # stops at its next message instead of waiting forever for room.
            self.broken = True
            self.room.release(self.capacity + 1)


class WSGIBridge(WSGIMiddleware):
    """``a2wsgi.WSGIMiddleware`` with the responder above for HTTP."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            responder = _Responder(self.app, self.executor, self.send_queue_size)
            return await responder(scope, receive, send)
        return await super().__call__(scope, receive, send)
