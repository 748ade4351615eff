"""The node as a service: sources feed bytes in, the engine runs on its own thread,
the picture and alerts go out to the stream, the store, webhooks and metrics.

    sources ─► ingest queue (bounded: back-pressure) ─► journal ─► adapter ─► engine
                                                                   (one thread)
          picture / alerts ◄─ hub (stream with sequence numbers), store, webhooks

Everything the API reads comes from here: ``snapshot()`` (rebuilt after each step,
never read from the engine while it works), the store's history, ``metrics_text()``.
A source that fails is marked down, retried by its own transport, and never stops
the others.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skyfence.adapters.journal import JournalWriter, Source
from skyfence.alerts import AlertEvent
from skyfence.ingest import Ingest
from skyfence.node.engine import Engine, EngineConfig, Update
from skyfence.node.hub import Hub
from skyfence.node.outputs import PictureOutput
from skyfence.scenario import Scenario
from skyfence.types import Detections
from skyfence.zones.model import Restriction, Zone
from skyfence.zones.monitor import Ground
from skyfence.zones.sites import Site

log = logging.getLogger("skyfence.node")


@dataclass
class SourceState:
    """What the node knows of one source, for the map and /metrics."""

    source: Source
    ingest: Ingest
    status: str = "waiting"  # waiting | up | down
    detail: str = ""
    inputs: int = 0
    bytes_in: int = 0
    detections: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    last_input_t: float | None = None


class NodeService:
    def __init__(self, scenario: Scenario, sources: Sequence[Source], *,
                 zones: Sequence[Zone] = (), sites: Sequence[Site] = (),
                 ground: Ground | None = None, engine: EngineConfig | None = None,
                 journal: JournalWriter | None = None, store: Any | None = None,
                 alert_sinks: Sequence[Callable[[AlertEvent], object]] = (),
                 outputs: Sequence[PictureOutput] = (), queue_size: int = 10_000,
                 clock: Callable[[], float] = time.time) -> None:
        self.scenario = scenario
        self.engine = Engine(scenario, zones=zones, sites=sites, ground=ground, config=engine)
        self.hub = Hub()
        self.journal = journal
        self.store = store
        self.alert_sinks = list(alert_sinks)
        self.outputs = list(outputs)
        self.clock = clock
        self.sources = {s.id: SourceState(source=s, ingest=Ingest.for_source(s, scenario))
                        for s in sources}
        self._index = {s.id: k for k, s in enumerate(sources)}
        self._queue: asyncio.Queue[tuple[str, bytes, float]] = asyncio.Queue(queue_size)
        self._engine_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")
        self._snapshot: dict[str, Any] = self.engine.snapshot()
        self.scan_latency_s: deque[float] = deque(maxlen=1000)
        self.end_to_end_s: deque[float] = deque(maxlen=1000)
        self.updates = 0
        self.alerts_raised = 0
        self.started_t = clock()
        if store is not None:
            store.put_zones(self.engine.zones, source="configuration")
            store.put_sites(self.engine.sites)

    # ------------------------------------------------------------------ input

    async def ingest(self, source_id: str, payload: bytes, t: float | None = None) -> None:
        """What a source received (``t``: its receive time; now if None). Waits while
        the queue is full: a source that outruns the engine is slowed, not dropped."""
        if source_id not in self.sources:
            raise KeyError(f"unknown source {source_id!r}")
        await self._queue.put((source_id, payload, self.clock() if t is None else t))

    def source_down(self, source_id: str, why: str) -> None:
        st = self.sources[source_id]
        st.status, st.detail = "down", why

    async def run(self, *, tick_s: float = 0.2,
                  now: Callable[[], float] | None = None) -> None:
        """Consume the queue until cancelled; every ``tick_s`` without input, release
        the reorder window by ``now()`` (default the wall clock; a replay gives its
        own)."""
        loop = asyncio.get_running_loop()
        clock = now or self.clock
        try:
            while True:
                # Wake when the oldest held detection may leave the window, not later.
                wait = min(tick_s, max(0.005, self.engine.reorder.next_release_t - clock()))
                try:
                    # Not wait_for: on Python 3.11 it can swallow a cancellation that
                    # arrives as an item does, and the loop would never stop.
                    async with asyncio.timeout(wait):
                        item = await self._queue.get()
                except TimeoutError:
                    updates = await loop.run_in_executor(
                        self._engine_thread, self._step, Detections.empty(), clock(), None)
                    self._publish(updates)
                    continue
                sid, payload, t = item
                det = self._decode(sid, payload, t)
                updates = await loop.run_in_executor(self._engine_thread, self._step, det,
                                                     max(t, clock()), t)
                self._publish(updates)
        finally:
            self._engine_thread.shutdown(wait=False, cancel_futures=True)

    def _decode(self, sid: str, payload: bytes, t: float) -> Detections:
        st = self.sources[sid]
        if self.journal is not None:
            self.journal.append(t, self._index[sid], payload)
        before = len(st.ingest.rejected)
        det = st.ingest.feed(payload, t)
        for r in st.ingest.rejected[before:]:
            st.rejected[reason_key(r.reason)] += 1
        del st.ingest.rejected[:]  # counted; the ingest need not keep them
        st.inputs += 1
        st.bytes_in += len(payload)
        st.detections += len(det)
        st.status, st.last_input_t = "up", t
        return det

    def _step(self, det: Detections, now: float, t_in: float | None
              ) -> tuple[list[tuple[Update, float, float | None]], dict[str, Any] | None]:
        """On the engine thread: push, and build what the loop publishes — the
        snapshot too, here, so that it is never read while the engine changes."""
        t0 = time.perf_counter()
        updates = self.engine.push(det, now=now)
        dt = time.perf_counter() - t0
        snapshot = self.engine.snapshot() if updates else None
        return [(u, dt / max(len(updates), 1), t_in) for u in updates], snapshot

    def _publish(self, result: tuple[list[tuple[Update, float, float | None]],
                                     dict[str, Any] | None]) -> None:
        updates, snapshot = result
        for u, dt, _ in updates:
            self.scan_latency_s.append(dt)
            self.updates += 1
            self.hub.publish(u.to_json())
            for e in u.alerts:
                self.alerts_raised += e.event == "raised"
                self._alert_out(e)
            if self.store is not None and u.tracks:
                self._store_tracks(u)
        if snapshot is not None:
            self._snapshot = snapshot
        if self.outputs and updates:
            breaching = self._breaching()
            for out in self.outputs:
                out.publish(updates[-1][0], breaching)

    def _breaching(self) -> frozenset[int]:
        """Tracks the watch has inside a prohibited zone now (CoT marks a dark one
        suspect)."""
        prohibited = {z.id for z in self.engine.zones if z.restriction == Restriction.PROHIBITED}
        return frozenset(a["track"] for a in self._snapshot.get("alerts", [])
                         if a.get("kind") == "zone_breach" and a.get("zone") in prohibited
                         and a.get("track") is not None)

    async def start_outputs(self) -> None:
        for out in self.outputs:
            await out.start()

    async def close_outputs(self) -> None:
        for out in self.outputs:
            await out.close()

    def _alert_out(self, e: AlertEvent) -> None:
        if self.store is not None:
            self.store.record_alert_event(e)
        for sink in self.alert_sinks:
            try:
                sink(e)
            except Exception as err:  # a sink that fails must not stop the engine
                log.warning("alert sink failed: %s", err)

    def _store_tracks(self, u: Update) -> None:
        rows, store = u.tracks, self.store
        if store is None:
            return
        store.record_tracks(
            u.t, np.array([r["id"] for r in rows], dtype=np.int64),
            np.array([r["lat_deg"] for r in rows]), np.array([r["lon_deg"] for r in rows]),
            np.array([r["height_m"] for r in rows]),
            *(np.array(c) for c in _velocity_columns(rows)),
            np.array([r["class"] for r in rows]),
            ["|".join(r["flags"]) for r in rows], np.array([r["identity"] for r in rows]))

    # ------------------------------------------------------------------ for the API

    def snapshot(self) -> dict[str, Any]:
        return {**self._snapshot, "seq": self.hub.seq}

    async def acknowledge(self, alert_id: int, *, by: str) -> dict[str, Any]:
        loop = asyncio.get_running_loop()

        def ack() -> tuple[AlertEvent, dict[str, Any]]:
            return self.engine.acknowledge(alert_id, by=by), self.engine.snapshot()

        # The snapshot before the message: a client that subscribes in between must
        # not get a snapshot whose seq counts the message but whose alert lacks it.
        event, self._snapshot = await loop.run_in_executor(self._engine_thread, ack)
        self._alert_out(event)
        self.hub.publish({"type": "alert", "alert": event.to_json()})
        return event.to_json()

    async def set_zones(self, zones: Sequence[Zone], *, source: str = "api") -> None:
        loop = asyncio.get_running_loop()

        def replace() -> tuple[list[AlertEvent], dict[str, Any]]:
            return self.engine.set_zones(list(zones)), self.engine.snapshot()

        events, self._snapshot = await loop.run_in_executor(self._engine_thread, replace)
        if self.store is not None:
            self.store.put_zones(self.engine.zones, source=source, replace=True)
        for e in events:
            self._alert_out(e)
            self.hub.publish({"type": "alert", "alert": e.to_json()})
        self.hub.publish({"type": "zones", "count": len(self.engine.zones)})

    def active_alerts(self) -> list[dict[str, Any]]:
        return list(self._snapshot.get("alerts", []))

    def sensor_status(self) -> list[dict[str, Any]]:
        out = []
        for sid, st in self.sources.items():
            spec = self.scenario.sensors[self.scenario.sensor_index()[st.source.sensor]]
            lat, lon, h = self.scenario.origin.enu_to_geodetic(
                np.asarray(spec.position_enu_m, dtype=np.float64))
            out.append({"source": sid, "format": st.source.format, "sensor": spec.id,
                        "kind": spec.kind, "status": st.status, "detail": st.detail,
                        "inputs": st.inputs, "detections": st.detections,
                        "rejected": dict(st.rejected), "last_input_t": st.last_input_t,
                        "lat_deg": float(lat), "lon_deg": float(lon), "height_m": float(h),
                        "max_range_m": None if not np.isfinite(spec.max_range_m)
                        else spec.max_range_m})
        return out

    def metrics_text(self) -> str:
        """Prometheus text exposition of the node's counters and gauges."""
        lines = []

        def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
            lines.append(f"# HELP skyfence_{name} {help_}")
            lines.append(f"# TYPE skyfence_{name} {kind}")
            lines.extend(f"skyfence_{name}{labels} {value:g}" for labels, value in samples)

        src = self.sources.values()
        metric("source_inputs_total", "counter", "Inputs received per source.",
               [(f'{{source="{s.source.id}"}}', s.inputs) for s in src])
        metric("source_bytes_total", "counter", "Bytes received per source.",
               [(f'{{source="{s.source.id}"}}', s.bytes_in) for s in src])
        metric("source_detections_total", "counter", "Detections decoded per source.",
               [(f'{{source="{s.source.id}"}}', s.detections) for s in src])
        metric("source_up", "gauge", "1 when the source is delivering, 0 when down.",
               [(f'{{source="{s.source.id}"}}', float(s.status == "up")) for s in src])
        metric("source_rejected_total", "counter", "Inputs rejected per source and reason.",
               [(f'{{source="{s.source.id}",reason="{r}"}}', c)
                for s in src for r, c in sorted(s.rejected.items())])
        metric("ingest_queue_depth", "gauge", "Inputs waiting for the engine.",
               [("", self._queue.qsize())])
        metric("late_detections_total", "counter",
               "Detections older than what the reorder window had released.",
               [("", self.engine.late)])
        lat = np.asarray(self.scan_latency_s) if self.scan_latency_s else np.zeros(1)
        metric("scan_latency_seconds", "summary", "Engine time per tracker step.",
               [('{quantile="0.5"}', float(np.quantile(lat, 0.5))),
                ('{quantile="0.99"}', float(np.quantile(lat, 0.99))),
                ("_count", self.updates)])
        snap = self._snapshot
        metric("tracks", "gauge", "Tracks shown.", [("", len(snap.get("tracks", [])))])
        metric("alerts_active", "gauge", "Alerts active.", [("", len(snap.get("alerts", [])))])
        metric("alerts_raised_total", "counter", "Alerts raised.", [("", self.alerts_raised)])
        metric("stream_clients", "gauge", "WebSocket clients.", [("", self.hub.clients)])
        for key, help_ in (("pictures", "Pictures an output sent or wrote."),
                           ("skipped", "Pictures an output skipped while busy with one."),
                           ("failed", "Pictures an output failed to send or write.")):
            metric(f"output_{key}_total", "counter", help_,
                   [(f'{{output="{o.name}"}}', o.metrics()[key]) for o in self.outputs])
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        self._engine_thread.shutdown(wait=True)
        if self.journal is not None:
            self.journal.close()
        if self.store is not None:
            self.store.close()


def reason_key(reason: str) -> str:
    """A rejection's reason as a metric label: its first words, without line numbers
    or other counts, so that the labels stay few."""
    text = re.sub(r"^line \d+: ", "", reason).split(":")[0]
    return re.sub(r"\d+", "N", text).replace('"', "'")[:80]


def _velocity_columns(rows: list[dict[str, Any]]) -> tuple[list[float], list[float],
                                                           list[float]]:
    course = np.radians([r["course_deg"] for r in rows])
    speed = np.array([r["speed_mps"] for r in rows])
    return ((speed * np.sin(course)).tolist(), (speed * np.cos(course)).tolist(),
            [r["climb_mps"] for r in rows])
