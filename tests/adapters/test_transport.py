"""The generic TCP transports, with JSON Lines sensors: several senders at once, bad
lines rejected without closing anything, a client that reconnects."""

from __future__ import annotations

import asyncio
import json

from skyfence.adapters.base import Message, Rejected
from skyfence.adapters.jsonl import JsonDetection, JsonlDecoder
from skyfence.adapters.transport import ServerLimits, serve_tcp, stream_tcp

from .test_jsonl import SCENARIO


def _line(k: int) -> bytes:
    return json.dumps({"t": 1000.0 + k, "sensor": "pos", "east_m": float(k), "north_m": 0.0,
                       "up_m": 0.0}).encode() + b"\n"


def test_server_takes_several_sensors_and_rejects_bad_lines() -> None:
    got: dict[str, list[Message | Rejected]] = {}

    async def main() -> None:
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        server = asyncio.create_task(serve_tcp(
            "127.0.0.1", 0, lambda: JsonlDecoder(SCENARIO),
            lambda peer, out: got.setdefault(peer, []).extend(out),
            limits=ServerLimits(idle_timeout_s=5.0), on_listening=ready.set_result))
        port = await ready

        async def sensor(lines: list[bytes]) -> None:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            for chunk in lines:
                w.write(chunk)
                await w.drain()
            w.close()
            await w.wait_closed()

        await asyncio.gather(sensor([_line(k) for k in range(50)]),
                             sensor([_line(1), b"garbage\n", _line(2)[:10], _line(2)[10:]]))
        for _ in range(100):
            if sum(len(v) for v in got.values()) >= 53:
                break
            await asyncio.sleep(0.02)
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)

    asyncio.run(main())
    outs = sorted(got.values(), key=len)
    assert len(outs) == 2
    small, big = outs
    assert len(big) == 50 and all(isinstance(m, JsonDetection) for m in big)
    assert [type(m).__name__ for m in small] == ["JsonDetection", "Rejected", "JsonDetection"]


def test_client_reconnects_and_reads_on() -> None:
    got: list[Message | Rejected] = []

    async def main() -> None:
        served = 0

        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            nonlocal served
            w.write(b"".join(_line(served * 10 + k) for k in range(10)))
            served += 1
            await w.drain()
            w.close()  # drop the client: it must come back

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = asyncio.create_task(stream_tcp("127.0.0.1", port, JsonlDecoder(SCENARIO),
                                                lambda _, out: got.extend(out),
                                                backoff_s=0.05))
        for _ in range(200):
            if len(got) >= 30:
                break
            await asyncio.sleep(0.02)
        client.cancel()
        await asyncio.gather(client, return_exceptions=True)
        server.close()
        await server.wait_closed()

    asyncio.run(main())
    assert len(got) >= 30 and all(isinstance(m, JsonDetection) for m in got)
    east = [m.z[0] for m in got if isinstance(m, JsonDetection)]
    assert east[:30] == [float(k) for k in range(30)]
