"""A minimal asyncio HTTP/1.1 client over one keep-alive connection, for load generators.

On a 2-core machine the load generator competes with the server it measures: with httpx,
fifty simulated readers spent more CPU per request than the server did. This client does
only what a JSON API needs (one connection, Content-Length or chunked bodies) and costs a
fraction of that, so the latencies measured are the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

# Below the server's keep-alive timeout (the runner gives uvicorn 30 s).
IDLE_REUSE_SECONDS = 20.0


class TransportError(Exception):
    """The connection broke, timed out or answered something that is not HTTP."""


@dataclass
class Reply:
    status_code: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class KeepAliveClient:
    def __init__(self, base: str, *, headers: dict[str, str] | None = None, timeout: float = 30):
        parts = urlsplit(base)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout = timeout
        fixed = {"Host": f"{self.host}:{self.port}", "Accept": "application/json"}
        fixed.update(headers or {})
        self.head = "".join(f"{name}: {value}\r\n" for name, value in fixed.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.last_used = 0.0

    async def __aenter__(self) -> KeepAliveClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        writer, self.reader, self.writer = self.writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def get(self, path: str) -> Reply:
        return await self.request("GET", path)

    async def post(self, path: str, *, json: Any) -> Reply:
        return await self.request("POST", path, json)

    async def put(self, path: str, *, json: Any) -> Reply:
        return await self.request("PUT", path, json)

    async def request(self, method: str, path: str, body: Any = None) -> Reply:
        try:
            return await asyncio.wait_for(self._exchange(method, path, body), self.timeout)
        except (OSError, EOFError, asyncio.IncompleteReadError, TimeoutError, ValueError) as error:
            await self.close()
            raise TransportError(type(error).__name__) from error

    async def _exchange(self, method: str, path: str, body: Any) -> Reply:
        if self.writer is not None and time.monotonic() - self.last_used > IDLE_REUSE_SECONDS:
            # As browsers do: an idle connection the server may be closing is not reused.
            await self.close()
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        payload = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\n{self.head}"
        if body is not None:
            head += "Content-Type: application/json\r\n"
        head += f"Content-Length: {len(payload)}\r\n\r\n"
        self.writer.write(head.encode("latin-1") + payload)
        status_line = await self.reader.readline()
        if not status_line:
            raise EOFError("connection closed by the server")
        status = int(status_line.split()[1])
        length, chunked, close = None, False, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value
            elif name == "connection":
                close = value == "close"
        if chunked:
            parts = []
            while size := int((await self.reader.readline()).split(b";")[0], 16):
                parts.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            while (await self.reader.readline()) not in (b"\r\n", b""):
                pass  # trailers
            data = b"".join(parts)
        elif length is not None:
            data = await self.reader.readexactly(length)
        else:
            data, close = await self.reader.read(), True
        if close:
            await self.close()
        self.last_used = time.monotonic()
        return Reply(status, data)
