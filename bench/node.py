"""The node end to end: from an input reaching the node to its update (and alerts) on
the WebSocket, and how many live tracks it holds.

``python bench/node.py latency [--targets 1000] [--seconds 60]``: a node (SQLite
store, the API on uvicorn, a WebSocket client) over the ``spread`` scenario with a
prohibited zone over its middle; a feeder sends each radar scan as JSON Lines at
real time (1 Hz) over the node's ingest; the client notes when each update arrives.
Latency = arrival on the WebSocket − the moment the scan's input was handed to the
node; p50/p99 over the run, and for the updates that carry alert events. The target,
p99 under 250 ms at 1,000 tracks, is measured with ``--window-s 0.1``. Full garbage
collections stop every thread for as long as they take: their count and the longest
are reported (``gc_full``, ``gc_full_max_ms``).

``python bench/node.py load [--targets 10000] [--scan-s 2] [--seconds 60]``: the same
with N targets scanned every ``--scan-s`` (10,000 every 2 s = 5,000 inputs/s): does
the node keep up (lag of the last update behind the input), and its peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from skyfence import sim
from skyfence.adapters.journal import Source
from skyfence.node.run import jsonl_payloads
from skyfence.node.service import NodeService
from skyfence.zones import HeightReference, Limit, Polygon, Restriction, Volume, Zone


def _zone(origin, half_m: float) -> Zone:  # type: ignore[no-untyped-def]
    c = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]], float) * half_m
    lat, lon, _ = origin.enu_to_geodetic(np.c_[c, np.zeros(5)])
    return Zone(id="CENTRE", name="centre", restriction=Restriction.PROHIBITED, volumes=(
        Volume(Polygon((tuple(zip(lon.tolist(), lat.tolist(), strict=True)),)),
               Limit(-1000.0, HeightReference.AGL), Limit(5000.0, HeightReference.AGL)),))


async def _run(targets: int, seconds: float, scan_s: float, window_s: float
               ) -> dict[str, float]:
    import uvicorn
    import websockets

    from skyfence.server.app import create_app
    from skyfence.store.sqlite import SqliteStore

    r = sim.build("spread", n_targets=targets, seed=0, duration_s=seconds + 5)
    scenario = r.scenario
    payloads = jsonl_payloads(scenario, r.detections)
    # Keep one scan every scan_s of data time.
    t0 = payloads[0][0]
    payloads = [p for p in payloads if round((p[0] - t0) / scan_s, 6) % 1 == 0]
    tmp = tempfile.mkdtemp(prefix="skyfence-bench-")
    store = SqliteStore(Path(tmp) / "node.db")
    sources = [Source(id=f"sim-{s.id}", format="jsonl", sensor=s.id) for s in scenario.sensors]
    offset = time.time() - t0  # data time runs with the wall clock
    from skyfence.node.engine import EngineConfig

    service = NodeService(scenario, sources,
                          zones=[_zone(scenario.origin, 300.0 * targets**0.5)], store=store,
                          engine=EngineConfig(window_s=window_s),
                          clock=lambda: time.time() - offset)
    app = create_app(service)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="off"))
    tasks = [asyncio.create_task(service.run()), asyncio.create_task(server.serve())]
    while not server.started:
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    handed: dict[float, float] = {}
    lat, lat_alert, lag = [], [], []
    n_tracks = 0
    held: set[int] = set()  # the live tracks, from the picture deltas

    async def client() -> None:
        nonlocal n_tracks
        async with websockets.connect(f"ws://127.0.0.1:{port}/api/v1/stream",
                                      max_size=2**28) as ws:
            async for raw in ws:
                now = time.time()
                msg = json.loads(raw)
                if msg.get("type") == "snapshot":
                    held.clear()
                if msg.get("type") not in ("update", "snapshot"):
                    continue
                held.difference_update(msg.get("removed", []))
                held.update(r["id"] for r in msg["tracks"])
                n_tracks = len(held)
                if msg.get("type") != "update":
                    continue
                t = msg["t"]
                if t in handed:
                    lat.append(now - handed[t])
                    if msg["alerts"]:
                        lat_alert.append(now - handed[t])
                lag.append(now - offset - t)

    full_gc: list[float] = []
    started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        elif info["generation"] == 2:
            full_gc.append(time.perf_counter() - started[0])

    reader = asyncio.create_task(client())
    gc.callbacks.append(on_gc)
    await asyncio.sleep(0.5)
    for t, sid, payload in payloads:
        wait = t + offset - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        handed.setdefault(t, time.time())
        await service.ingest(sid, payload, t)
    await asyncio.sleep(3.0)
    gc.callbacks.remove(on_gc)
    reader.cancel()
    server.should_exit = True
    tasks[0].cancel()
    await asyncio.gather(reader, *tasks, return_exceptions=True)
    step_ms = 1e3 * np.asarray(service.scan_latency_s) if service.scan_latency_s else np.zeros(1)
    service.close()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    a = np.asarray(lat) * 1e3 if lat else np.full(1, np.nan)
    al = np.asarray(lat_alert) * 1e3 if lat_alert else np.full(1, np.nan)
    inputs = sum(p[2].count(b"\n") for p in payloads) / seconds
    return {"targets": targets, "inputs_per_s": inputs, "updates": len(lat),
            "tracks_last": n_tracks, "p50_ms": float(np.percentile(a, 50)),
            "p99_ms": float(np.percentile(a, 99)), "alert_updates": len(lat_alert),
            "alert_p99_ms": float(np.percentile(al, 99)),
            "lag_last_s": float(lag[-1]) if lag else float("nan"),
            "lag_max_s": float(max(lag)) if lag else float("nan"), "peak_mib": peak_mib,
            "engine_step_p50_ms": float(np.percentile(step_ms, 50)),
            "engine_step_p99_ms": float(np.percentile(step_ms, 99)),
            "gc_full": len(full_gc), "gc_full_max_ms": 1e3 * max(full_gc, default=0.0)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=("latency", "load"))
    ap.add_argument("--targets", type=int, default=None)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--scan-s", type=float, default=None)
    ap.add_argument("--window-s", type=float, default=1.0,
                    help="the node's reorder window (default 1 s, the node's default)")
    args = ap.parse_args(argv)
    targets = args.targets or (1000 if args.mode == "latency" else 10_000)
    scan_s = args.scan_s or (1.0 if args.mode == "latency" else 2.0)
    out = asyncio.run(_run(targets, args.seconds, scan_s, args.window_s))
    out["window_s"] = args.window_s
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
