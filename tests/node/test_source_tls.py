"""A sensor feed over TLS with the sensor's certificate (mutual TLS): the right sensor
is taken, one without a certificate or with another name is refused and counted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from pathlib import Path

import pytest

from skyfence import sim
from skyfence.adapters.journal import Source
from skyfence.errors import InputError
from skyfence.node.config import SourceConfig, SourceTls, parse_config
from skyfence.node.run import tcp_listen
from skyfence.node.service import NodeService


def _line(r: sim.SimResult) -> bytes:  # type: ignore[name-defined]
    z = r.detections.z[0]
    return (json.dumps({"t": float(r.detections.t[0]), "sensor": "radar", "range_m": z[0],
                        "azimuth_rad": z[1], "elevation_rad": z[2]}) + "\n").encode()


async def _send(port: int, payload: bytes, ctx: ssl.SSLContext) -> str:
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                                       server_hostname="localhost")
    except (ssl.SSLError, ConnectionError) as err:
        return f"refused: {type(err).__name__}"
    writer.write(payload)
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.close()
    with contextlib.suppress(ssl.SSLError, ConnectionError):
        await writer.wait_closed()
    return "sent"


@pytest.mark.parametrize(("names", "with_cert", "taken"), [
    (("skyfence-node",), True, True),
    ((), True, True),
    (("radar-7",), True, False),
    (("skyfence-node",), False, False),
])
def test_mutual_tls_sources(certificates: dict[str, Path], names: tuple[str, ...],
                            with_cert: bool, taken: bool) -> None:
    r = sim.build("spread", n_targets=2, seed=0, duration_s=3.0)
    tls = SourceTls(certfile=certificates["server.pem"], keyfile=certificates["server.key"],
                    client_cafile=certificates["ca.pem"], client_names=names)
    sc = SourceConfig(source=Source(id="feed", format="jsonl", sensor="radar"),
                      transport="tcp-listen", host="127.0.0.1", port=0, tls=tls)

    async def main() -> tuple[int, dict[str, int], str]:
        service = NodeService(r.scenario, [sc.source])
        ports: list[int] = []
        task = asyncio.create_task(tcp_listen(service, sc, on_port=ports.append))
        while not ports:
            await asyncio.sleep(0.01)
        client = ssl.create_default_context(cafile=str(certificates["ca.pem"]))
        if with_cert:
            client.load_cert_chain(str(certificates["client.pem"]),
                                   str(certificates["client.key"]))
        outcome = await _send(ports[0], _line(r), client)
        # what the source took is waiting in the service's queue
        queued = service._queue.qsize()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        st = service.sources["feed"]
        service.close()
        return queued, dict(st.rejected), outcome

    queued, rejected, outcome = asyncio.run(main())
    assert (queued == 1) == taken, (queued, rejected, outcome)
    if not taken and with_cert:
        assert rejected == {"unauthenticated sensor": 1}


def test_tls_keys_are_checked() -> None:
    base = {"node": {"origin": {"lat_deg": 47.0, "lon_deg": 8.0, "alt_m": 400.0}},
            "sensors": [{"id": "radar1", "kind": "radar", "position_enu_m": [0, 0, 10],
                         "pd": 0.9, "noise_std": {"range_m": 8.0, "azimuth_rad": 0.003,
                                                  "elevation_rad": 0.005}}]}
    source = {"id": "feed", "format": "jsonl", "sensor": "radar1", "transport": "tcp-connect",
              "port": 7001, "tls": {"certfile": "x.pem"}}
    with pytest.raises(InputError, match="tcp-listen"):
        parse_config({**base, "sources": [source]})
    source = {**source, "transport": "tcp-listen", "tls": {"certfile": "none.pem"}}
    with pytest.raises(InputError, match="does not exist"):
        parse_config({**base, "sources": [source]})
