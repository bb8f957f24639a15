from __future__ import annotations

from typing import Any

from django.urls import path

from reviewapp.generation.consumers import GenerationJobConsumer

websocket_urlpatterns: list[Any] = [
    path("ws/generation/jobs/<uuid:job_id>/", GenerationJobConsumer.as_asgi()),
]
