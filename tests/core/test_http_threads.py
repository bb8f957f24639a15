"""HTTP through Django's WSGI handler on a pool of threads behind the ASGI server.

The adapter is driven with a real event loop and thread pool (ASGI messages in and out, as a
server sends them); then the project's own application under uvicorn: a chunked submission
is stored, and the rating's progress event reaches the coordinator's websocket from the
request's thread.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from django.test import Client
from rest_framework.authtoken.models import Token

from reviewapp.core.http_threads import ThreadedWSGI
from reviewapp.studies.models import Assignment, Rating
from tests.conftest import uvicorn_serving
from tests.studies.conftest import build_study, make_case_study


def _asgi_call(
    app: ThreadedWSGI, scope: dict[str, Any], requests: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Run one ASGI request; return what the application sent."""
    sent: list[dict[str, Any]] = []

    async def main() -> None:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for message in requests:
            queue.put_nowait(message)

        async def receive() -> dict[str, Any]:
            return await queue.get()  # waits while the client has nothing more to say

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if message.get("more_body") and message["body"] == b"chunk-1":
                queue.put_nowait({"type": "http.disconnect"})  # the client hangs up now

        await asyncio.wait_for(app(scope, receive, send), 10)

    asyncio.run(main())
    return sent


def _scope(**extra: Any) -> dict[str, Any]:
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": "/api/echo",
        "root_path": "",
        "query_string": b"a=1&b=%C3%A9",
        "headers": [
            (b"host", b"radreview.example.org"),
            (b"content-type", b"application/json"),
            (b"accept", b"text/html"),
            (b"accept", b"application/json"),
            (b"x-forwarded-for", b"10.1.1.1"),
            (b"x_forwarded_for", b"6.6.6.6"),
        ],
        "client": ("192.0.2.7", 51000),
        "server": ("127.0.0.1", 8000),
    }
    scope.update(extra)
    return scope


def test_request_reaches_the_wsgi_app_whole_on_a_pool_thread() -> None:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        seen["body"] = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        seen["thread"] = threading.current_thread().name
        start_response("201 Created", [("Content-Type", "text/plain"), ("Set-Cookie", " a=b")])
        return [b"made"]

    # A chunked upload: the body comes in three messages and no Content-Length is sent.
    sent = _asgi_call(
        ThreadedWSGI(app, threads=2),
        _scope(),
        [
            {"type": "http.request", "body": b'{"answers"', "more_body": True},
            {"type": "http.request", "body": b': {"q": "a"}', "more_body": True},
            {"type": "http.request", "body": b"}", "more_body": False},
        ],
    )

    assert seen["body"] == b'{"answers": {"q": "a"}}'
    assert seen["CONTENT_LENGTH"] == str(len(seen["body"]))
    assert seen["thread"].startswith("http")
    assert seen["REQUEST_METHOD"] == "POST"
    assert seen["PATH_INFO"] == "/api/echo"
    assert seen["QUERY_STRING"] == "a=1&b=%C3%A9"
    assert seen["wsgi.url_scheme"] == "https"
    assert seen["REMOTE_ADDR"] == "192.0.2.7"
    assert seen["HTTP_HOST"] == "radreview.example.org"
    assert seen["CONTENT_TYPE"] == "application/json"
    assert seen["HTTP_ACCEPT"] == "text/html,application/json"
    # A header spelt with underscores must not pass for the real one.
    assert seen["HTTP_X_FORWARDED_FOR"] == "10.1.1.1"
    assert sent == [
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"content-type", b"text/plain"), (b"set-cookie", b"a=b")],
        },
        {"type": "http.response.body", "body": b"made"},
    ]


def test_a_streamed_response_stops_when_the_client_goes_away() -> None:
    produced: list[int] = []
    closed = threading.Event()

    class Chunks:
        streaming = True

        def __iter__(self) -> Iterator[bytes]:
            for index in range(1000):
                produced.append(index)
                yield f"chunk-{index}".encode()

        def close(self) -> None:
            closed.set()

    def app(environ: dict[str, Any], start_response: Any) -> Chunks:
        start_response("200 OK", [("Content-Type", "text/csv")])
        return Chunks()

    sent = _asgi_call(
        ThreadedWSGI(app, threads=1),
        _scope(method="GET"),
        [{"type": "http.request", "body": b"", "more_body": False}],
    )

    assert sent[0]["status"] == 200
    assert [m["body"] for m in sent[1:3]] == [b"chunk-0", b"chunk-1"]
    assert len(produced) < 100, "the export kept running for a client that had gone"
    assert closed.is_set(), "the response was not closed (its connection would not go back)"


def test_a_client_gone_before_its_body_arrived_runs_nothing() -> None:
    called = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        called.append(environ)
        return []

    sent = _asgi_call(
        ThreadedWSGI(app, threads=1),
        _scope(),
        [{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}],
    )
    assert called == []
    assert sent == []


@pytest.fixture
def live_app(transactional_db: None, tmp_path: Path) -> Iterator[str]:
    """The project's ASGI application under uvicorn, on this test's database and Redis."""
    with uvicorn_serving(tmp_path, RADREVIEW_DB_POOL_MAX="2") as url:
        yield url


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_chunked_submission_is_stored_and_its_progress_event_reaches_the_coordinator(
    live_app: str, coordinator, reader
) -> None:
    study = build_study(
        coordinator=coordinator, readers=[reader], imaging=[make_case_study(i) for i in range(2)]
    )
    assignment = Assignment.objects.filter(reader=reader).order_by("position").first()
    assert assignment is not None
    browser = Client()
    browser.force_login(coordinator)
    cookie = f"sessionid={browser.cookies['sessionid'].value}"
    token = Token.objects.create(user=reader).key
    body = json.dumps(
        {"answers": {"comparison": "c"}, "idempotency_key": str(uuid.uuid4())}
    ).encode()

    async def scenario() -> tuple[int, dict[str, Any]]:
        socket_url = live_app.replace("http", "ws") + f"/ws/studies/{study.public_id}/progress/"
        async with websockets.connect(
            socket_url, origin=live_app, additional_headers={"Cookie": cookie}
        ) as socket:
            await asyncio.wait_for(socket.recv(), 10)  # the figures on connect

            async def chunks() -> Any:
                for start in range(0, len(body), 7):
                    yield body[start : start + 7]

            async with httpx.AsyncClient(base_url=live_app, timeout=10) as client:
                response = await client.post(
                    f"/api/v1/my/assignments/{assignment.public_id}/rating",
                    content=chunks(),
                    headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
                )
            event = json.loads(await asyncio.wait_for(socket.recv(), 10))
            return response.status_code, event

    status, event = asyncio.run(scenario())

    assert status == 201
    assert Rating.objects.filter(assignment=assignment).count() == 1
    assert event["type"] == "progress"
    assert event["progress"]["submitted"] == 1
