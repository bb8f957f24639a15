"""Stream a multipart/related request body into one temporary file per part.

The body is read in chunks and each part goes straight to disk, so a STOW-RS request of any
size never sits in memory; a running total enforces the size cap while reading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

CHUNK_SIZE = 1 << 20
MAX_HEADER_BYTES = 16 * 1024

_BOUNDARY = re.compile(r';\s*boundary\s*=\s*("([^"]+)"|[^;\s]+)', re.IGNORECASE)
_TYPE = re.compile(r';\s*type\s*=\s*("([^"]+)"|[^;\s]+)', re.IGNORECASE)


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class MultipartError(ValueError):
    """The body is not a well-formed multipart/related message; the message says why."""


class BodyTooLargeError(MultipartError):
    pass


@dataclass(frozen=True)
class Part:
    number: int  # 1-based position in the request, how the client knows it
    path: Path
    content_type: str
    size: int


def multipart_params(content_type: str) -> tuple[str, str]:
    """(boundary, type) of a multipart/related Content-Type, or raise MultipartError."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "multipart/related":
        raise MultipartError(f'expected multipart/related, got "{media_type or "nothing"}"')
    boundary = _BOUNDARY.search(content_type)
    if not boundary:
        raise MultipartError("the Content-Type has no boundary parameter")
    part_type = _TYPE.search(content_type)
    type_value = (part_type.group(2) or part_type.group(1)) if part_type else ""
    return boundary.group(2) or boundary.group(1), type_value.strip('"').lower()


class _Reader:
    def __init__(self, stream: Readable, *, max_bytes: int) -> None:
        self.stream = stream
        self.max_bytes = max_bytes
        self.buffer = bytearray()
        self.total = 0
        self.eof = False

    def fill(self) -> None:
        chunk = self.stream.read(CHUNK_SIZE)
        if not chunk:
            self.eof = True
            return
        self.total += len(chunk)
        if self.total > self.max_bytes:
            raise BodyTooLargeError(f"the request body is larger than {self.max_bytes} bytes")
        self.buffer += chunk


def multipart_to_files(
    stream: Readable, *, boundary: str, dest: Path, max_bytes: int, default_type: str
) -> list[Part]:
    """Write each part of the body read from ``stream`` to a file in ``dest``."""
    reader = _Reader(stream, max_bytes=max_bytes)
    delimiter = b"--" + boundary.encode("latin-1")
    _skip_preamble(reader, delimiter)
    parts: list[Part] = []
    while True:
        while len(reader.buffer) < 2 and not reader.eof:
            reader.fill()
        if reader.buffer[:2] == b"--":
            return parts
        content_type = _read_headers(reader) or default_type
        path = dest / f"part-{len(parts) + 1:06d}.dcm"
        size = _read_body(reader, b"\r\n" + delimiter, path)
        parts.append(Part(len(parts) + 1, path, content_type, size))


def single_part_to_file(stream: Readable, *, dest: Path, max_bytes: int, content_type: str) -> Part:
    """Write a body that is one part (a single-part application/dicom request) to a file."""
    reader = _Reader(stream, max_bytes=max_bytes)
    path = dest / "part-000001.dcm"
    with open(path, "wb") as out:
        while not reader.eof:
            reader.fill()
            out.write(reader.buffer)
            reader.buffer.clear()
    return Part(1, path, content_type, reader.total)


def _skip_preamble(reader: _Reader, delimiter: bytes) -> None:
    while True:
        found = reader.buffer.find(delimiter)
        if found >= 0:
            del reader.buffer[: found + len(delimiter)]
            return
        if reader.eof:
            raise MultipartError("the body holds no part (boundary not found)")
        if len(reader.buffer) > len(delimiter):
            del reader.buffer[: len(reader.buffer) - len(delimiter)]
        reader.fill()


def _read_headers(reader: _Reader) -> str:
    while (end := reader.buffer.find(b"\r\n\r\n")) < 0:
        if reader.eof or len(reader.buffer) > MAX_HEADER_BYTES:
            raise MultipartError("a part's headers are malformed or too long")
        reader.fill()
    block = bytes(reader.buffer[:end]).decode("latin-1")
    del reader.buffer[: end + 4]
    for line in block.split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-type":
            return value.strip()
    return ""


def _read_body(reader: _Reader, end_marker: bytes, path: Path) -> int:
    keep = len(end_marker) - 1
    size = 0
    with open(path, "wb") as out:
        while True:
            found = reader.buffer.find(end_marker)
            if found >= 0:
                out.write(reader.buffer[:found])
                del reader.buffer[: found + len(end_marker)]
                return size + found
            if reader.eof:
                raise MultipartError("the body ends before its closing boundary")
            if len(reader.buffer) > keep:
                flush = len(reader.buffer) - keep
                out.write(reader.buffer[:flush])
                del reader.buffer[:flush]
                size += flush
            reader.fill()
