"""Live progress of a study's metric jobs, for analysts and coordinators: relays, never writes."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404

from reviewapp.analysis.selectors import reader_study_get_for_analyst
from reviewapp.core.consumers import SnapshotGroupConsumer
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


class MetricJobsConsumer(SnapshotGroupConsumer):
    url_kwarg = "study_id"

    def snapshot(self, user: Any, object_id: str) -> dict[str, Any] | None:
        return _snapshot(user, object_id)

    def group_for(self, object_id: str) -> str:
        return study_group_name(object_id)

    async def metrics_progress(self, event: dict[str, Any]) -> None:
        await self.send_json({**event, "type": "progress"})
