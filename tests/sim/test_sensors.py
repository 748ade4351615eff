from __future__ import annotations

import numpy as np
import pytest

from skyfence.geo import Origin
from skyfence.scenario import Region, Scenario, SensorSpec
from skyfence.sim.motion import TargetStates
from skyfence.sim.sensors import canonical_time, observe, scan_times

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
