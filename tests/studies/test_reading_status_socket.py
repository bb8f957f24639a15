"""The reading page's status socket: a pause reaches the reader's open page, and nobody else
can listen on that reader's assignment."""

from __future__ import annotations

import asyncio

import pytest
import websockets
from django.db import connections

from reviewapp.studies import services
from reviewapp.studies.models import Assignment
from tests.studies.conftest import build_study, make_case_study
from tests.studies.live import app_server
from tests.studies.test_live_progress import _cookie_for, _receive

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_reading_status_socket_tells_only_the_assignments_reader_and_only_status(
    coordinator, reader, second_reader
) -> None:
    study = build_study(
        coordinator=coordinator, readers=[reader, second_reader], imaging=[make_case_study(1)]
    )
    mine = Assignment.objects.get(reader_study=study, reader=reader)
    alice_cookie, bob_cookie, carol_cookie = (
        _cookie_for(reader),
        _cookie_for(second_reader),
        _cookie_for(coordinator),
    )

    def as_coordinator(service) -> None:
        try:
            service(reader_study=study)
        finally:
            connections.close_all()  # this worker thread's own connection

    with app_server() as base:
        ws_url = base.replace("http", "ws") + f"/ws/studies/read/{mine.public_id}/status/"

        async def scenario() -> tuple[list[dict], list[int]]:
            refused = []
            # bob reads the same study, carol coordinates it: neither has this assignment.
            for cookie in (bob_cookie, carol_cookie, ""):
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
                ws_url, origin=base, additional_headers={"Cookie": alice_cookie}
            ) as socket:
                events = [await _receive(socket)]
                await asyncio.to_thread(as_coordinator, services.reader_study_pause)
                events.append(await _receive(socket))
                await asyncio.to_thread(as_coordinator, services.reader_study_open)
                events.append(await _receive(socket))
            return events, refused

        events, refused = asyncio.run(scenario())
    assert [(e["type"], e["status"]) for e in events] == [
        ("status", "open"),
        ("status", "paused"),
        ("status", "open"),
    ]
    assert "paused" in events[1]["message"]
    assert all(set(e) == {"type", "status", "message"} for e in events)  # no figures, no names
    assert all(code != 0 for code in refused), refused
