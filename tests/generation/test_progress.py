"""Live progress over the websocket (coordinators only) and the generate_reports command."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from io import StringIO

import pytest
import redis
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.core.management import CommandError, call_command

from reviewapp.asgi import application
from reviewapp.generation import services
from reviewapp.generation.models import GenerationJob, GenerationRun, ModelConfig
from reviewapp.reports.models import Report

HEADERS = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


@pytest.fixture(autouse=True)
def _empty_queue() -> Iterator[None]:
    # Jobs created here really go to the broker; no worker consumes them in these tests.
    yield
    redis.Redis.from_url(settings.REDIS_URL).flushdb()


@pytest.fixture
def baseline(db: None) -> ModelConfig:
    config, _ = ModelConfig.objects.get_or_create(
        name="retrieval-baseline", defaults={"backend": "retrieval"}
    )
    return config


def _communicator(job: GenerationJob, user) -> WebsocketCommunicator:  # type: ignore[no-untyped-def]
    communicator = WebsocketCommunicator(
        application, f"/ws/generation/jobs/{job.public_id}/", headers=HEADERS
    )
    communicator.scope["user"] = user
    return communicator


@pytest.mark.django_db(transaction=True)
def test_a_coordinator_watches_runs_finish_live(coordinator, baseline, two_radiographs) -> None:
    job = services.generation_job_create(
        user=coordinator, model_config=baseline, studies=two_radiographs
    ).job
    run = job.runs.order_by("id").first()
    assert run is not None

    async def scenario() -> list[dict]:
        communicator = _communicator(job, coordinator)
        connected, _ = await communicator.connect()
        assert connected
        snapshot = await communicator.receive_json_from(timeout=5)
        await sync_to_async(services.generation_run_execute)(run_pk=run.pk)
        events = [snapshot]
        while not await communicator.receive_nothing(timeout=2):
            events.append(await communicator.receive_json_from())
        await communicator.disconnect()
        return events

    events = asyncio.run(scenario())

    assert events[0]["type"] == "snapshot"
    assert events[0]["counts"]["queued"] == 2
    last = events[-1]
    assert last["type"] == "progress"
    assert last["counts"]["succeeded"] == 1
    assert last["counts"]["finished"] == 1
    assert last["runs"][0]["status"] == "succeeded"
    assert last["runs"][0]["study"] == str(two_radiographs[0].public_id)
    assert [e["runs"][0]["status"] for e in events[1:]] == ["running", "succeeded"]


@pytest.mark.django_db(transaction=True)
def test_a_run_done_on_a_workers_main_thread_is_published_live(
    coordinator, baseline, two_radiographs
) -> None:
    # A worker child runs its task on the main thread, which publishes on its own kept event
    # loop; a listener elsewhere gets each step in order.
    layer = get_channel_layer()
    job = services.generation_job_create(
        user=coordinator, model_config=baseline, studies=two_radiographs
    ).job
    run = job.runs.order_by("id").first()
    assert run is not None
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(services.job_group_name(job.public_id), channel)

    for _ in range(2):  # the same kept loop serves every run of the process
        services.generation_run_execute(run_pk=run.pk)
        run = job.runs.order_by("id").last()

    async def receive(count: int) -> list[dict]:
        return [await layer.receive(channel) for _ in range(count)]

    events = async_to_sync(receive)(4)

    assert [e["runs"][0]["status"] for e in events] == [
        "running", "succeeded", "running", "succeeded",
    ]  # fmt: skip
    assert events[-1]["counts"]["succeeded"] == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("who", ["reader", "analyst", "anonymous"])
def test_only_coordinators_may_listen(
    who, reader, analyst, coordinator, baseline, two_radiographs
) -> None:
    from django.contrib.auth.models import AnonymousUser

    job = services.generation_job_create(
        user=coordinator, model_config=baseline, studies=two_radiographs
    ).job
    user = {"reader": reader, "analyst": analyst, "anonymous": AnonymousUser()}[who]

    async def scenario() -> bool:
        communicator = _communicator(job, user)
        connected, _ = await communicator.connect()
        await communicator.disconnect()
        return connected

    assert asyncio.run(scenario()) is False


@pytest.mark.django_db
def test_generate_reports_runs_the_named_studies_from_the_shell(baseline, two_radiographs) -> None:
    normal = two_radiographs[0]
    out, err = StringIO(), StringIO()

    call_command(
        "generate_reports",
        "--model",
        "retrieval-baseline",
        "--study",
        normal.study_instance_uid,
        "--study",
        "1.2.3.999",
        "--inline",
        stdout=out,
        stderr=err,
    )

    assert "succeeded 1, failed 0" in out.getvalue()
    assert "Study 1.2.3.999: not in the archive, skipped." in err.getvalue()
    report = Report.objects.get(kind=Report.Kind.AI)
    assert report.study == normal
    assert GenerationRun.objects.get().job.created_by is None


@pytest.mark.django_db
def test_generate_reports_names_the_configured_models_when_one_is_unknown(baseline) -> None:
    with pytest.raises(CommandError, match="No model named 'medgemma'; configured: retrieval"):
        call_command("generate_reports", "--model", "medgemma", "--inline")


@pytest.mark.django_db
def test_generate_reports_only_missing_queues_the_unreported_and_says_when_none_are(
    baseline, two_radiographs
) -> None:
    normal, abnormal = two_radiographs
    command = ["generate_reports", "--model", "retrieval-baseline", "--only-missing", "--inline"]
    call_command(*command, "--study", normal.study_instance_uid, stdout=StringIO())

    out = StringIO()
    call_command(*command, stdout=out)  # every study: only the abnormal one is left to do
    assert "succeeded 1, failed 0" in out.getvalue()
    assert Report.objects.get(kind=Report.Kind.AI, study=abnormal)

    with pytest.raises(CommandError, match="every chosen study already has a report from"):
        call_command(*command, stdout=StringIO())
    assert GenerationRun.objects.count() == 2
