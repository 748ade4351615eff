from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from skyfence.geo import Origin
from skyfence.scenario import Region, SensorSpec
from skyfence.sim import radar
from skyfence.sim.motion import lift

ORIGIN = Origin(lat_deg=47.45, lon_deg=8.56, alt_m=480.0)
SENSOR_POS = np.array([100.0, -50.0, 20.0])
NOISE = (5.0, 0.005, 0.008)


def _radar(**kw: object) -> SensorSpec:
    args: dict[str, object] = {
        "id": "r", "kind": "radar", "position_enu_m": tuple(SENSOR_POS), "pd": 1.0,
        "noise_std": NOISE,
    }
    args.update(kw)
    return SensorSpec(**args)  # type: ignore[arg-type]


coord = st.floats(-50_000, 50_000)


@given(coord, coord, st.floats(-2_000, 15_000))
def test_noise_free_measurement_inverts_to_the_position(e: float, n: float, u: float) -> None:
    p = np.array([[e, n, u]])
    if np.linalg.norm(p - SENSOR_POS) < 1e-3:
        return
    z = radar.measure(SENSOR_POS, p)
    assert 0.0 <= z[0, 1] < 2 * math.pi
    assert -math.pi / 2 <= z[0, 2] <= math.pi / 2
    np.testing.assert_allclose(radar.to_enu(SENSOR_POS, z), p, atol=1e-6)


def test_angle_conventions() -> None:
    s = np.zeros(3)
    pts = np.array([[0, 1000, 0], [1000, 0, 0], [0, -1000, 0], [-1000, 0, 0], [0, 1000, 1000.0]])
    z = radar.measure(s, pts)
    np.testing.assert_allclose(z[:, 1], [0, math.pi / 2, math.pi, 3 * math.pi / 2, 0], atol=1e-12)
    np.testing.assert_allclose(z[:, 2], [0, 0, 0, 0, math.pi / 4], atol=1e-12)
    np.testing.assert_allclose(z[:, 0], [1000, 1000, 1000, 1000, 1000 * math.sqrt(2)])


def test_wrap_azimuth_stays_below_two_pi() -> None:
    w = radar.wrap_azimuth(np.array([-1e-17, -0.1, 2 * math.pi, 7.0, 0.0]))
    assert np.all((w >= 0) & (w < 2 * math.pi))
    assert w[0] == 0.0


def _hidden_points(ground_m: np.ndarray) -> np.ndarray:
    pos, _ = lift(ORIGIN, ground_m, np.zeros_like(ground_m))
    return pos


def test_horizon_hides_a_low_target_far_away_but_not_a_high_one() -> None:
    # A 20 m radar, targets 60 km away at 50 m and 2,000 m above the ground.
    sensor = _radar(position_enu_m=(0.0, 0.0, 20.0))
    bearings = np.linspace(0, 2 * math.pi, 24, endpoint=False)
    low = np.stack([60_000 * np.sin(bearings), 60_000 * np.cos(bearings),
                    np.full(24, 50.0)], axis=-1)
    high = low.copy()
    high[:, 2] = 2_000.0
    rng = np.random.default_rng(0)
    pos = _hidden_points(np.concatenate([low, high]))
    assert not radar.detectable(ORIGIN, sensor, pos[:24]).any()
    assert radar.detectable(ORIGIN, sensor, pos[24:]).all()
    for _ in range(20):
        _, who = radar.scan(ORIGIN, sensor, pos, None, rng)
        assert set(who.tolist()) == set(range(24, 48))


def test_horizon_distance_matches_the_four_thirds_earth() -> None:
    sensor = _radar(position_enu_m=(0.0, 0.0, 20.0))
    k_r = 4.0 / 3.0 * 6371008.8
    horizon = math.sqrt(2 * k_r * 20.0) + math.sqrt(2 * k_r * 100.0)
    d = np.array([horizon - 300.0, horizon + 300.0])
    pos = _hidden_points(np.stack([np.zeros(2), d, np.full(2, 100.0)], axis=-1))
    assert radar.detectable(ORIGIN, sensor, pos).tolist() == [True, False]


def test_max_range_and_min_elevation() -> None:
    sensor = _radar(max_range_m=5_000.0, min_elevation_rad=0.01, position_enu_m=(0.0, 0.0, 0.0))
    pts = np.array([[0, 4_000, 200.0], [0, 6_000, 600.0], [0, 4_000, 20.0]])
    assert radar.detectable(ORIGIN, sensor, pts).tolist() == [True, False, False]


def test_detection_probability_and_noise_statistics() -> None:
    rng = np.random.default_rng(11)
    sensor = _radar(pd=0.7)
    n = 400
    pts = np.column_stack([rng.uniform(-5000, 5000, (n, 2)), rng.uniform(100, 500, n)])
    truth_z = radar.measure(SENSOR_POS, pts)
    hits, errors = 0, []
    scans = 50
    for _ in range(scans):
        z, who = radar.scan(ORIGIN, sensor, pts, None, rng)
        hits += who.size
        err = z - truth_z[who]
        err[:, 1] = (err[:, 1] + math.pi) % (2 * math.pi) - math.pi
        errors.append(err)
    rate = hits / (n * scans)
    assert abs(rate - 0.7) < 4 * math.sqrt(0.7 * 0.3 / (n * scans))
    std = np.concatenate(errors).std(axis=0)
    np.testing.assert_allclose(std, NOISE, rtol=0.03)


def test_clutter_rate_and_place_in_region() -> None:
    rng = np.random.default_rng(5)
    region = Region(east_m=(-3000.0, 3000.0), north_m=(-2000.0, 4000.0), up_m=(0.0, 500.0))
    sensor = _radar(clutter_per_scan=7.5, pd=0.0)
    counts, points = [], []
    for _ in range(400):
        z, who = radar.scan(ORIGIN, sensor, np.empty((0, 3)), region, rng)
        assert np.all(who == -1)
        counts.append(who.size)
        points.append(radar.to_enu(SENSOR_POS, z))
    counts_a = np.array(counts)
    assert abs(counts_a.mean() - 7.5) < 4 * math.sqrt(7.5 / 400)
    assert abs(counts_a.var() - 7.5) < 1.5  # Poisson: variance = mean
    p = np.concatenate(points)
    lo = [region.east_m[0], region.north_m[0], region.up_m[0]]
    hi = [region.east_m[1], region.north_m[1], region.up_m[1]]
    assert np.all(p >= np.array(lo) - 1e-6) and np.all(p <= np.array(hi) + 1e-6)
    # Uniform: each half of the region gets about half.
    assert abs(np.mean(p[:, 0] < 0) - 0.5) < 0.05


def test_clutter_over_coverage_without_region() -> None:
    rng = np.random.default_rng(6)
    sensor = _radar(clutter_per_scan=20.0, max_range_m=30_000.0, min_elevation_rad=-0.1)
    box = radar.coverage(sensor)
    z = radar.clutter(sensor, None, rng, 5000)
    assert z[:, 0].min() >= 0 and z[:, 0].max() <= 30_000
    assert np.all((z[:, 1] >= 0) & (z[:, 1] < 2 * math.pi))
    assert z[:, 2].min() >= box["elevation_rad"][0] and z[:, 2].max() <= box["elevation_rad"][1]
    with pytest.raises(ValueError, match="max_range_m"):
        radar.coverage(_radar(clutter_per_scan=1.0))


def test_scan_output_order_is_shuffled() -> None:
    rng = np.random.default_rng(2)
    pts = np.column_stack([np.linspace(1000, 5000, 50), np.zeros(50), np.full(50, 200.0)])
    sensor = _radar(clutter_per_scan=10.0, max_range_m=20_000.0)
    _, who = radar.scan(ORIGIN, sensor, pts, None, rng)
    real = who[who >= 0]
    assert sorted(real.tolist()) == list(range(50))
    assert real.tolist() != list(range(50))


def test_radar2d_measures_range_and_azimuth_only() -> None:
    rng = np.random.default_rng(12)
    sensor = _radar(kind="radar2d", pd=0.8, noise_std=(10.0, 0.01, 0.0))
    n, scans = 300, 50
    pts = np.column_stack([rng.uniform(-5000, 5000, (n, 2)), rng.uniform(100, 500, n)])
    truth = radar.measure(SENSOR_POS, pts)
    hits, errors = 0, []
    for _ in range(scans):
        z, who = radar.scan(ORIGIN, sensor, pts, None, rng)
        assert np.all(z[:, 2] == 0.0)
        hits += who.size
        err = z[:, :2] - truth[who, :2]
        err[:, 1] = (err[:, 1] + math.pi) % (2 * math.pi) - math.pi
        errors.append(err)
    assert abs(hits / (n * scans) - 0.8) < 4 * math.sqrt(0.8 * 0.2 / (n * scans))
    e = np.concatenate(errors)
    np.testing.assert_allclose(e.std(axis=0), [10.0, 0.01], rtol=0.03)
    assert np.all(np.abs(e.mean(axis=0)) < 4 * np.array([10.0, 0.01]) / math.sqrt(len(e)))


def test_radar2d_sees_the_radar_volume() -> None:
    sensor = _radar(kind="radar2d", noise_std=(10.0, 0.01, 0.0), max_range_m=70_000.0,
                    position_enu_m=(0.0, 0.0, 20.0))
    ground = np.array([[0.0, 60_000.0, 50.0], [0.0, 60_000.0, 2_000.0]])
    assert radar.detectable(ORIGIN, sensor, _hidden_points(ground)).tolist() == [False, True]


def test_radar2d_clutter_has_no_elevation() -> None:
    rng = np.random.default_rng(13)
    sensor = _radar(kind="radar2d", noise_std=(10.0, 0.01, 0.0), max_range_m=20_000.0,
                    clutter_per_scan=5.0)
    assert tuple(radar.coverage(sensor)) == ("range_m", "azimuth_rad")
    region = Region(east_m=(-3000.0, 3000.0), north_m=(-2000.0, 4000.0), up_m=(0.0, 500.0))
    for where in (None, region):
        z = radar.clutter(sensor, where, rng, 2000)
        assert np.all(z[:, 2] == 0.0)
        assert z[:, 0].min() >= 0 and z[:, 0].max() <= 20_000
        assert np.all((z[:, 1] >= 0) & (z[:, 1] < 2 * math.pi))
