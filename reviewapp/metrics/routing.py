from __future__ import annotations

from typing import Any

from django.urls import path

from reviewapp.metrics.consumers import MetricJobsConsumer

websocket_urlpatterns: list[Any] = [
    path("ws/metrics/studies/<uuid:study_id>/", MetricJobsConsumer.as_asgi()),
]
