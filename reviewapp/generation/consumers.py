"""Live progress of one generation job, for coordinators: relays events, never writes."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404

from reviewapp.core.consumers import SnapshotGroupConsumer
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


class GenerationJobConsumer(SnapshotGroupConsumer):
    url_kwarg = "job_id"

    def snapshot(self, user: Any, object_id: str) -> dict[str, Any] | None:
        return _snapshot(user, object_id)

    def group_for(self, object_id: str) -> str:
        return job_group_name(object_id)

    async def generation_progress(self, event: dict[str, Any]) -> None:
        await self.send_json({**event, "type": "progress"})
