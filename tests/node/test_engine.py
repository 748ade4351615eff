"""The node's engine: the same tracks as the file pipeline, updates with sequence
numbers, snapshots, zones replaced with their alerts, acknowledgement, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest

from skyfence import sim
from skyfence.geo import Origin
from skyfence.node.engine import GROUP_FIELDS, TRACK_FIELDS, Engine
from skyfence.pipeline import batch_bounds
from skyfence.track import Tracker
from skyfence.zones import HeightReference, Limit, Polygon, Restriction, Volume, Zone


def _square(origin: Origin, zone_id: str, half_m: float) -> Zone:
    c = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]], float) * half_m
    lat, lon, _ = origin.enu_to_geodetic(np.c_[c, np.zeros(5)])
    return Zone(id=zone_id, name=zone_id, restriction=Restriction.PROHIBITED, volumes=(
        Volume(Polygon((tuple(zip(lon.tolist(), lat.tolist(), strict=True)),)),
               Limit(-1000.0, HeightReference.AGL), Limit(20_000.0, HeightReference.AGL)),))


@pytest.fixture(scope="module")
def mixed() -> sim.SimResult:  # type: ignore[name-defined]
    return sim.build("mixed", seed=1, duration_s=40)


def _feed(engine: Engine, det, chunk: int = 3):  # type: ignore[no-untyped-def]
    ups = []
    starts, ends = batch_bounds(det.t)
    for k in range(0, len(starts), chunk):
        a, b = starts[k], ends[min(k + chunk, len(starts)) - 1]
        ups += engine.push(det.take(slice(a, b)), now=float(det.t[a]))
    return ups + engine.flush()


def test_updates_match_the_tracker_and_carry_every_field(mixed) -> None:  # type: ignore[no-untyped-def]
    engine = Engine(mixed.scenario)
    ups = _feed(engine, mixed.detections)
    assert [u.seq for u in ups] == list(range(1, len(ups) + 1))
    tracker = Tracker.from_scenario(mixed.scenario)
    det = mixed.detections
    for a, b in zip(*batch_bounds(det.t), strict=True):
        last = tracker.step(det.take(slice(a, b)))
    shown = last.tracks.status != 0
    # Updates are picture deltas: folded in order they give every shown track.
    held: dict[int, dict] = {}
    for u in ups:
        for i in u.removed:
            del held[i]
        held.update((r["id"], r) for r in u.tracks)
    assert sorted(held) == sorted(last.tracks.id[shown].tolist())
    fields = [k for k, *_ in TRACK_FIELDS]
    assert all(list(r) == fields for u in ups for r in u.tracks)
    assert all(list(g) == [k for k, *_ in GROUP_FIELDS] for u in ups for g in u.groups)
    json.dumps([u.to_json() for u in ups], allow_nan=False)
    snap = engine.snapshot()
    assert snap["seq"] == ups[-1].seq
    assert {r["id"]: r for r in snap["tracks"]} == held


def test_an_update_carries_the_tracks_that_changed(mixed) -> None:  # type: ignore[no-untyped-def]
    """A track's row is sent when a sensor updated it at the step, when it is new, or
    when its class, flags, group or status changed; every sent row is the track as it
    is in that step's frame, and a row not sent stands unchanged in the frame's terms."""
    engine = Engine(mixed.scenario)
    ups = _feed(engine, mixed.detections, chunk=1)
    sent = total = 0
    seen: set[int] = set()
    for u in ups:
        tr = u.frame.tracks
        assert u.changed is not None and u.changed.shape == (len(tr),)
        ids = [r["id"] for r in u.tracks]
        assert ids == tr.id[u.changed].tolist()
        measured = tr.t_last >= u.t
        new = ~np.isin(tr.id, list(seen))
        assert set(tr.id[measured | new].tolist()) <= set(ids)
        seen |= set(tr.id.tolist())
        sent += len(ids)
        total += len(tr)
    # Some steps leave tracks out: in mixed, sensors see different tracks at a time.
    assert 0 < sent < total


def test_the_same_input_gives_the_same_updates(mixed) -> None:  # type: ignore[no-untyped-def]
    a = [u.to_json() for u in _feed(Engine(mixed.scenario), mixed.detections, chunk=1)]
    b = [u.to_json() for u in _feed(Engine(mixed.scenario), mixed.detections, chunk=5)]
    assert a == b


def test_zones_replaced_and_alerts_acknowledged(mixed) -> None:  # type: ignore[no-untyped-def]
    zone = _square(mixed.scenario.origin, "ALL", 20_000.0)
    engine = Engine(mixed.scenario, zones=[zone])
    ups = _feed(engine, mixed.detections)
    raised = [e for u in ups for e in u.alerts if e.event == "raised" and e.zone == "ALL"]
    assert raised
    active = [a for a in engine.snapshot()["alerts"] if a["zone"] == "ALL"]
    ack = engine.acknowledge(active[0]["alert"], by="officer")
    assert ack.event == "acknowledged"
    snap = {a["alert"]: a for a in engine.snapshot()["alerts"]}
    assert snap[active[0]["alert"]]["acknowledged_by"] == "officer"
    cleared = engine.set_zones([])
    assert {e.alert for e in cleared} == {a["alert"] for a in active}
    assert all("zone ALL removed" in e.reason for e in cleared)
    assert not [a for a in engine.snapshot()["alerts"] if a["zone"] == "ALL"]
    assert np.isfinite(engine.snapshot()["t"])
