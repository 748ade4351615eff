"""The WebSocket stream ``/api/v1/stream?last_seq=N``: the hub's messages, in order.

Per client, a sender task reads its ``Subscription`` queue and writes to the socket,
while the handler reads the socket only to notice the client leave. The publisher
never waits on a client: the hub puts into bounded queues without waiting and, when a
queue is full, cuts that client off with a ``resync`` message, which the sender
delivers before closing (code 1013, "try again later"). Protocol-level pings are the
server's (uvicorn answers them and sends its own); client messages are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from skyfence.node.hub import Subscription
from skyfence.node.service import NodeService

#: Close code after a ``resync``: RFC 6455 1013, "try again later".
CLOSE_RESYNC = 1013
#: Close code for a request the stream cannot serve (a bad ``last_seq``).
CLOSE_POLICY = 1008


async def stream(websocket: WebSocket, service: NodeService) -> None:
    raw = websocket.query_params.get("last_seq")
    last_seq: int | None = None
    if raw is not None:
        try:
            last_seq = int(raw)
        except ValueError:
            last_seq = -1
        if last_seq < 0:
            await websocket.close(CLOSE_POLICY, "last_seq must be a whole number ≥ 0: "
                                  "the seq of the last message received")
            return
    await websocket.accept()
    hub = service.hub
    if last_seq is not None and last_seq > hub.seq:
        last_seq = None  # a seq from before this node (re)started: start afresh
    # Subscribe and take the snapshot with no await in between, so that the snapshot's
    # seq and the first queued message follow one another exactly.
    sub = hub.subscribe(last_seq)
    first = [service.snapshot()] if sub.needs_snapshot else list(sub.backlog)
    sender = asyncio.create_task(_send(websocket, sub, first))
    watcher = asyncio.create_task(_until_gone(websocket))
    try:
        await asyncio.wait({sender, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        hub.unsubscribe(sub)
        for task in (sender, watcher):
            task.cancel()
        results = await asyncio.gather(sender, watcher, return_exceptions=True)
    if results[0] is True:
        with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
            await websocket.close(CLOSE_RESYNC, "resync: reconnect without last_seq")


async def _send(websocket: WebSocket, sub: Subscription, first: list[dict[str, Any]]
                ) -> bool:
    """Write until the client goes (False) or is cut off after a resync (True)."""
    try:
        for message in first:
            await websocket.send_text(_encode(message))
        while True:
            message = await sub.queue.get()
            await websocket.send_text(_encode(message))
            if message["type"] == "resync":
                return True
    except (WebSocketDisconnect, OSError, RuntimeError):
        # The client went while we wrote (RuntimeError: the socket is already closed).
        return False


async def _until_gone(websocket: WebSocket) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


def _encode(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))
