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
import gc
import logging
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from skyfence.adapters.journal import JournalWriter, Source
from skyfence.alerts import AlertEvent
from skyfence.errors import InputError
from skyfence.ingest import Ingest
from skyfence.node.access import Access
from skyfence.node.engine import Engine, EngineConfig, Update
from skyfence.node.hub import Hub
from skyfence.node.outputs import PictureOutput
from skyfence.node.partners import Releasability, Release
from skyfence.release import FieldPolicy
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
    #: A source of many sensors (SAPIENT): each one's status, detail and detections,
    #: as its transport and the decoded input tell (one row each in sensor_status).
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)


class View:
    """One picture, computed from one release set: the sensors whose data it may use
    (``skyfence.node.partners``). Its own engine, stream hub, store and outputs;
    ``partners`` are those who receive it. A partner with a field policy (``policies``)
    receives it through a ``Release`` (``release_of``) with a hub, snapshot and
    outputs of its own; the others receive the view's."""

    def __init__(self, key: str, scenario: Scenario, sensors: Sequence[str],
                 partners: Sequence[str], *, zones: Sequence[Zone], sites: Sequence[Site],
                 ground: Ground | None, config: EngineConfig | None, store: Any | None,
                 outputs: Sequence[PictureOutput] = (),
                 alert_sinks: Sequence[Callable[[AlertEvent], object]] = (),
                 policies: Mapping[str, FieldPolicy] | None = None,
                 partner_outputs: Mapping[str, Sequence[PictureOutput]] | None = None
                 ) -> None:
        index = scenario.sensor_index()
        keep = [index[s] for s in sensors]
        self.key, self.partners = key, tuple(partners)
        self.sensor_ids = tuple(sensors)
        self.scenario = replace(scenario, sensors=tuple(scenario.sensors[k] for k in keep))
        self.remap = np.full(len(scenario.sensors), -1, dtype=np.int32)
        self.remap[keep] = np.arange(len(keep), dtype=np.int32)
        self.engine = Engine(self.scenario, zones=zones, sites=sites, ground=ground,
                             config=config)
        self.hub = Hub()
        self.store = store
        self.alert_sinks = list(alert_sinks)
        self.snapshot: dict[str, Any] = self.engine.snapshot()
        self.releases: dict[FieldPolicy, Release] = {}
        self.release_of: dict[str, Release] = {}
        self.outputs = list(outputs)
        for p in self.partners:
            policy = (policies or {}).get(p)
            mine = (partner_outputs or {}).get(p, ())
            if policy is None or policy.full:
                self.outputs += mine
                continue
            if policy not in self.releases:
                self.releases[policy] = Release(policy, self.scenario, (), self.snapshot)
            rel = self.release_of[p] = self.releases[policy]
            rel.partners += (p,)
            rel.outputs += mine
        self.scan_latency_s: deque[float] = deque(maxlen=1000)
        self.updates = 0
        self.alerts_raised = 0
        if store is not None:
            store.put_zones(self.engine.zones, source="configuration")
            store.put_sites(self.engine.sites)

    def take(self, det: Detections) -> Detections | None:
        """The detections of this view's sensors, their sensor column in its numbering
        (None when there are none: the view is not stepped at all)."""
        if len(det) == 0:
            return None
        mine = self.remap[det.sensor] >= 0
        if not mine.any():
            return None
        sub = det if mine.all() else det.take(mine)
        return replace(sub, sensor=self.remap[sub.sensor])

    def hub_for(self, partner: str) -> Hub:
        """The stream hub ``partner`` receives."""
        rel = self.release_of.get(partner)
        return self.hub if rel is None else rel.hub

    def all_outputs(self) -> list[PictureOutput]:
        """The view's outputs and its releases'."""
        return [*self.outputs, *(o for r in self.releases.values() for o in r.outputs)]


class NodeService:
    def __init__(self, scenario: Scenario, sources: Sequence[Source], *,
                 zones: Sequence[Zone] = (), sites: Sequence[Site] = (),
                 ground: Ground | None = None, engine: EngineConfig | None = None,
                 journal: JournalWriter | None = None, store: Any | None = None,
                 alert_sinks: Sequence[Callable[[AlertEvent], object]] = (),
                 outputs: Sequence[PictureOutput] = (), queue_size: int = 10_000,
                 clock: Callable[[], float] = time.time,
                 release: Releasability | None = None, home: str | None = None,
                 store_for: Callable[[str], Any] | None = None,
                 access: Access | None = None,
                 view_outputs: Mapping[str, Sequence[PictureOutput]] | None = None) -> None:
        """``release``: partners and what is released to each (default: one partner,
        ``local``, owning everything). ``home``: the partner whose view ``engine``,
        ``hub``, ``store``, ``snapshot()``, ``outputs`` and ``alert_sinks`` are (the
        first partner by default). ``store``: the home view's store; ``store_for(key)``
        makes the other views' (None: they keep no history). ``access``: the API's
        tokens (default none: every caller is the home partner's admin).
        ``view_outputs``: partner → outputs of the view that partner receives (what is
        sent *to* a partner, such as federation, is computed as its picture, and
        released by its field policy)."""
        self.scenario = scenario
        order = [s.id for s in scenario.sensors]
        self.release = release or Releasability.single(order)
        self.home = home or self.release.partners[0].id
        if not self.release.policy(self.home).full:
            raise InputError(f"the home partner {self.home!r} has a field policy",
                             field=f"partners.{self.home}",
                             fix="the node's own partner receives everything: give "
                                 "round_m, round_mps and identity to other partners only")
        self.views: dict[str, View] = {}
        self.view_of: dict[str, View] = {}
        for k, (sensors, partners) in enumerate(self.release.views(order).items()):
            is_home = self.home in partners
            key = "home" if is_home else f"view{k}"
            view = View(key, scenario, sensors, partners, zones=zones, sites=sites,
                        ground=ground, config=engine,
                        store=store if is_home else (store_for(key) if store_for else None),
                        outputs=outputs if is_home else (),
                        alert_sinks=alert_sinks if is_home else (),
                        policies={p: self.release.policy(p) for p in partners},
                        partner_outputs=view_outputs)
            self.views[key] = view
            for p in partners:
                self.view_of[p] = view
        self.home_view = self.view_of[self.home]
        self.access = access or Access((), home=self.home)
        #: The node's broker connection (``skyfence.federation.nats.Federation``), if any.
        self.federation: Any = None
        self.journal = journal
        self.clock = clock
        self.sources = {s.id: SourceState(source=s, ingest=Ingest.for_source(s, scenario))
                        for s in sources}
        self._index = {s.id: k for k, s in enumerate(sources)}
        #: Sources whose sensor pushes its feed to the API (``transport = "http"``).
        self.pushed: set[str] = set()
        self._queue: asyncio.Queue[tuple[str, bytes, float, asyncio.Future[None] | None]] = (
            asyncio.Queue(queue_size))
        self._engine_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")
        self.end_to_end_s: deque[float] = deque(maxlen=1000)
        self.started_t = clock()

    # The home view's parts, as a node of one partner has them.

    @property
    def engine(self) -> Engine:
        return self.home_view.engine

    @property
    def hub(self) -> Hub:
        return self.home_view.hub

    @hub.setter
    def hub(self, hub: Hub) -> None:
        self.home_view.hub = hub

    @property
    def store(self) -> Any | None:
        return self.home_view.store

    @property
    def outputs(self) -> list[PictureOutput]:
        return self.home_view.outputs

    @property
    def alert_sinks(self) -> list[Callable[[AlertEvent], object]]:
        return self.home_view.alert_sinks

    @property
    def _snapshot(self) -> dict[str, Any]:
        return self.home_view.snapshot

    @property
    def scan_latency_s(self) -> deque[float]:
        return self.home_view.scan_latency_s

    @property
    def updates(self) -> int:
        return sum(v.updates for v in self.views.values())

    @property
    def alerts_raised(self) -> int:
        return sum(v.alerts_raised for v in self.views.values())

    def view(self, partner: str) -> View:
        """The view a partner receives (KeyError for an unknown partner)."""
        return self.view_of[partner]

    def hub_for(self, partner: str | None = None) -> Hub:
        """The stream hub a partner receives (the home partner's by default)."""
        return self.hub if partner is None else self.view_of[partner].hub_for(partner)

    # ------------------------------------------------------------------ input

    async def ingest(self, source_id: str, payload: bytes, t: float | None = None, *,
                     journaled: bool = False) -> None:
        """What a source received (``t``: its receive time; now if None). Waits while
        the queue is full: a source that outruns the engine is slowed, not dropped.

        ``journaled``: return only once the input is in the journal (on disk; on a node
        without one, once its adapter has taken it). A source that acknowledges what it
        takes to its sender (a federation stream) waits for this, so that an input
        acknowledged is never lost: after a crash the node replays its journal."""
        if source_id not in self.sources:
            raise KeyError(f"unknown source {source_id!r}")
        done = asyncio.get_running_loop().create_future() if journaled else None
        await self._queue.put((source_id, payload, self.clock() if t is None else t, done))
        if done is not None:
            await done

    def refuse_connection(self, source_id: str, why: str) -> None:
        """A connection to a source that failed its authentication: counted as a
        rejection of the source and written to the audit log."""
        st = self.sources[source_id]
        st.rejected["unauthenticated sensor"] += 1
        if self.store is not None:
            self.store.audit(self.clock(), "", "source.refused",
                             {"source": source_id, "reason": why})

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
        # What is alive now lives as long as the node; a full collection then walks only
        # what the node made since (with 1,000 tracks: full collections of 3 ms instead
        # of 85, the last of the p99 latency's tail).
        gc.freeze()
        try:
            while True:
                # Wake when the oldest held detection may leave a window, not later.
                due = min(v.engine.reorder.next_release_t for v in self.views.values())
                wait = min(tick_s, max(0.005, due - clock()))
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
                sid, payload, t, done = item
                try:
                    det = self._decode(sid, payload, t)
                except BaseException as err:
                    if done is not None and not done.done():
                        done.set_exception(err)
                    raise
                if done is not None and not done.done():
                    done.set_result(None)
                updates = await loop.run_in_executor(self._engine_thread, self._step, det,
                                                     max(t, clock()), t)
                self._publish(updates)
        finally:
            self._engine_thread.shutdown(wait=False, cancel_futures=True)
            # Whoever waits for an input to be journaled learns that it never was.
            while not self._queue.empty():
                *_, waiting = self._queue.get_nowait()
                if waiting is not None and not waiting.done():
                    waiting.set_exception(ConnectionAbortedError("the node stopped before "
                                                                 "journaling this input"))

    def _decode(self, sid: str, payload: bytes, t: float) -> Detections:
        st = self.sources[sid]
        if self.journal is not None:
            self.journal.append(t, self._index[sid], payload)
        before = len(st.ingest.rejected)
        det = st.ingest.feed(payload, t)
        store = self.store if st.source.format == "skyfence-picture" else None
        for r in st.ingest.rejected[before:]:
            st.rejected[reason_key(r.reason)] += 1
            if store is not None:
                # What a partner node sent and we refused (forged, replayed, oversize,
                # out of its area) goes on the record, not only in the counters.
                store.audit(t, st.source.options.get("partner", sid),
                                 "federation.rejected",
                                 {"source": sid, "reason": r.reason, "offset": r.offset})
        del st.ingest.rejected[:]  # counted; the ingest need not keep them
        st.inputs += 1
        st.bytes_in += len(payload)
        st.detections += len(det)
        st.status, st.last_input_t = "up", t
        if st.nodes and len(det):
            ids, counts = np.unique(det.sensor, return_counts=True)
            for k, c in zip(ids.tolist(), counts.tolist(), strict=True):
                row = st.nodes.get(self.scenario.sensors[k].id)
                if row is not None:
                    row["detections"] += c
        return det

    def _step(self, det: Detections, now: float, t_in: float | None) -> _Stepped:
        """On the engine thread: push to each view that may use the detections (an
        input steps no other view, so that nothing of it reaches a partner it is not
        released to, not even its timing), or, on a tick (``t_in`` None), release the
        windows that are due; build what the loop publishes — the snapshots too, here,
        so that one is never read while its engine changes."""
        out: _Stepped = []
        for view in self.views.values():
            if t_in is None:
                if view.engine.reorder.next_release_t > now:
                    continue
                mine = Detections.empty()
            else:
                taken = view.take(det)
                if taken is None:
                    continue
                mine = taken
            t0 = time.perf_counter()
            updates = view.engine.push(mine, now=now)
            dt = time.perf_counter() - t0
            if updates:
                snapshot = view.engine.snapshot()
                out.append((view, [(u, dt / len(updates)) for u in updates], snapshot,
                            [(r, *r.step(updates, snapshot)) for r in view.releases.values()]))
        return out

    def _publish(self, result: _Stepped) -> None:
        for view, updates, snapshot, released in result:
            for u, dt in updates:
                view.scan_latency_s.append(dt)
                view.updates += 1
                view.hub.publish(u.to_json())
                for e in u.alerts:
                    view.alerts_raised += e.event == "raised"
                    self._alert_out(view, e)
                if view.store is not None and u.tracks:
                    _store_tracks(view.store, u)
            view.snapshot = snapshot
            breaching = _breaching(view) if any(
                [view.outputs, *(r.outputs for r in view.releases.values())]) else frozenset()
            for out in view.outputs:
                out.publish(updates[-1][0], breaching)
            for rel, rel_updates, rel_snapshot in released:
                rel.publish(rel_updates, rel_snapshot, breaching)

    async def start_outputs(self) -> None:
        for view in self.views.values():
            for out in view.all_outputs():
                await out.start()

    async def close_outputs(self) -> None:
        for view in self.views.values():
            for out in view.all_outputs():
                await out.close()

    def _alert_out(self, view: View, e: AlertEvent) -> None:
        if view.store is not None:
            view.store.record_alert_event(e)
        for sink in view.alert_sinks:
            try:
                sink(e)
            except Exception as err:  # a sink that fails must not stop the engine
                log.warning("alert sink failed: %s", err)

    # ------------------------------------------------------------------ for the API

    def snapshot(self, partner: str | None = None) -> dict[str, Any]:
        """The picture a partner receives (the home partner's by default)."""
        view = self.home_view if partner is None else self.view_of[partner]
        rel = None if partner is None else view.release_of.get(partner)
        if rel is not None:
            return {**rel.snapshot, "seq": rel.hub.seq}
        return {**view.snapshot, "seq": view.hub.seq}

    async def acknowledge(self, alert_id: int, *, by: str,
                          partner: str | None = None) -> dict[str, Any]:
        """Acknowledge an active alert of a partner's view (the event as that partner
        receives it)."""
        view = self.home_view if partner is None else self.view_of[partner]
        loop = asyncio.get_running_loop()

        def ack() -> tuple[AlertEvent, dict[str, Any], list[tuple[Release, dict[str, Any]]]]:
            event = view.engine.acknowledge(alert_id, by=by)
            snapshot = view.engine.snapshot()
            return event, snapshot, [(r, r.snapshot_of(snapshot))
                                     for r in view.releases.values()]

        # The snapshot before the message: a client that subscribes in between must
        # not get a snapshot whose seq counts the message but whose alert lacks it.
        event, view.snapshot, released = await loop.run_in_executor(self._engine_thread, ack)
        for rel, snapshot in released:
            rel.snapshot = snapshot
        self._alert_out(view, event)
        view.hub.publish({"type": "alert", "alert": event.to_json()})
        for rel, _ in released:
            rel.hub.publish({"type": "alert", "alert": rel.event(event).to_json()})
        mine = None if partner is None else view.release_of.get(partner)
        return (event if mine is None else mine.event(event)).to_json()

    async def set_zones(self, zones: Sequence[Zone], *, source: str = "api") -> None:
        """Replace the zones of every view (zones are configuration, not sensor data:
        every partner watches the same ones)."""
        loop = asyncio.get_running_loop()
        views = list(self.views.values())

        def swap() -> list[tuple[list[AlertEvent], dict[str, Any], list[dict[str, Any]]]]:
            out = []
            for v in views:
                events, snapshot = v.engine.set_zones(list(zones)), v.engine.snapshot()
                out.append((events, snapshot,
                            [r.snapshot_of(snapshot) for r in v.releases.values()]))
            return out

        results = await loop.run_in_executor(self._engine_thread, swap)
        for view, (events, snapshot, released) in zip(views, results, strict=True):
            view.snapshot = snapshot
            rels = list(view.releases.values())
            for rel, rel_snapshot in zip(rels, released, strict=True):
                rel.snapshot = rel_snapshot
            if view.store is not None:
                view.store.put_zones(view.engine.zones, source=source, replace=True)
            for e in events:
                self._alert_out(view, e)
                view.hub.publish({"type": "alert", "alert": e.to_json()})
                for rel in rels:
                    rel.hub.publish({"type": "alert", "alert": rel.event(e).to_json()})
            for hub in (view.hub, *(r.hub for r in rels)):
                hub.publish({"type": "zones", "count": len(view.engine.zones)})

    def active_alerts(self, partner: str | None = None) -> list[dict[str, Any]]:
        return list(self.snapshot(partner).get("alerts", []))

    def sensor_status(self) -> list[dict[str, Any]]:
        out = []
        index = self.scenario.sensor_index()
        rows = [(sid, st, sensor) for sid, st in self.sources.items()
                for sensor in (st.nodes or (st.source.sensor,))]
        for sid, st, sensor in rows:
            spec = self.scenario.sensors[index[sensor]]
            lat, lon, h = self.scenario.origin.enu_to_geodetic(
                np.asarray(spec.position_enu_m, dtype=np.float64))
            state = st.nodes.get(sensor) or {"status": st.status, "detail": st.detail,
                                             "detections": st.detections}
            out.append({"source": sid, "format": st.source.format, "sensor": spec.id,
                        "kind": spec.kind, **state, "inputs": st.inputs,
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
        metric("sensor_up", "gauge", "1 when a sensor of a source of many (a SAPIENT node) "
               "is registered and connected, 0 otherwise.",
               [(f'{{source="{s.source.id}",sensor="{k}"}}', float(n["status"] == "up"))
                for s in src for k, n in s.nodes.items()])
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
                   [(f'{{output="{o.name}"}}', o.metrics()[key])
                    for o in self.home_view.all_outputs()])
        views = self.views.values()
        metric("view_tracks", "gauge", "Tracks shown per view (release set).",
               [(f'{{view="{v.key}"}}', len(v.snapshot.get("tracks", []))) for v in views])
        metric("view_updates_total", "counter", "Tracker steps per view.",
               [(f'{{view="{v.key}"}}', v.updates) for v in views])
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        self._engine_thread.shutdown(wait=True)
        if self.journal is not None:
            self.journal.close()
        for view in self.views.values():
            if view.store is not None:
                view.store.close()


def reason_key(reason: str) -> str:
    """A rejection's reason as a metric label: its first words, without line numbers
    or other counts, so that the labels stay few."""
    text = re.sub(r"^line \d+: ", "", reason).split(":")[0]
    return re.sub(r"\d+", "N", text).replace('"', "'")[:80]


_Stepped = list[tuple[View, list[tuple[Update, float]], dict[str, Any],
                     list[tuple[Release, list[Update], dict[str, Any]]]]]


def _breaching(view: View) -> frozenset[int]:
    """Tracks a view's watch has inside a prohibited zone now (CoT marks a dark one
    suspect)."""
    prohibited = {z.id for z in view.engine.zones if z.restriction == Restriction.PROHIBITED}
    return frozenset(a["track"] for a in view.snapshot.get("alerts", [])
                     if a.get("kind") == "zone_breach" and a.get("zone") in prohibited
                     and a.get("track") is not None)


def _store_tracks(store: Any, u: Update) -> None:
    rows = u.tracks
    store.record_tracks(
        u.t, np.array([r["id"] for r in rows], dtype=np.int64),
        np.array([r["lat_deg"] for r in rows]), np.array([r["lon_deg"] for r in rows]),
        np.array([r["height_m"] for r in rows]),
        *(np.array(c) for c in _velocity_columns(rows)),
        np.array([r["class"] for r in rows]),
        ["|".join(r["flags"]) for r in rows], np.array([r["identity"] for r in rows]),
        group=np.array([-1 if r.get("group") is None else r["group"] for r in rows],
                       dtype=np.int64))


def _velocity_columns(rows: list[dict[str, Any]]) -> tuple[list[float], list[float],
                                                           list[float]]:
    course = np.radians([r["course_deg"] for r in rows])
    speed = np.array([r["speed_mps"] for r in rows])
    return ((speed * np.sin(course)).tolist(), (speed * np.cos(course)).tolist(),
            [r["climb_mps"] for r in rows])
