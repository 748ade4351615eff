"""The node service end to end without HTTP: sources feed JSON Lines, the engine runs
on its thread, the hub streams updates, metrics and sensor status follow."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from skyfence import sim
from skyfence.adapters.journal import Source
from skyfence.node.service import NodeService
from skyfence.pipeline import batch_bounds


def _payloads(r: sim.SimResult) -> list[tuple[str, bytes, float]]:  # type: ignore[name-defined]
    """(source id, JSON Lines payload, receive time) per (time, sensor), as a sensor sends."""
    sc, det = r.scenario, r.detections
    out = []
    for a, b in zip(*batch_bounds(det.t), strict=True):
        for s in np.unique(det.sensor[a:b]).tolist():
            spec = sc.sensors[s]
            names = {"radar": ("range_m", "azimuth_rad", "elevation_rad")}.get(
                spec.kind, ("east_m", "north_m", "up_m"))
            rows = [k for k in range(a, b) if det.sensor[k] == s]
            lines = []
            for k in rows:
                obj = {"t": float(det.t[k]), "sensor": spec.id,
                       **{n: float(v) for n, v in zip(names, det.z[k], strict=False)}}
                if spec.kind == "cooperative":
                    obj.update(identity=str(det.identity[k]), category=str(det.category[k]),
                               std_h_m=float(np.sqrt(det.R[k, 0, 0])),
                               std_v_m=float(np.sqrt(det.R[k, 2, 2])))
                lines.append(json.dumps(obj))
            out.append((f"feed-{spec.id}", ("\n".join(lines) + "\n").encode(),
                        float(det.t[a]) + 0.1))
    return out


def test_the_service_streams_the_picture_and_counts_its_inputs() -> None:
    r = sim.build("mixed", seed=0, duration_s=20)
    sources = [Source(id=f"feed-{s.id}", format="jsonl", sensor=s.id) for s in r.scenario.sensors]
    payloads = _payloads(r)
    clock = [payloads[0][2]]

    async def main() -> tuple[list[dict], dict, str, list[dict]]:
        service = NodeService(r.scenario, sources, clock=lambda: clock[0])
        sub = service.hub.subscribe(last_seq=0)
        runner = asyncio.create_task(service.run(tick_s=0.05))
        for sid, payload, t in payloads:
            clock[0] = t
            await service.ingest(sid, payload, t)
        await service.ingest(payloads[0][0], b"this is not json\n", clock[0])
        clock[0] += 5.0  # the window drains on the quiet clock
        got = []
        while True:
            try:
                got.append(await asyncio.wait_for(sub.queue.get(), 1.0))
            except TimeoutError:
                break
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        snap, metrics, sensors = service.snapshot(), service.metrics_text(), service.sensor_status()
        service.close()
        return got, snap, metrics, sensors

    got, snap, metrics, sensors = asyncio.run(main())
    updates = [m for m in got if m["type"] == "update"]
    assert len(updates) >= 30
    assert [m["seq"] for m in got] == list(range(1, len(got) + 1))
    assert snap["tracks"] and snap["seq"] == got[-1]["seq"]
    assert {s["status"] for s in sensors} == {"up"}
    assert 'skyfence_source_up{source="feed-radar"} 1' in metrics
    assert 'skyfence_source_rejected_total{source="feed-radar",reason="line 1' not in metrics
    assert "skyfence_tracks " in metrics and "skyfence_scan_latency_seconds" in metrics
    rejected = [s for s in sensors if s["rejected"]]
    assert len(rejected) == 1 and sum(rejected[0]["rejected"].values()) == 1


def test_an_input_ingested_journaled_is_on_disk_when_ingest_returns(tmp_path) -> None:
    """What a source acknowledges to its sender (a federation message) it has taken with
    journaled=True: by then the input is in the journal, and a node that stops first
    says so instead of leaving the source waiting."""
    from skyfence.adapters.journal import JournalHeader, JournalWriter

    r = sim.build("mixed", seed=0, duration_s=5)
    sources = [Source(id=f"feed-{s.id}", format="jsonl", sensor=s.id) for s in r.scenario.sensors]
    payloads = _payloads(r)
    journal = JournalWriter(tmp_path / "node.journal",
                            JournalHeader(r.scenario, tuple(sources)), durable=True)

    async def main() -> None:
        service = NodeService(r.scenario, sources, clock=lambda: payloads[0][2],
                              journal=journal)
        sid, payload, t = payloads[0]
        # No engine running: the input waits in the queue, not yet journaled.
        waiting = asyncio.create_task(service.ingest(sid, payload, t, journaled=True))
        await asyncio.sleep(0.2)
        assert not waiting.done() and journal.records == 0
        runner = asyncio.create_task(service.run(tick_s=0.05))
        await asyncio.wait_for(waiting, 5.0)
        assert journal.records == 1
        for sid, payload, t in payloads[1:4]:
            await service.ingest(sid, payload, t, journaled=True)
            assert journal.records == payloads.index((sid, payload, t)) + 1
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        service.close()

        # A journal that fails fails the wait of its input, and a node that stops with
        # inputs queued fails theirs: no source is left waiting for ever.
        service = NodeService(r.scenario, sources, clock=lambda: payloads[0][2],
                              journal=journal)

        def broken(*_: object) -> None:
            raise OSError("no space left on device")

        service._decode = broken  # type: ignore[method-assign]
        first = asyncio.create_task(service.ingest(sid, payload, t, journaled=True))
        second = asyncio.create_task(service.ingest(sid, payload, t, journaled=True))
        await asyncio.sleep(0.05)
        with pytest.raises(OSError):
            await service.run(tick_s=0.05)
        with pytest.raises(OSError):
            await asyncio.wait_for(first, 5.0)
        with pytest.raises(ConnectionAbortedError):
            await asyncio.wait_for(second, 5.0)
        service.close()

    asyncio.run(main())
