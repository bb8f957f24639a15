"""Live progress of a reader study for its coordinators (and analysts, read-only), and its
status for the readers' open reading pages."""

from __future__ import annotations

import asyncio
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import Http404

from reviewapp.studies import selectors
from reviewapp.studies.models import ReaderStudy
from reviewapp.studies.services import progress_group

# Ratings arriving within this window share one recomputation of the figures.
PROGRESS_COALESCE_SECONDS = 0.3


class ReaderStudyProgressConsumer(AsyncJsonWebsocketConsumer):
    """Joins the study's group; on each change event, recomputes and sends the figures.

    Never writes the database."""

    group: str | None = None
    study_pk: int = 0
    refresh: asyncio.Task[None] | None = None
    stale = False
    with_contact = False

    async def connect(self) -> None:
        user = self.scope.get("user")
        study_id = self.scope["url_route"]["kwargs"]["study_id"]
        study = await self._study(user, study_id)
        if study is None:
            await self.close(code=4403)
            return
        self.study_pk = study.pk
        self.with_contact = await database_sync_to_async(selectors.reader_study_is_managed_by)(
            user=user, reader_study=study
        )
        self.group = progress_group(study)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self._send_progress()

    @database_sync_to_async
    def _study(self, user: Any, study_id: str) -> ReaderStudy | None:
        if user is None or not user.is_authenticated:
            return None
        try:
            return selectors.reader_study_get_for_staff(user=user, public_id=study_id)
        except Http404:
            return None

    @database_sync_to_async
    def _progress(self) -> dict[str, Any]:
        study = ReaderStudy.objects.get(pk=self.study_pk)
        return selectors.reader_study_progress(reader_study=study, with_contact=self.with_contact)

    async def _send_progress(self) -> None:
        await self.send_json({"type": "progress", "progress": await self._progress()})

    async def disconnect(self, code: int) -> None:
        if self.refresh is not None:
            self.refresh.cancel()
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def progress_changed(self, event: dict[str, Any]) -> None:
        # Handlers run one at a time, so the wait happens in a task of its own; events that
        # arrive meanwhile (even during its query) mark the figures stale and it goes again.
        self.stale = True
        if self.refresh is None or self.refresh.done():
            self.refresh = asyncio.create_task(self._refresh_while_stale())

    async def _refresh_while_stale(self) -> None:
        while self.stale:
            await asyncio.sleep(PROGRESS_COALESCE_SECONDS)
            self.stale = False
            await self._send_progress()


# What an open reading page is told when its study is no longer open for reading.
STATUS_MESSAGES: dict[str, str] = {
    ReaderStudy.Status.OPEN: "",
    ReaderStudy.Status.PAUSED: (
        "The coordinator has paused this study: your draft is kept, and you can submit once "
        "it reopens."
    ),
    ReaderStudy.Status.LOCKED: "This study is locked: answers cannot be changed now.",
}


class ReadingStatusConsumer(AsyncJsonWebsocketConsumer):
    """Tells a reader's open reading page the study's status, at once and on every change.

    Listens on the study's progress group, whose events carry no figures (nothing about other
    readers reaches this socket); on each one it re-reads the status and sends it only when it
    changed. Never writes the database."""

    group: str | None = None
    study_pk: int = 0
    status: str = ""

    async def connect(self) -> None:
        user = self.scope.get("user")
        assignment_id = self.scope["url_route"]["kwargs"]["assignment_id"]
        study = await self._study(user, assignment_id)
        if study is None:
            await self.close(code=4403)
            return
        self.study_pk = study.pk
        self.with_contact = await database_sync_to_async(selectors.reader_study_is_managed_by)(
            user=user, reader_study=study
        )
        self.group = progress_group(study)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self._send_status(study.status)

    @database_sync_to_async
    def _study(self, user: Any, assignment_id: str) -> ReaderStudy | None:
        if user is None or not user.is_authenticated:
            return None
        try:
            return selectors.assignment_get_for_reader(
                user=user, public_id=assignment_id
            ).reader_study
        except Http404:
            return None

    @database_sync_to_async
    def _status(self) -> str:
        return str(ReaderStudy.objects.values_list("status", flat=True).get(pk=self.study_pk))

    async def _send_status(self, status: str) -> None:
        self.status = status
        await self.send_json(
            {"type": "status", "status": status, "message": STATUS_MESSAGES.get(status, "")}
        )

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def progress_changed(self, event: dict[str, Any]) -> None:
        status = await self._status()
        if status != self.status:
            await self._send_status(status)
