"""Thin asyncio transports around any stream decoder: a TCP server that sensors push
to (each connection its own decoder) and a reconnecting TCP client that reads a
sensor's port. The formats with transports of their own (ADS-B feeds, SAPIENT,
ASTERIX over UDP, CoT out) keep them beside their codecs; this is the one the
others — JSON Lines first — use.

Every chunk is fed with its receive time. Bad data never closes a connection (the
decoder rejects and resynchronises); a decoder that has lost the stream (``lost``)
does, and so does a peer silent for ``idle_timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from skyfence.adapters.base import Message, Rejected, StreamDecoder

log = logging.getLogger("skyfence.transport")

Output = Callable[[str, list[Message | Rejected]], object]


def _feeder(decoder: StreamDecoder) -> Callable[[bytes, float], list[Message | Rejected]]:
    if "t" in inspect.signature(decoder.feed).parameters:
        return lambda data, t: decoder.feed(data, t=t)  # type: ignore[call-arg]
    return lambda data, t: decoder.feed(data)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerLimits:
    max_connections: int = 256
    idle_timeout_s: float = 300.0
    read_bytes: int = 1 << 16


async def serve_tcp(host: str, port: int, make_decoder: Callable[[], StreamDecoder],
                    on_output: Output, *, limits: ServerLimits | None = None,
                    clock: Callable[[], float] = time.time,
                    on_listening: Callable[[int], object] | None = None) -> None:
    """Accept sensor connections until cancelled; ``on_output(peer, outputs)`` with each
    non-empty batch a connection's decoder gives. ``on_listening(port)`` once bound
    (port 0 picks a free one)."""
    lim = limits or ServerLimits()
    live: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = "{}:{}".format(*writer.get_extra_info("peername")[:2])
        task = asyncio.current_task()
        if task is None or len(live) >= lim.max_connections:
            log.warning("%s refused: %d connections already", peer, len(live))
            writer.close()
            return
        live.add(task)
        decoder = make_decoder()
        feed = _feeder(decoder)
        try:
            while True:
                data = await asyncio.wait_for(reader.read(lim.read_bytes), lim.idle_timeout_s)
                if not data:
                    break
                out = feed(data, clock())
                if out:
                    on_output(peer, out)
                if getattr(decoder, "lost", False):
                    log.warning("%s: the stream could not be followed; closing", peer)
                    break
        except (TimeoutError, OSError) as err:
            log.info("%s: %s", peer, err or "idle")
        finally:
            live.discard(task)
            out = decoder.close()
            if out:
                on_output(peer, out)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, host, port)
    async with server:
        if on_listening is not None:
            on_listening(server.sockets[0].getsockname()[1])
        try:
            await server.serve_forever()
        finally:
            for task in list(live):
                task.cancel()
            if live:
                await asyncio.gather(*live, return_exceptions=True)


async def stream_tcp(host: str, port: int, decoder: StreamDecoder, on_output: Output, *,
                     backoff_s: float = 1.0, max_backoff_s: float = 30.0,
                     connect_timeout_s: float = 10.0, read_bytes: int = 1 << 16,
                     clock: Callable[[], float] = time.time) -> None:
    """Read a sensor's TCP port into ``decoder`` until cancelled, reconnecting after a
    refusal or a drop with a backoff that doubles while no data comes."""
    feed = _feeder(decoder)
    name = f"{host}:{port}"
    backoff = backoff_s
    while True:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                    connect_timeout_s)
        except (OSError, TimeoutError) as err:
            log.info("%s: cannot connect (%s); again in %.1f s", name, err, backoff)
        else:
            try:
                while data := await reader.read(read_bytes):
                    backoff = backoff_s
                    out = feed(data, clock())
                    if out:
                        on_output(name, out)
            except OSError as err:
                log.info("%s: connection lost (%s)", name, err)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            out = decoder.close()
            if out:
                on_output(name, out)
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2.0, max_backoff_s)
