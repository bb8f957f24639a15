"""Channel-layer messages sent from synchronous code (services, tasks): one way to do it."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

from asgiref.sync import async_to_sync

# The main thread's event loop, kept for the life of the process (a forked child makes its own).
_kept_loop: dict[str, Any] = {"loop": None, "pid": None}


def group_send(layer: Any, group: str, message: dict[str, Any]) -> None:
    """Send ``message`` to ``group`` on ``layer`` and wait until it is handed over.

    ``async_to_sync`` outside a server's event loop starts a thread, a loop and, with Redis, a
    new connection for every message: about 3 ms against 0.2 ms on a kept loop. Only the main
    thread keeps one, which is where a worker child and the shell run. Request threads keep
    ``async_to_sync``: it hands the send to the server's loop, and a loop kept per short-lived
    thread would leak it (channels_redis holds every loop it has served).
    """
    if threading.current_thread() is not threading.main_thread():
        async_to_sync(layer.group_send)(group, message)
        return
    if _kept_loop["pid"] != os.getpid():
        _kept_loop["loop"], _kept_loop["pid"] = asyncio.new_event_loop(), os.getpid()
    _kept_loop["loop"].run_until_complete(layer.group_send(group, message))
