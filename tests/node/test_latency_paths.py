"""What keeps the node's update latency down without changing what it says: the hub
encodes each message once and keeps only its text; the engine's snapshot rows come
from the alert book's columns, the same rows as one alert at a time."""

from __future__ import annotations

import asyncio
import gc
import json

import numpy as np
import pytest

from skyfence import sim
from skyfence.geo import Origin
from skyfence.node.engine import Engine, alert_row, alert_rows
from skyfence.node.hub import Hub, Message
from skyfence.pipeline import batch_bounds
from skyfence.zones import HeightReference, Limit, Polygon, Restriction, Volume, Zone
from skyfence.zones.sites import Site


def test_a_message_is_encoded_once_and_the_ring_keeps_its_text() -> None:
    async def main() -> None:
        hub = Hub(history=3, client_queue=10)
        a, b = hub.subscribe(last_seq=0), hub.subscribe(last_seq=0)
        update = {"type": "update", "seq": 99, "t": 1.5, "tracks": [{"id": 1, "flags": []}]}
        msg = hub.publish(update)
        # The hub's seq in place of the message's own, where it was.
        assert msg.text == json.dumps({**update, "seq": 1}, separators=(",", ":"))
        assert (await a.queue.get()) is msg and (await b.queue.get()) is msg
        assert msg["seq"] == 1 and msg["type"] == "update" and dict(msg) == {**update, "seq": 1}
        for k in range(4):
            hub.publish({"type": "alert", "k": k})
        assert [m.seq for m in hub._ring] == [3, 4, 5]
        assert all(isinstance(m, Message) and not gc.is_tracked(m.text) for m in hub._ring)
        back = hub.subscribe(last_seq=3)
        assert [json.loads(m.text)["k"] for m in back.backlog] == [2, 3]

    asyncio.run(main())


def test_a_slow_client_gets_the_resync_message_as_before() -> None:
    async def main() -> None:
        hub = Hub(client_queue=2)
        slow = hub.subscribe(last_seq=0)
        for k in range(3):
            hub.publish({"type": "update", "k": k})
        msg = slow.queue.get_nowait()
        assert msg.type == "resync" and slow.queue.empty()
        assert json.loads(msg.text) == {"type": "resync", "seq": 3,
                                        "reason": "client too slow: take a snapshot"}
        assert list(json.loads(msg.text)) == ["type", "seq", "reason"]

    asyncio.run(main())


def _square(origin: Origin, zone_id: str, half_m: float,
            restriction: Restriction = Restriction.PROHIBITED) -> Zone:
    c = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]], float) * half_m
    lat, lon, _ = origin.enu_to_geodetic(np.c_[c, np.zeros(5)])
    return Zone(id=zone_id, name=zone_id, restriction=restriction, volumes=(
        Volume(Polygon((tuple(zip(lon.tolist(), lat.tolist(), strict=True)),)),
               Limit(-1000.0, HeightReference.AGL), Limit(20_000.0, HeightReference.AGL)),))


@pytest.mark.parametrize("preset", ["mixed", "spoofing"])
def test_snapshot_rows_from_the_columns_are_the_rows_of_each_alert(preset: str) -> None:
    r = sim.build(preset, seed=2, duration_s=80)
    origin = r.scenario.origin
    lat, lon, _ = origin.enu_to_geodetic(np.array([0.0, 0.0, 0.0]))
    site = Site(id="HQ", name="hq", lon_deg=float(lon), lat_deg=float(lat), radius_m=800.0)
    engine = Engine(r.scenario, zones=[_square(origin, "IN", 1500.0),
                                       _square(origin, "OUT", 4000.0, Restriction.CONDITIONAL)],
                    sites=[site])
    det = r.detections
    kinds: set[str] = set()
    for k, (a, b) in enumerate(zip(*batch_bounds(det.t), strict=True)):
        engine.push(det.take(slice(a, b)), now=float(det.t[a]))
        rows = engine.snapshot()["alerts"]
        assert rows == [alert_row(x) for x in engine.watch.book.active()]
        assert all(list(row) == list(alert_row(x)) for row, x in
                   zip(rows, engine.watch.book.active(), strict=True))
        kinds |= {row["kind"] for row in rows}
        if k == 40 and rows:
            engine.acknowledge(rows[0]["alert"], by="officer")
        if k == 60:
            engine.set_zones([_square(origin, "OUT", 4000.0, Restriction.CONDITIONAL)])
    assert alert_rows(engine.watch.book) == [alert_row(x) for x in engine.watch.book.active()]
    assert len(kinds) >= 3
