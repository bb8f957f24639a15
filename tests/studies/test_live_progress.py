"""The live progress page over a real websocket, through the Redis channel layer."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import websockets
from django.db import connections
from django.test import Client

from reviewapp.studies import services
from reviewapp.studies.models import Assignment
from tests.studies.conftest import build_study, make_case_study
from tests.studies.live import app_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _cookie_for(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


async def _receive(socket, timeout: float = 10.0) -> dict:
    return json.loads(await asyncio.wait_for(socket.recv(), timeout))


def test_progress_socket_pushes_each_rating_to_the_study_coordinator_only(
    coordinator, reader, second_reader, frank
) -> None:
    imaging = [make_case_study(i) for i in range(3)]
    study = build_study(coordinator=coordinator, readers=[reader, second_reader], imaging=imaging)
    first = Assignment.objects.filter(reader_study=study, reader=reader).order_by("position")[0]
    carol_cookie, frank_cookie, alice_cookie = (
        _cookie_for(coordinator),
        _cookie_for(frank),
        _cookie_for(reader),
    )

    def submit() -> None:
        try:
            services.rating_submit(
                assignment=first,
                reader=reader,
                answers={"comparison": "c"},
                idempotency_key=uuid.uuid4(),
            )
        finally:
            connections.close_all()  # this worker thread's own connection

    with app_server() as base:
        ws_url = base.replace("http", "ws") + f"/ws/studies/{study.public_id}/progress/"

        async def scenario() -> tuple[dict, dict, list[int]]:
            refused = []
            for cookie in (frank_cookie, alice_cookie, ""):
                try:
                    async with websockets.connect(
                        ws_url, origin=base, additional_headers={"Cookie": cookie}
                    ) as socket:
                        await _receive(socket, 5)
                        refused.append(0)
                except websockets.exceptions.ConnectionClosed as closed:
                    refused.append(closed.rcvd.code if closed.rcvd else -1)
                except websockets.exceptions.InvalidStatus as status:
                    refused.append(status.response.status_code)
            async with websockets.connect(
                ws_url, origin=base, additional_headers={"Cookie": carol_cookie}
            ) as socket:
                initial = await _receive(socket)
                await asyncio.to_thread(submit)
                pushed = await _receive(socket)
            return initial, pushed, refused

        initial, pushed, refused = asyncio.run(scenario())
    assert initial["progress"]["submitted"] == 0
    assert pushed["type"] == "progress"
    assert pushed["progress"]["submitted"] == 1
    alice_row = next(r for r in pushed["progress"]["readers"] if r["reader"] == "alice")
    assert alice_row["submitted"] == 1
    # frank coordinates other studies, alice reads this one, the third has no session.
    assert all(code != 0 for code in refused), refused
