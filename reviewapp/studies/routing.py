from __future__ import annotations

from typing import Any

from django.urls import path

from reviewapp.studies.consumers import ReaderStudyProgressConsumer, ReadingStatusConsumer

websocket_urlpatterns: list[Any] = [
    path(
        "ws/studies/<str:study_id>/progress/",
        ReaderStudyProgressConsumer.as_asgi(),
    ),
    path(
        "ws/studies/read/<str:assignment_id>/status/",
        ReadingStatusConsumer.as_asgi(),
    ),
]
