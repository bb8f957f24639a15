"""The application as `make serve` serves it (uvicorn, a2wsgi in front of Django, Channels):
a chunked submission is stored and its progress event reaches the coordinator's websocket
from the request's thread; sockets open only from the site's own origin."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from django.test import Client, override_settings
from rest_framework.authtoken.models import Token

from reviewapp.core.body_limits import BodyLimitMiddleware
from reviewapp.core.websocket import origin_allowed
from reviewapp.studies.models import Assignment, Rating
from tests.conftest import serving
from tests.studies.conftest import build_study, make_case_study


@pytest.fixture
def live_app(transactional_db: None, tmp_path: Path) -> Iterator[str]:
    """The project served as `make serve` serves it, on this test's database and Redis."""
    with serving(tmp_path, RADREVIEW_DB_POOL_MAX="2") as url:
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


def _socket_scope(origin: str | None, host: str = "radreview.example.org", scheme: str = "wss"):
    headers = [(b"host", host.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    return {"type": "websocket", "scheme": scheme, "headers": headers}


@override_settings(ALLOWED_HOSTS=["radreview.example.org"], CSRF_TRUSTED_ORIGINS=[])
def test_a_socket_opens_only_from_the_sites_own_scheme_host_and_port() -> None:
    assert origin_allowed(_socket_scope("https://radreview.example.org"))
    assert origin_allowed(_socket_scope("https://radreview.example.org:443"))
    assert not origin_allowed(_socket_scope("http://radreview.example.org"))
    assert not origin_allowed(_socket_scope("https://radreview.example.org:8443"))
    assert not origin_allowed(_socket_scope("https://evil.example.org"))
    assert not origin_allowed(_socket_scope("null"))
    assert not origin_allowed(_socket_scope(None))
    # A Host outside ALLOWED_HOSTS is refused even when the Origin repeats it.
    assert not origin_allowed(_socket_scope("https://evil.example.org", host="evil.example.org"))
    with override_settings(CSRF_TRUSTED_ORIGINS=["https://viewer.example.org"]):
        assert origin_allowed(_socket_scope("https://viewer.example.org"))
        assert not origin_allowed(_socket_scope("https://viewer.example.org:444"))


def test_a_header_spelt_with_underscores_cannot_pass_for_the_real_one() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.extend(scope["headers"])

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(b"x-forwarded-for", b"10.1.1.1"), (b"x_forwarded_for", b"6.6.6.6")],
    }
    asyncio.run(BodyLimitMiddleware(app)(scope, None, None))  # type: ignore[arg-type]
    assert seen == [(b"x-forwarded-for", b"10.1.1.1")]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_live_server_refuses_a_socket_from_another_port(
    live_app: str, coordinator, reader
) -> None:
    study = build_study(coordinator=coordinator, readers=[reader], imaging=[make_case_study(0)])
    browser = Client()
    browser.force_login(coordinator)
    cookie = f"sessionid={browser.cookies['sessionid'].value}"
    socket_url = live_app.replace("http", "ws") + f"/ws/studies/{study.public_id}/progress/"
    other_port = live_app.rsplit(":", 1)[0] + ":1"

    async def opens(origin: str) -> bool:
        try:
            async with websockets.connect(
                socket_url, origin=origin, additional_headers={"Cookie": cookie}
            ) as socket:
                await asyncio.wait_for(socket.recv(), 10)
                return True
        except websockets.InvalidStatus:
            return False

    assert asyncio.run(opens(live_app))
    assert not asyncio.run(opens(other_port))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_workers_slow_to_start_are_waited_for_not_replaced(tmp_path: Path) -> None:
    """`make serve` with Redis runs two uvicorn workers. On a busy machine a worker can take
    longer than uvicorn's default 5 s health ping to import the app; it must be waited for,
    not killed and replaced in a loop that never serves."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    # Each worker is a spawned interpreter: delay only those, as a saturated CPU does.
    (hooks / "sitecustomize.py").write_text(
        "import sys, time\nif '--multiprocessing-fork' in sys.argv:\n    time.sleep(8)\n"
    )
    log = tmp_path / "server.log"
    with serving(tmp_path, RADREVIEW_WEB_WORKERS="2", PYTHONPATH=str(hooks)) as url:
        deadline = time.monotonic() + 120
        while log.read_text().count("Started server process") < 2:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
    assert "died" not in log.read_text()
