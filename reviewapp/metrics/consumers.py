"""Live progress of a study's metric jobs, for analysts and coordinators: relays, never writes."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import PermissionDenied
from django.http import Http404

from reviewapp.analysis.selectors import reader_study_get_for_analyst
from reviewapp.metrics import selectors
from reviewapp.metrics.services import study_group_name


def _snapshot(user: Any, study_id: str) -> dict[str, Any] | None:
    try:
        study = reader_study_get_for_analyst(user=user, public_id=study_id)
    except (Http404, PermissionDenied):
        return None
    return {
        "jobs": [
            selectors.metric_job_counts(job)
            for job in selectors.metric_job_list(reader_study=study)[:20]
        ]
    }


class MetricJobsConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        study_id = str(self.scope["url_route"]["kwargs"]["study_id"])
        snapshot = await database_sync_to_async(_snapshot)(self.scope.get("user"), study_id)
        if snapshot is None:
            await self.close(code=4403)
            return
        self.group = study_group_name(study_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "snapshot", **snapshot})

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def metrics_progress(self, event: dict[str, Any]) -> None:
        await self.send_json({**event, "type": "progress"})
