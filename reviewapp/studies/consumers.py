"""Live progress of a reader study for its coordinators (and analysts, read-only)."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import Http404

from reviewapp.studies import selectors
from reviewapp.studies.services import progress_group


class ReaderStudyProgressConsumer(AsyncJsonWebsocketConsumer):
    """Joins the study's group and relays progress events; never writes the database."""

    group: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        study_id = self.scope["url_route"]["kwargs"]["study_id"]
        progress = await self._progress(user, study_id)
        if progress is None:
            await self.close(code=4403)
            return
        self.group = progress_group_name = progress.pop("_group")
        await self.channel_layer.group_add(progress_group_name, self.channel_name)
        await self.accept()
        await self.send_json({"type": "progress", "progress": progress})

    @database_sync_to_async
    def _progress(self, user: Any, study_id: str) -> dict[str, Any] | None:
        if user is None or not user.is_authenticated:
            return None
        try:
            study = selectors.reader_study_get(user=user, public_id=study_id)
        except Http404:
            return None
        progress = selectors.reader_study_progress(reader_study=study)
        progress["_group"] = progress_group(study)
        return progress

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def progress_update(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "progress", "progress": event["progress"]})
