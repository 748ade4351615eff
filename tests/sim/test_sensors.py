from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from skyfence.geo import Origin
from skyfence.scenario import (
    Region,
    Scenario,
    SensorSpec,
    read_detections,
    read_scenario,
    write_detections,
    write_scenario,
)
from skyfence.sim.cooperative import Transmitter, Transmitters
from skyfence.sim.motion import TargetStates
from skyfence.sim.sensors import canonical_time, in_cover, observe, scan_times
from skyfence.types import Detections

ORIGIN = Origin(lat_deg=47.45, lon_deg=8.56, alt_m=480.0)
START = 1717243200.0


def _scenario(**kw: object) -> Scenario:
    radar = SensorSpec(id="radar", kind="radar", position_enu_m=(0.0, 0.0, 20.0), pd=1.0,
                       noise_std=(5.0, 0.005, 0.008), clutter_per_scan=3.0,
                       max_range_m=20_000.0, scan_period_s=1.0)
    locator = SensorSpec(id="loc", kind="position", position_enu_m=(0.0, 0.0, 0.0), pd=1.0,
                         noise_std=(10.0, 10.0, 10.0), clutter_per_scan=1.0,
                         max_range_m=20_000.0, scan_period_s=1.5, extra={"scan_offset_s": 0.5})
    args: dict[str, object] = {
        "name": "t", "origin": ORIGIN, "sensors": (radar, locator),
        "region": Region((-5000.0, 5000.0), (-5000.0, 5000.0), (0.0, 500.0)),
    }
    args.update(kw)
    return Scenario(**args)  # type: ignore[arg-type]


def test_scan_times_period_offset_and_end() -> None:
    sc = _scenario()
    radar_t = scan_times(sc, sc.sensors[0], start_s=START, duration_s=10.0)
    loc_t = scan_times(sc, sc.sensors[1], start_s=START, duration_s=10.0)
    np.testing.assert_array_equal(radar_t - START, np.arange(10.0))
    np.testing.assert_allclose(loc_t - START, [0.5, 2.0, 3.5, 5.0, 6.5, 8.0, 9.5])
    # Every time survives 6-decimal text exactly.
    for t in np.concatenate([radar_t, loc_t]):
        assert float(f"{t:.6f}") == t == float(repr(float(t)))


def test_scan_period_falls_back_to_the_scenario() -> None:
    sc = _scenario(scan_period_s=2.0)
    s = sc.sensors[0]
    no_period = SensorSpec(id=s.id, kind=s.kind, position_enu_m=s.position_enu_m, pd=s.pd,
                           noise_std=s.noise_std)
    assert scan_times(sc, no_period, start_s=START, duration_s=7.0).size == 4
    with pytest.raises(ValueError, match="no scan period"):
        scan_times(_scenario(), no_period, start_s=START, duration_s=7.0)


def test_canonical_time() -> None:
    t = START + 0.1 + 0.2
    assert canonical_time(t) == float(f"{t:.6f}")


def test_observe_sorts_and_labels_detections() -> None:
    sc = _scenario()
    scans = tuple(scan_times(sc, s, start_s=START, duration_s=6.0) for s in sc.sensors)
    times = np.unique(np.concatenate(scans))
    n = 5
    pos = np.zeros((times.size, n, 3))
    pos[:, :, 0] = np.linspace(1000, 3000, n)
    pos[:, :, 2] = 200.0
    alive = np.ones((times.size, n), dtype=bool)
    alive[:, 4] = False  # not there: never detected
    states = TargetStates(pos=pos, vel=np.zeros_like(pos), alive=alive)
    ids = np.arange(10, 15, dtype=np.int64)
    det, who = observe(sc, times, states, ids, scans, seed=1)
    key = det.t * 10 + det.sensor
    assert np.all(np.diff(key) >= 0)
    assert set(who[who >= 0].tolist()) == {10, 11, 12, 13}
    # pd 1: every live target in every scan of both sensors.
    assert np.count_nonzero(who >= 0) == 4 * (scans[0].size + scans[1].size)
    radar_rows = det.sensor == 0
    assert np.isnan(det.z).sum() == 0
    np.testing.assert_array_equal(det.R[radar_rows], np.broadcast_to(sc.sensors[0].R,
                                                                       (radar_rows.sum(), 3, 3)))
    again, who2 = observe(sc, times, states, ids, scans, seed=1)
    np.testing.assert_array_equal(det.z, again.z)
    np.testing.assert_array_equal(who, who2)
    other, _ = observe(sc, times, states, ids, scans, seed=2)
    assert len(other) != len(det) or not np.array_equal(other.z, det.z)


# --------------------------------------------------------------------------- every kind

DEG = math.pi / 180.0
NAN3 = (math.nan, math.nan, math.nan)


def _all_kinds() -> Scenario:
    return Scenario(
        name="kinds", origin=ORIGIN, scan_period_s=1.0,
        region=Region((-6000.0, 6000.0), (-6000.0, 6000.0), (0.0, 600.0)),
        sensors=(
            SensorSpec(id="radar", kind="radar", position_enu_m=(0.0, 0.0, 20.0), pd=0.9,
                       noise_std=(5.0, 0.005, 0.008), clutter_per_scan=2.0,
                       max_range_m=10_000.0),
            SensorSpec(id="r2", kind="radar2d", position_enu_m=(500.0, 0.0, 15.0), pd=0.9,
                       noise_std=(10.0, 0.01, 0.0), clutter_per_scan=2.0,
                       max_range_m=10_000.0, scan_period_s=2.0),
            SensorSpec(id="df", kind="bearing", position_enu_m=(-800.0, 600.0, 10.0), pd=0.9,
                       noise_std=(1.5 * DEG, 0.0, 0.0), clutter_per_scan=1.0,
                       max_range_m=9_000.0, bearing_dim=1, modality="rf",
                       extra={"scan_offset_s": 0.5}),
            SensorSpec(id="eo", kind="bearing", position_enu_m=(800.0, 600.0, 15.0), pd=0.9,
                       noise_std=(0.2 * DEG, 0.2 * DEG, 0.0), clutter_per_scan=1.0,
                       max_range_m=6_000.0, bearing_dim=2, modality="eo"),
            SensorSpec(id="loc", kind="position", position_enu_m=(0.0, 0.0, 0.0), pd=0.8,
                       noise_std=(10.0, 10.0, 10.0), clutter_per_scan=1.0,
                       max_range_m=10_000.0, scan_period_s=1.5),
            SensorSpec(id="rid", kind="cooperative", position_enu_m=(0.0, 0.0, 10.0), pd=0.9,
                       noise_std=NAN3, clutter_per_scan=3.0, max_range_m=8_000.0,
                       extra={"protocol": "remote_id"}),
            SensorSpec(id="adsb", kind="cooperative", position_enu_m=(0.0, 0.0, 10.0),
                       pd=0.9, noise_std=NAN3, max_range_m=100_000.0,
                       extra={"protocol": "adsb", "scan_offset_s": 0.25}),
        ),
    )


def _world(n_t: int, times: np.ndarray) -> tuple[TargetStates, np.ndarray, np.ndarray,
                                                 Transmitters]:
    """Targets 2-5 km out, circling slowly; even ids are drones (emit RF), odd are not."""
    k = np.arange(n_t)
    ang = 2 * math.pi * k / n_t + 0.01 * (times - START)[:, None]
    r = 2000.0 + 300.0 * k
    pos = np.stack([r * np.sin(ang), r * np.cos(ang), np.broadcast_to(100.0 + 20 * k, ang.shape)],
                   axis=-1)
    states = TargetStates(pos=pos, vel=np.zeros_like(pos), alive=np.ones(ang.shape, dtype=bool))
    ids = np.arange(1, n_t + 1, dtype=np.int64)
    emits = ids % 2 == 0
    tx = Transmitters.of([
        Transmitter(2, "rid:SKYFA0000000002", "2", 4.0, 5.0),
        Transmitter(4, "rid:SKYFA0000000004", "2", 3.0, 6.0, (500.0, 0.0, 0.0)),
        Transmitter(5, "icao:4B43AC", "A7", 12.0, 15.0),
    ])
    return states, ids, emits, tx


@dataclass(frozen=True, slots=True)
class _Observed:
    sc: Scenario
    times: np.ndarray
    states: TargetStates
    tx: Transmitters
    det: Detections
    who: np.ndarray


def _observe_all(seed: int = 3, duration_s: float = 20.0) -> _Observed:
    sc = _all_kinds()
    scans = tuple(scan_times(sc, s, start_s=START, duration_s=duration_s) for s in sc.sensors)
    times = np.unique(np.concatenate(scans))
    states, ids, emits, tx = _world(8, times)
    det, who = observe(sc, times, states, ids, scans, seed, emits_rf=emits, transmitters=tx)
    return _Observed(sc, times, states, tx, det, who)


def test_every_kind_fills_its_components_and_covariance() -> None:
    o = _observe_all()
    sc, tx, det, who = o.sc, o.tx, o.det, o.who
    index = sc.sensor_index()
    for spec in sc.sensors:
        mine = det.sensor == index[spec.id]
        assert mine.any(), spec.id
        assert np.all(det.z[mine, spec.dim:] == 0.0), spec.id
        if spec.kind == "cooperative":
            assert np.all(who[mine] >= 0)  # a receiver never makes clutter
            assert np.all(det.identity[mine] != "")
            rows = {int(t): i for i, t in enumerate(tx.target)}
            r = np.array([rows[int(t)] for t in who[mine]])
            want = np.stack([np.diag([h * h, h * h, v * v])
                             for h, v in zip(tx.std_h_m[r], tx.std_v_m[r], strict=True)])
            np.testing.assert_array_equal(det.R[mine], want)
            np.testing.assert_array_equal(det.identity[mine], tx.identity[r])
            np.testing.assert_array_equal(det.category[mine], tx.category[r])
        else:
            assert np.all(det.identity[mine] == "") and np.all(det.category[mine] == "")
            np.testing.assert_array_equal(det.R[mine],
                                          np.broadcast_to(spec.R, (int(mine.sum()), 3, 3)))
    # RF only from emitters; the camera sees everyone in its cover.
    df = (det.sensor == index["df"]) & (who >= 0)
    assert set(who[df].tolist()) <= {2, 4, 6, 8}
    eo = (det.sensor == index["eo"]) & (who >= 0)
    assert {1, 3} <= set(who[eo].tolist())
    # Each receiver hears its own protocol only.
    assert set(who[det.sensor == index["rid"]].tolist()) == {2, 4}
    assert set(who[det.sensor == index["adsb"]].tolist()) == {5}


def test_every_kind_round_trips_through_the_files(tmp_path: Path) -> None:
    o = _observe_all()
    sc, det = o.sc, o.det
    write_scenario(tmp_path, sc)
    write_detections(tmp_path, sc, det)
    back_sc = read_scenario(tmp_path)
    back = read_detections(tmp_path, back_sc)
    kinds = {s.kind for s in back_sc.sensors}
    assert kinds == {"radar", "radar2d", "bearing", "position", "cooperative"}
    for name in ("t", "sensor", "z", "R", "identity", "category"):
        np.testing.assert_array_equal(getattr(back, name), getattr(det, name), err_msg=name)


def test_observe_every_kind_is_deterministic(tmp_path: Path) -> None:
    a, b = _observe_all(seed=9), _observe_all(seed=9)
    np.testing.assert_array_equal(a.who, b.who)
    for name, o in (("a", a), ("b", b)):
        (tmp_path / name).mkdir()
        write_detections(tmp_path / name, o.sc, o.det)
    assert (tmp_path / "a" / "detections.csv").read_bytes() \
        == (tmp_path / "b" / "detections.csv").read_bytes()
    c = _observe_all(seed=10).det
    assert len(c) != len(a.det) or not np.array_equal(c.z, a.det.z)


def test_liar_reports_its_offset() -> None:
    o = _observe_all(duration_s=60.0)
    sc, times, states, det, who = o.sc, o.times, o.states, o.det, o.who
    index = sc.sensor_index()
    for target, want in ((4, 500.0), (2, 0.0)):
        mine = (det.sensor == index["rid"]) & (who == target)
        row = np.searchsorted(times, det.t[mine])
        err = det.z[mine] - states.pos[row, target - 1]
        assert abs(np.hypot(*err[:, :2].mean(axis=0)) - want) < 3.0


def test_in_cover_by_kind() -> None:
    sc = _all_kinds()
    pts = np.array([[0.0, 3_000.0, 100.0], [0.0, 9_800.0, 100.0]])
    cover = {s.id: in_cover(sc.origin, s, pts, emits_rf=np.array([False, True]),
                            transmits=np.array([True, False])).tolist() for s in sc.sensors}
    assert cover == {"radar": [True, True], "r2": [True, True], "df": [False, False],
                     "eo": [True, False], "loc": [True, True], "rid": [True, False],
                     "adsb": [True, False]}
