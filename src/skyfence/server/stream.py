"""The WebSocket stream ``/api/v1/stream?last_seq=N``: the hub's messages, in order.

The caller's view's hub (``skyfence.server.auth``; for a partner with a field
policy, that policy's: ``NodeService.hub_for``): a token in the ``Authorization``
header or, since a browser cannot set one, the ``token`` query parameter. A node with
tokens accepts a connection without a valid one only to close it at once, 4401 (4403
for a role that may not read), so that clients see why; a refusal before the accept
reaches a browser as an unexplained failed handshake.

Per client, a sender task reads its ``Subscription`` queue and writes to the socket,
while the handler reads the socket only to notice the client leave. The publisher
never waits on a client: the hub puts into bounded queues without waiting and, when a
queue is full, cuts that client off with a ``resync`` message, which the sender
delivers before closing (code 1013, "try again later"). Protocol-level pings are the
server's (uvicorn answers them and sends its own); client messages are ignored.
Messages come from the hub already encoded (once for all clients); only the snapshot
a client starts with is encoded here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from skyfence.node.access import Role
from skyfence.node.hub import Message, Subscription, encode
from skyfence.node.service import NodeService
from skyfence.server.audit import call_entry, write
from skyfence.server.auth import Call, identify, refusal

#: Close code after a ``resync``: RFC 6455 1013, "try again later".
CLOSE_RESYNC = 1013
#: Close code for a request the stream cannot serve (a bad ``last_seq``).
CLOSE_POLICY = 1008
#: Close codes for no valid token, and for a role that may not read (HTTP's 401, 403).
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
ROUTE = "WS /api/v1/stream"


async def stream(websocket: WebSocket, service: NodeService) -> None:
    call = await _authenticate(websocket, service)
    if call is None:
        return
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
    hub = service.hub_for(call.partner)  # its field policy's, if it has one
    if last_seq is not None and last_seq > hub.seq:
        last_seq = None  # a seq from before this node (re)started: start afresh
    # Subscribe and take the snapshot with no await in between, so that the snapshot's
    # seq and the first queued message follow one another exactly.
    sub = hub.subscribe(last_seq)
    first: list[Mapping[str, Any]] = ([service.snapshot(call.partner)] if sub.needs_snapshot
                                      else list(sub.backlog))
    sent = [0]
    sender = asyncio.create_task(_send(websocket, sub, first, sent))
    watcher = asyncio.create_task(_until_gone(websocket))
    if not call.open:
        await write(service, service.clock(), call.who(), "stream.open",
                    call_entry(call, websocket, route=ROUTE, last_seq=last_seq))
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
    if not call.open:
        call.gave(messages=sent[0])
        await write(service, service.clock(), call.who(), "stream.close",
                    call_entry(call, websocket, route=ROUTE,
                               resync=results[0] is True))


async def _authenticate(websocket: WebSocket, service: NodeService) -> Call | None:
    """The caller, or None once the connection is closed 4401 or 4403 (a known caller
    refused is audited)."""
    token = websocket.query_params.get("token")
    header = websocket.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        token = credentials.strip()
    caller = identify(service, token)
    call = None if caller is None else Call(caller, service.view(caller.partner),
                                            service.access.open)
    refused = refusal(service, caller, Role.VIEWER, presented=bool(token or header))
    if refused is None:
        return call
    code = CLOSE_UNAUTHORIZED if call is None else CLOSE_FORBIDDEN
    await websocket.accept()
    # A close reason is at most 123 bytes: the error alone.
    await websocket.close(code, str(refused.detail).encode()[:123].decode(errors="ignore"))
    if call is not None:
        await write(service, service.clock(), call.who(), "stream.refused",
                    call_entry(call, websocket, route=ROUTE, close=code))
    return None


async def _send(websocket: WebSocket, sub: Subscription,
                first: Sequence[Mapping[str, Any]], sent: list[int]) -> bool:
    """Write until the client goes (False) or is cut off after a resync (True);
    ``sent[0]`` counts the messages written."""
    try:
        for message in first:
            await websocket.send_text(_text(message))
            sent[0] += 1
        while True:
            message = await sub.queue.get()
            await websocket.send_text(message.text)
            sent[0] += 1
            if message.type == "resync":
                return True
    except (WebSocketDisconnect, OSError, RuntimeError):
        # The client went while we wrote (RuntimeError: the socket is already closed).
        return False


async def _until_gone(websocket: WebSocket) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


def _text(message: Mapping[str, Any]) -> str:
    return message.text if isinstance(message, Message) else encode(message)
