from __future__ import annotations

from typing import Any

from django.urls import path

from reviewapp.studies.consumers import ReaderStudyProgressConsumer

websocket_urlpatterns: list[Any] = [
    path(
        "ws/studies/<str:study_id>/progress/",
        ReaderStudyProgressConsumer.as_asgi(),
    ),
]
