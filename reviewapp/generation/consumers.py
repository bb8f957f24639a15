"""Live progress of one generation job, for coordinators: relays events, never writes."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import PermissionDenied
from django.http import Http404

from reviewapp.core.roles import Role, user_has_role
from reviewapp.generation import selectors
from reviewapp.generation.services import job_counts, job_group_name, run_event


def _snapshot(user: Any, job_id: str) -> dict[str, Any] | None:
    if not user_has_role(user, Role.COORDINATOR):
        return None
    try:
        job = selectors.job_get_for_staff(user=user, public_id=job_id)
    except (Http404, PermissionDenied):
        return None
    runs = selectors.run_list_for_staff(user=user, job=job)
    return {
        "job": str(job.public_id),
        "counts": job_counts(job),
        "runs": [run_event(run) for run in runs],
    }


class GenerationJobConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        job_id = str(self.scope["url_route"]["kwargs"]["job_id"])
        snapshot = await database_sync_to_async(_snapshot)(self.scope.get("user"), job_id)
        if snapshot is None:
            await self.close(code=4403)
            return
        self.group = job_group_name(job_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "snapshot", **snapshot})

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def generation_progress(self, event: dict[str, Any]) -> None:
        await self.send_json({**event, "type": "progress"})
