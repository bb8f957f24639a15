"""Live progress of a study's metric jobs over the websocket: analysts and the study's
coordinators follow each batch; readers are refused before anything is sent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings

from reviewapp.asgi import application
from reviewapp.metrics import services

HEADERS = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


@pytest.fixture(autouse=True)
def _empty_queue() -> Iterator[None]:
    # Jobs created here really go to the broker; no worker consumes them in these tests.
    yield
    redis.Redis.from_url(settings.REDIS_URL).flushdb()


def _communicator(study, user) -> WebsocketCommunicator:  # type: ignore[no-untyped-def]
    communicator = WebsocketCommunicator(
        application, f"/ws/metrics/studies/{study.public_id}/", headers=HEADERS
    )
    communicator.scope["user"] = user
    return communicator


@pytest.mark.django_db(transaction=True)
def test_an_analyst_follows_a_job_batch_by_batch_and_a_reader_is_refused(
    error_study, analyst, reader
) -> None:
    study = error_study.study
    (job,) = services.metric_jobs_create(user=analyst, reader_study=study)

    async def scenario() -> list[dict]:
        refused = _communicator(study, reader)
        connected, code = await refused.connect()
        assert (connected, code) == (False, 4403)
        communicator = _communicator(study, analyst)
        connected, _ = await communicator.connect()
        assert connected
        events = [await communicator.receive_json_from(timeout=5)]
        await sync_to_async(services.metric_job_execute)(job_pk=job.pk)
        while not await communicator.receive_nothing(timeout=2):
            events.append(await communicator.receive_json_from())
        await communicator.disconnect()
        return events

    events = asyncio.run(scenario())
    assert events[0]["type"] == "snapshot"
    assert events[0]["jobs"][0]["status"] == "queued"
    progress = events[1:]
    assert [e["status"] for e in progress] == ["running"] * 4 + ["succeeded"]
    assert [e["done"] for e in progress] == [0, 12, 24, 36, 36]
    assert progress[-1]["finished"] is True
    assert all(set(e) == set(events[1]) for e in progress)  # ids and counts, never text
