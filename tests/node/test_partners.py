"""Releasability through fusion: what a partner receives is computed from the sensors
released to it alone. Adding, removing or changing any data of a sensor not released
to partner P leaves P's stream (every update and alert event), its snapshot and its
stored history and alerts bit-identical — also when P has a field policy (positions to a
grid, no identities), for what P does receive."""

from __future__ import annotations

import dataclasses
import functools
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from skyfence import sim
from skyfence.adapters.journal import Source
from skyfence.errors import InputError
from skyfence.node.partners import Partner, Releasability
from skyfence.node.service import NodeService
from skyfence.pipeline import batch_bounds
from skyfence.release import FULL, FieldPolicy, release_alert_rows, release_points
from skyfence.store.sqlite import SqliteStore
from skyfence.types import Detections
from skyfence.zones import HeightReference, Limit, Polygon, Restriction, Volume, Zone

PARTNERS = ("army", "police", "airport")
#: A field policy: positions to a 1 km grid, velocities to 5 m/s, no identities.
COARSE = FieldPolicy(round_m=1000.0, round_mps=5.0, identity=False)


def _zone(origin: Any) -> Zone:
    c = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]], float) * 1_500.0
    lat, lon, _ = origin.enu_to_geodetic(np.c_[c, np.zeros(5)])
    return Zone(id="CENTRE", name="centre", restriction=Restriction.PROHIBITED, volumes=(
        Volume(Polygon((tuple(zip(lon.tolist(), lat.tolist(), strict=True)),)),
               Limit(-1000.0, HeightReference.AGL), Limit(5000.0, HeightReference.AGL)),))


@functools.cache
def _scenario_run() -> Any:
    """The data of every test here (built once; not a fixture: Hypothesis would write
    the whole run into each example's description)."""
    return sim.build("fusion", n_targets=12, seed=4, duration_s=14.0)


@pytest.fixture
def run() -> Any:
    return _scenario_run()


def _stream(result: Any, release: Releasability, partner: str, det: Detections,
            store_dir: Path | None = None) -> tuple[list[str], str] | tuple[list[str], str, str]:
    """Feed ``det`` scan by scan through a service's engine path, as ``run`` does (one
    step per input, a tick after each); P's stream messages and snapshot as JSON (and,
    with ``store_dir``, what P reads of its store, released by its field policy: its
    track history and alert records)."""
    sc = result.scenario
    stores: dict[str, SqliteStore] = {}

    def store_for(key: str) -> SqliteStore:
        assert store_dir is not None
        stores[key] = SqliteStore(store_dir / f"{key}.db")
        return stores[key]

    service = NodeService(sc, [Source(id=s.id, format="jsonl", sensor=s.id)
                               for s in sc.sensors],
                          zones=[_zone(sc.origin)], release=release,
                          store=None if store_dir is None else store_for("home"),
                          store_for=None if store_dir is None else store_for)
    sub = service.hub_for(partner).subscribe(last_seq=0)
    for a, b in zip(*batch_bounds(det.t), strict=True):
        for s in np.unique(det.sensor[a:b]).tolist():
            one = det.take(a + np.flatnonzero(det.sensor[a:b] == s))
            t = float(det.t[a]) + 0.05
            service._publish(service._step(one, t, t))
        tick = float(det.t[a]) + 0.5
        service._publish(service._step(Detections.empty(), tick, None))
    end = float(result.detections.t[-1]) + 5.0  # not of det: hidden data must not move it
    service._publish(service._step(Detections.empty(), end, None))
    msgs = []
    while not sub.queue.empty():
        msgs.append(json.dumps(dict(sub.queue.get_nowait()), sort_keys=True))
    snap = json.dumps(service.snapshot(partner), sort_keys=True)
    store = service.view(partner).store
    if store is None:
        service.close()
        return msgs, snap
    store.flush()
    every = result.detections.t  # the run's span, whatever was taken out of ``det``
    t0, t1 = float(every.min()) - 10.0, float(every.max()) + 10.0
    policy = release.policy(partner)
    history = release_points(
        store.history_in_area((-180.0, -90.0, 180.0, 90.0), since_t=t0, until_t=t1), policy)
    alerts = release_alert_rows(store.alerts(limit=10_000), policy)
    for a in alerts:
        a.pop("run", None)  # a counter of the store's openings, not of the data
    service.close()
    return msgs, snap, json.dumps([history, alerts], sort_keys=True, default=str)


def _tamper(det: Detections, sensors: list[int], how: str, rng: np.random.Generator
            ) -> Detections:
    """``det`` with the rows of ``sensors`` removed, moved, or doubled with fakes."""
    theirs = np.isin(det.sensor, sensors)
    if how == "remove":
        return det.take(~theirs)
    if how == "move":
        z = det.z.copy()
        z[theirs] += rng.normal(0.0, 0.01, size=z[theirs].shape) * np.abs(z[theirs]).clip(1)
        return dataclasses.replace(det, z=z)
    # "add": every row of theirs again, a little later, somewhere else
    extra = det.take(theirs)
    extra = dataclasses.replace(extra, t=extra.t + 0.3, z=extra.z * 1.01)
    both = Detections.concatenate([det, extra])
    return both.take(np.argsort(both.t, kind="stable"))


N_SENSORS = 4  # the fusion preset: radar, radar2d, rf, remote_id
_partner = st.sampled_from(PARTNERS)


@settings(max_examples=6, deadline=None)
@given(owners=st.tuples(*[_partner] * N_SENSORS),
       releases=st.tuples(*[st.frozensets(_partner)] * N_SENSORS),
       partner=_partner, how=st.sampled_from(["remove", "move", "add"]),
       seed=st.integers(0, 2**32 - 1),
       policies=st.tuples(*[st.sampled_from([FULL, COARSE])] * (len(PARTNERS) - 1)))
# At least once with a field policy on the partner, and data hidden from it.
@example(owners=("army", "army", "police", "airport"),
         releases=(frozenset({"police"}), frozenset(), frozenset(), frozenset()),
         partner="police", how="move", seed=1, policies=(COARSE, FULL))
def test_data_not_released_to_a_partner_never_changes_what_it_receives(
        owners: tuple[str, ...], releases: tuple[frozenset[str], ...], partner: str,
        how: str, seed: int, policies: tuple[FieldPolicy, ...]) -> None:
    run = _scenario_run()
    sc = run.scenario
    ids = [s.id for s in sc.sensors]
    assert len(ids) == N_SENSORS
    # The first partner is the home one: it receives everything of its view in full.
    rel = Releasability(tuple(Partner(p, policy=pol) for p, pol in zip(
                            PARTNERS, (FULL, *policies), strict=True)),
                        dict(zip(ids, owners, strict=True)),
                        dict(zip(ids, releases, strict=True)))
    hidden = [k for k, s in enumerate(ids) if partner not in rel.released_to(s)]
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
        base = _stream(run, rel, partner, run.detections, Path(one))
        changed = run.detections if not hidden else _tamper(run.detections, hidden, how, rng)
        assert _stream(run, rel, partner, changed, Path(two)) == base
    # And the partner's picture is not empty when the radar is released to it: the
    # test compares pictures, not two empty streams. (A lone direction finder starts
    # no track.)
    if "radar" in rel.sensors_for(partner, ids):
        assert any('"tracks": [{' in m for m in base[0])
        assert len(json.loads(base[2])[0]) > 50  # and stored history to compare


def test_a_released_sensor_does_change_the_picture(run: Any) -> None:
    """The converse, so that the property above cannot pass by accident: data of a
    sensor that *is* released to P changes what P receives."""
    sc = run.scenario
    ids = [s.id for s in sc.sensors]
    rel = Releasability(tuple(Partner(p) for p in PARTNERS), dict.fromkeys(ids, "army"),
                        {s: frozenset({"police"}) for s in ids})
    base = _stream(run, rel, "police", run.detections)
    radar = ids.index("radar")
    assert _stream(run, rel, "police", _tamper(run.detections, [radar], "remove",
                                                np.random.default_rng(0))) != base
    # airport receives nothing: an empty picture, whatever the data.
    empty = _stream(run, rel, "airport", run.detections)
    assert empty[0] == [] and json.loads(empty[1])["tracks"] == []


def test_a_field_policy_releases_the_same_picture_coarser(run: Any) -> None:
    """Two partners of one view, one with a field policy: the same tracks, alerts and
    groups, on a grid and without identities, for that one alone."""
    sc = run.scenario
    ids = [s.id for s in sc.sensors]
    rel = Releasability((Partner("army"), Partner("police", policy=COARSE)),
                        dict.fromkeys(ids, "army"), {s: frozenset({"police"}) for s in ids})
    full = [json.loads(m) for m in _stream(run, rel, "army", run.detections)[0]]
    coarse = [json.loads(m) for m in _stream(run, rel, "police", run.detections)[0]]
    assert [m["type"] for m in full] == [m["type"] for m in coarse]
    updates = [(a, b) for a, b in zip(full, coarse, strict=True) if a["type"] == "update"]
    assert sum(len(a["tracks"]) for a, _ in updates) > 100
    cell = np.degrees(1000.0 / 6_371_000.0)
    identities = 0
    for a, b in updates:
        assert [t["id"] for t in a["tracks"]] == [t["id"] for t in b["tracks"]]
        assert [g["members"] for g in a["groups"]] == [g["members"] for g in b["groups"]]
        assert [e["alert"] for e in a["alerts"]] == [e["alert"] for e in b["alerts"]]
        identities += sum(t["identity"] != "" for t in a["tracks"])
        assert all(t["identity"] == "" for t in b["tracks"])
        rows = b["tracks"] + b["groups"] + [e for e in b["alerts"] if e["lat_deg"] is not None]
        if rows:
            lat = np.array([r["lat_deg"] for r in rows])
            h = np.array([r["height_m"] for r in rows])
            assert np.allclose(lat / cell, np.round(lat / cell), atol=1e-4)
            assert np.allclose(h / 1000.0, np.round(h / 1000.0), atol=1e-4)
        # Within half a cell of the full position, with a covariance that says so.
        la = np.array([t["lat_deg"] for t in a["tracks"]])
        lb = np.array([t["lat_deg"] for t in b["tracks"]])
        assert (np.abs(la - lb) <= cell / 2 + 1e-9).all()
        assert all(t["sd_h_m"] >= 288.6 for t in b["tracks"])
        assert all(abs(t["climb_mps"] / 5.0 - round(t["climb_mps"] / 5.0)) < 1e-6
                   for t in b["tracks"])
    assert identities > 0  # the home partner has them: there was something to drop


def test_partners_sharing_a_release_set_share_one_view(run: Any) -> None:
    sc = run.scenario
    ids = [s.id for s in sc.sensors]
    rel = Releasability(tuple(Partner(p) for p in PARTNERS),
                        {**dict.fromkeys(ids, "army"), "remote_id": "police"},
                        {**{s: frozenset({"police", "airport"}) for s in ids},
                         "remote_id": frozenset({"army"})})
    service = NodeService(sc, [], release=rel)
    # remote_id is released to army (owner police): army and police see everything,
    # airport all but remote_id. Two views, not three.
    assert len(service.views) == 2
    assert service.view("army") is service.view("police")
    assert service.view("airport").sensor_ids == tuple(s for s in ids if s != "remote_id")
    service.close()


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"partners": (Partner("Army"),)}, "partners.id"),
    ({"partners": (Partner("a"), Partner("a"))}, "partners.id"),
    ({"owner": {"radar": "navy"}}, "sensors.radar.owner"),
    ({"release": {"radar": frozenset({"navy"})}}, "sensors.radar.release"),
])
def test_bad_release_configuration_is_named(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"partners": (Partner("army"),), "owner": {"radar": "army"},
                            "release": {}}
    args.update(kwargs)
    with pytest.raises(InputError) as err:
        Releasability(args["partners"], args["owner"], args["release"])
    assert field in str(err.value)
