"""SAPIENT over TCP, thin around the pure codec and state machines.

``serve`` listens for sensor nodes: each connection has its own decoder, reads at
most ``max_bytes_per_s`` (TCP backpressure slows a faster peer instead of buffering
it), and is closed on its own, without touching the others, when its stream is lost
(no frame found within the resync budget), when it has been refused more than
``max_rejections`` times, or when it stays silent for ``idle_timeout_s``.

``connect_parent`` keeps the upward link to a parent fusion node: connect, register,
send what is queued once the parent accepts, and on any failure start again after a
backoff that doubles up to ``max_backoff_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from skyfence.adapters.base import Rejected
from skyfence.adapters.sapient.codec import (
    DEFAULT_MAX_MESSAGE_BYTES,
    SapientDecoder,
    SapientFrame,
    encode,
)
from skyfence.adapters.sapient.node import FusionNode, NodeBatch
from skyfence.adapters.sapient.proto.sapient_message_pb2 import SapientMessage
from skyfence.adapters.sapient.uplink import ParentSession, UplinkConfig

log = logging.getLogger("skyfence.adapters.sapient")

OnDetections = Callable[[list[NodeBatch]], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Bounds on each sensor-node connection."""

    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_resync_bytes: int = 1 << 16
    max_bytes_per_s: float = 8e6
    max_rejections: int = 100
    idle_timeout_s: float = 60.0
    read_chunk_bytes: int = 1 << 16
    write_timeout_s: float = 10.0


class _Throttle:
    """A token bucket over bytes: ``take`` sleeps while the connection is ahead."""

    def __init__(self, rate_per_s: float) -> None:
        self.rate = rate_per_s
        self.allowance = rate_per_s  # one second of burst
        self.t = time.monotonic()

    async def take(self, amount: int) -> None:
        now = time.monotonic()
        self.allowance = min(self.rate, self.allowance + (now - self.t) * self.rate)
        self.t = now
        self.allowance -= amount
        if self.allowance < 0:
            await asyncio.sleep(-self.allowance / self.rate)


async def _deliver(on_detections: OnDetections, batches: list[NodeBatch]) -> None:
    try:
        result = on_detections(batches)
        if inspect.isawaitable(result):
            await result
    except Exception:  # an engine fault must not take the sensor links down
        log.exception("on_detections failed; %d batches lost", len(batches))


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, asyncio.TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 5.0)


async def _session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                   node: FusionNode, on_detections: OnDetections, limits: ConnectionLimits,
                   peer: str, clock: Callable[[], float]) -> None:
    decoder = SapientDecoder(max_message_bytes=limits.max_message_bytes,
                             max_resync_bytes=limits.max_resync_bytes)
    throttle = _Throttle(limits.max_bytes_per_s)
    rejections = 0
    why = "closed by the peer"
    try:
        while True:
            try:
                data = await asyncio.wait_for(reader.read(limits.read_chunk_bytes),
                                              limits.idle_timeout_s)
            except TimeoutError:
                why = f"silent for {limits.idle_timeout_s} s"
                break
            records = decoder.close() if not data else decoder.feed(data)
            replies: list[bytes] = []
            for rec in records:
                if isinstance(rec, Rejected):
                    rejections += 1
                    log.info("%s: %s at byte %d", peer, rec.reason, rec.offset)
                    continue
                if not isinstance(rec, SapientFrame):
                    continue
                outcome = node.handle(rec, peer=peer, received_s=clock())
                replies.extend(encode(r) for r in outcome.replies)
                if outcome.rejected is not None:
                    rejections += 1
                    log.info("%s: %s", peer, outcome.rejected.reason)
            if replies:
                writer.write(b"".join(replies))
                await asyncio.wait_for(writer.drain(), limits.write_timeout_s)
            batches = node.take_detections()
            if batches:
                await _deliver(on_detections, batches)
            if not data:
                break
            if decoder.lost:
                why = "stream lost (no frame found within the resync budget)"
                break
            if rejections > limits.max_rejections:
                why = f"more than {limits.max_rejections} rejections"
                break
            await throttle.take(len(data))
    except (TimeoutError, ConnectionError) as exc:
        why = f"connection error: {exc!r}"
    finally:
        node.disconnect(peer)
        batches = node.take_detections()
        if batches:
            await _deliver(on_detections, batches)
        await _close(writer)
        log.info("%s: connection closed: %s", peer, why)


async def serve(host: str, port: int, node: FusionNode, on_detections: OnDetections, *,
                limits: ConnectionLimits = ConnectionLimits(),
                clock: Callable[[], float] = time.time,
                on_listening: Callable[[tuple[str, int]], None] | None = None) -> None:
    """Accept sensor nodes on ``host:port`` until cancelled; ``on_detections`` gets
    each connection's detection batches as they are decoded (it may be a coroutine
    function). ``port`` 0 picks a free port, told to ``on_listening``."""
    counter = itertools.count(1)
    sessions: set[asyncio.Task[None]] = set()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        address = writer.get_extra_info("peername")
        peer = f"{address[0]}:{address[1]}#{next(counter)}" if address else f"#{next(counter)}"
        task = asyncio.current_task()
        if task is not None:
            sessions.add(task)
        try:
            await _session(reader, writer, node=node, on_detections=on_detections,
                           limits=limits, peer=peer, clock=clock)
        finally:
            if task is not None:
                sessions.discard(task)

    server = await asyncio.start_server(accept, host, port, limit=limits.read_chunk_bytes)
    try:
        if on_listening is not None:
            sockname = server.sockets[0].getsockname()
            on_listening((sockname[0], sockname[1]))
        await server.serve_forever()
    finally:
        server.close()
        for task in list(sessions):
            task.cancel()
        if sessions:
            await asyncio.gather(*sessions, return_exceptions=True)
        await server.wait_closed()


class Outbox:
    """What waits to go up to the parent: lists of messages, the oldest dropped when
    more than ``max_items`` wait (fused tracks are perishable)."""

    def __init__(self, max_items: int = 64) -> None:
        self._queue: asyncio.Queue[list[SapientMessage]] = asyncio.Queue(max_items)
        self.dropped = 0

    def put(self, messages: list[SapientMessage]) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(messages)

    async def get(self) -> list[SapientMessage]:
        return await self._queue.get()


async def _parent_session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                          session: ParentSession, outbox: Outbox, *,
                          registration_timeout_s: float,
                          clock: Callable[[], float]) -> str:
    """One connected session: register, then pump; returns why it ended."""
    decoder = SapientDecoder()
    writer.write(encode(session.registration(clock())))
    await writer.drain()
    registered = asyncio.Event()

    async def read() -> str:
        while True:
            data = await reader.read(1 << 16)
            for rec in decoder.feed(data) if data else decoder.close():
                if not isinstance(rec, SapientFrame):
                    continue
                outcome = session.handle(rec, received_s=clock())
                for reply in outcome.replies:
                    writer.write(encode(reply))
                if outcome.replies:
                    await writer.drain()
                if session.registered:
                    registered.set()
                elif session.refused:
                    return "registration refused: " + "; ".join(session.refused)
            if not data:
                return "closed by the parent"
            if decoder.lost:
                return "stream from the parent lost"

    async def pump() -> str:
        try:
            await asyncio.wait_for(registered.wait(), registration_timeout_s)
        except TimeoutError:
            return f"no RegistrationAck within {registration_timeout_s} s"
        while True:
            messages = await outbox.get()
            writer.write(b"".join(encode(m) for m in messages))
            await writer.drain()

    tasks = [asyncio.ensure_future(read()), asyncio.ensure_future(pump())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        return str(next(iter(done)).result())
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def connect_parent(host: str, port: int, config: UplinkConfig, outbox: Outbox, *,
                         min_backoff_s: float = 0.5, max_backoff_s: float = 30.0,
                         connect_timeout_s: float = 5.0, registration_timeout_s: float = 10.0,
                         clock: Callable[[], float] = time.time,
                         on_session: Callable[[ParentSession], None] | None = None) -> None:
    """Keep a link to the parent at ``host:port`` until cancelled: register as a
    fusion node, then send the message lists put in ``outbox`` (built with the
    current session, given to ``on_session`` on every connection). After a failure,
    wait and retry; the wait doubles from ``min_backoff_s`` to ``max_backoff_s`` and
    resets once the parent accepts a registration."""
    backoff = min_backoff_s
    while True:
        why = ""
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                    connect_timeout_s)
        except (TimeoutError, OSError) as exc:
            why = f"cannot connect: {exc!r}"
        else:
            session = ParentSession(config, start_s=clock())
            if on_session is not None:
                on_session(session)
            try:
                why = await _parent_session(reader, writer, session, outbox,
                                            registration_timeout_s=registration_timeout_s,
                                            clock=clock)
            except (TimeoutError, ConnectionError) as exc:
                why = f"connection error: {exc!r}"
            finally:
                await _close(writer)
            if session.registered:
                backoff = min_backoff_s
        log.warning("parent link %s:%d down (%s); retrying in %.1f s", host, port, why,
                    backoff)
        await asyncio.sleep(backoff)
        backoff = min(max_backoff_s, backoff * 2.0)
