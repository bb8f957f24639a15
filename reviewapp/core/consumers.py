"""The shape every staff progress socket shares: authorise and snapshot, join, relay."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer


class SnapshotGroupConsumer(AsyncJsonWebsocketConsumer):
    """A socket that opens with a snapshot and then relays a group's events.

    Subclasses name the URL argument and give ``snapshot`` (None refuses the socket with
    4403: the user may not see this object, which must not be told apart from "no such
    object") and ``group_for``; events sent to the group are relayed by their own handlers.
    Consumers never write the database.
    """

    url_kwarg: str = ""
    group: str | None = None

    def snapshot(self, user: Any, object_id: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def group_for(self, object_id: str) -> str:
        raise NotImplementedError

    async def connect(self) -> None:
        object_id = str(self.scope["url_route"]["kwargs"][self.url_kwarg])
        snapshot = await database_sync_to_async(self.snapshot)(self.scope.get("user"), object_id)
        if snapshot is None:
            await self.close(code=4403)
            return
        self.group = self.group_for(object_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "snapshot", **snapshot})

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
