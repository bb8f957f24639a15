"""Websocket routes; each app lists its consumers in its own ``routing.py``."""

from __future__ import annotations

from typing import Any

from reviewapp.generation.routing import websocket_urlpatterns as generation_ws
from reviewapp.imaging.routing import websocket_urlpatterns as imaging_ws
from reviewapp.metrics.routing import websocket_urlpatterns as metrics_ws
from reviewapp.studies.routing import websocket_urlpatterns as studies_ws

websocket_urlpatterns: list[Any] = [*imaging_ws, *studies_ws, *generation_ws, *metrics_ws]
