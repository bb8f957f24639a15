"""Bodies over their route's limit are refused before they are read, on the live server.

Eve (anonymous) announces a gigabyte, or streams one chunk by chunk; carol (coordinator) may
send an upload up to the upload limit but not beyond it. The server's temporary folder shows
that nothing was spooled on the way.
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.test import override_settings
from rest_framework.authtoken.models import Token

from reviewapp.core.body_limits import route_limit
from tests.conftest import serving

GIB = 1024**3


@pytest.fixture
def live(transactional_db: None, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The live server, and the folder it writes its temporary files to."""
    scratch = tmp_path / "server-tmp"
    scratch.mkdir()
    with serving(tmp_path, TMPDIR=str(scratch)) as url:
        yield url, scratch


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=10)


def _head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed without an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body


def _announce(url: str, path: str, length: int, **headers: str) -> tuple[int, dict, bytes]:
    """Send only the headers of a POST of ``length`` bytes and wait for the answer."""
    with _connect(url) as sock:
        sock.sendall(_head(path, {"Content-Length": str(length), **headers}))
        return _response(sock)


def _stream(url: str, path: str, *, most: int, **headers: str) -> tuple[int, int, bytes]:
    """Send a chunked body of up to ``most`` bytes until the server answers; return the
    status, the bytes sent by then and the answer's body."""
    sent = 0
    chunk = b"x" * 65536
    with _connect(url) as sock:
        sock.sendall(_head(path, {"Transfer-Encoding": "chunked", **headers}))
        while sent < most:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError):
                break  # refused and closed: the answer is waiting
            sent += len(chunk)
        status, _, body = _response(sock)
        return status, sent, body


def _scratch_files(scratch: Path) -> list[Path]:
    return [p for p in scratch.rglob("*") if p.is_file()]


@pytest.mark.slow
def test_an_anonymous_gigabyte_is_refused_from_its_headers_before_a_byte_is_sent(live) -> None:
    url, scratch = live
    for path in ("/healthz", "/api/v1/import-batches", "/imaging/upload/", "/dicomweb/studies"):
        started = time.monotonic()
        status, headers, body = _announce(url, path, GIB, **{"Content-Type": "application/json"})
        assert status == 413, (path, body)
        assert headers["connection"] == "close"
        assert json.loads(body)["code"] == "body_too_large"
        assert time.monotonic() - started < 5
    assert _scratch_files(scratch) == []


@pytest.mark.slow
def test_an_anonymous_chunked_stream_is_cut_off_at_the_limit(live) -> None:
    url, scratch = live
    status, sent, body = _stream(url, "/api/v1/import-batches", most=256 * 1024**2)
    assert status == 413, body
    assert "without logging in" in json.loads(body)["detail"]
    # Socket buffers take some megabytes before the answer is seen, never the whole stream.
    assert sent < 64 * 1024**2
    assert _scratch_files(scratch) == []


@pytest.mark.slow
def test_a_page_is_told_in_html_that_its_body_is_too_large(live) -> None:
    url, _ = live
    status, headers, body = _announce(url, "/imaging/upload/", GIB, Accept="text/html")
    assert status == 413
    assert headers["content-type"].startswith("text/html")
    assert b"too large" in body


@pytest.mark.slow
def test_a_coordinator_may_announce_an_upload_up_to_the_limit_and_no_more(
    live, coordinator
) -> None:
    url, scratch = live
    token = Token.objects.create(user=coordinator).key
    auth = {"Authorization": f"Token {token}", "Content-Type": "multipart/form-data; boundary=b"}

    status, _, body = _announce(url, "/api/v1/import-batches", 2 * GIB, **auth)
    assert status == 413
    assert "1 GB" in json.loads(body)["detail"]

    # Within the limit the request goes on to Django, which reads the body as it comes: the
    # connection is held open waiting for it, and nothing has been written anywhere.
    with _connect(url) as sock:
        sock.sendall(_head("/api/v1/import-batches", {"Content-Length": str(GIB), **auth}))
        sock.sendall(b"--b\r\n")
        readable, _, _ = select.select([sock], [], [], 1.5)
        assert readable == [], "answered before the body arrived"
    assert _scratch_files(scratch) == []


@pytest.mark.slow
def test_invalid_credentials_get_only_the_anonymous_allowance(live, coordinator) -> None:
    url, _ = live
    token = Token.objects.create(user=coordinator)
    key = token.key
    token.delete()
    for headers in (
        {"Authorization": f"Token {key}"},
        {"Authorization": "Basic Y2Fyb2w6eA=="},
        {"Cookie": "sessionid=made-up"},
    ):
        status, _, _ = _announce(url, "/api/v1/import-batches", 1024**2, **headers)
        assert status == 413, headers


@pytest.mark.slow
def test_a_chunked_body_within_its_limit_reaches_django_whole(live, reader) -> None:
    url, _ = live
    token = Token.objects.create(user=reader).key
    payload = json.dumps({"answers": {"q": "x" * 100_000}}).encode()  # over the anonymous bound
    with _connect(url) as sock:
        sock.sendall(
            _head(
                "/api/v1/me",
                {
                    "Authorization": f"Token {token}",
                    "Content-Type": "application/json",
                    "Transfer-Encoding": "chunked",
                },
            )
        )
        for start in range(0, len(payload), 7000):
            piece = payload[start : start + 7000]
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        sock.sendall(b"0\r\n\r\n")
        status, _, body = _response(sock)
    # /me answers GET only: a 405 is Django's answer to the whole request, not ours.
    assert status == 405, body


def test_each_route_has_its_limit_and_everything_else_the_default() -> None:
    with override_settings(RADREVIEW_MAX_BODY_BYTES=5000):
        assert route_limit("/api/v1/my/assignments/x/rating") == 5000
    assert route_limit("/api/v1/import-batches") == route_limit("/imaging/upload/")
    assert route_limit("/dicomweb/studies/1.2.3") == route_limit("/dicomweb/studies")
    assert route_limit("/dicomweb/studies/1.2.3/series") != route_limit("/dicomweb/studies")
