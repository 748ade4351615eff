from __future__ import annotations

import math

import numpy as np
import pytest

from skyfence.geo import Origin
from skyfence.scenario import SensorSpec
from skyfence.sim import bearing, radar
from skyfence.sim.motion import lift

ORIGIN = Origin(lat_deg=47.45, lon_deg=8.56, alt_m=480.0)
SENSOR_POS = np.array([300.0, -200.0, 10.0])


def _bearing(dim: int = 2, modality: str = "eo", **kw: object) -> SensorSpec:
    noise = (0.004, 0.003, 0.0) if dim == 2 else (0.02, 0.0, 0.0)
    args: dict[str, object] = {
        "id": "b", "kind": "bearing", "position_enu_m": tuple(SENSOR_POS), "pd": 1.0,
        "noise_std": noise, "bearing_dim": dim, "modality": modality,
    }
    args.update(kw)
    return SensorSpec(**args)  # type: ignore[arg-type]


def _points(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.column_stack([rng.uniform(-6000, 6000, (n, 2)), rng.uniform(50, 400, n)])


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + math.pi) % (2 * math.pi) - math.pi


@pytest.mark.parametrize("dim", [1, 2])
def test_angles_match_the_truth_within_noise(dim: int) -> None:
    rng = np.random.default_rng(21)
    sensor = _bearing(dim, pd=0.75)
    n, scans = 300, 60
    pts = _points(rng, n)
    truth = radar.measure(SENSOR_POS, pts)[:, 1:1 + dim]
    hits, errors = 0, []
    for _ in range(scans):
        z, who = bearing.scan(ORIGIN, sensor, pts, rng)
        assert np.all(z[:, dim:] == 0.0)
        assert np.all((z[:, 0] >= 0) & (z[:, 0] < 2 * math.pi))
        hits += who.size
        err = z[:, :dim] - truth[who]
        err[:, 0] = _wrap(err[:, 0])
        errors.append(err)
    rate = hits / (n * scans)
    assert abs(rate - 0.75) < 4 * math.sqrt(0.75 * 0.25 / (n * scans))
    e = np.concatenate(errors)
    std = np.asarray(sensor.noise_std[:dim])
    np.testing.assert_allclose(e.std(axis=0), std, rtol=0.04)
    assert np.all(np.abs(e.mean(axis=0)) < 4 * std / math.sqrt(e.shape[0]))


def test_rf_direction_finder_sees_only_emitters() -> None:
    rng = np.random.default_rng(3)
    pts = _points(rng, 40)
    emits = np.arange(40) % 3 == 0
    for modality, expect in (("rf", set(np.flatnonzero(emits).tolist())),
                             ("eo", set(range(40))), ("ir", set(range(40))),
                             ("acoustic", set(range(40)))):
        sensor = _bearing(1 if modality == "rf" else 2, modality)
        _, who = bearing.scan(ORIGIN, sensor, pts, rng, emits)
        assert set(who.tolist()) == expect, modality
    # Without emitter information a direction finder sees every target.
    _, who = bearing.scan(ORIGIN, _bearing(1, "rf"), pts, rng)
    assert who.size == 40


def test_emitters_by_kind() -> None:
    kinds = ["multirotor", "fixed_wing", "swarm", "fast_low_flyer", "crewed", "bird", "ufo"]
    assert bearing.emits_rf(kinds).tolist() == [True, True, True, False, False, False, False]


def test_line_of_sight_range_and_minimum_elevation() -> None:
    sensor = _bearing(2, "ir", max_range_m=70_000.0, position_enu_m=(0.0, 0.0, 10.0))
    # 60 km out: 50 m above the ground is under the 4/3-earth horizon of a 10 m mast,
    # 2,000 m is not.
    ground = np.array([[0.0, 60_000.0, 50.0], [0.0, 60_000.0, 2_000.0]])
    pos, _ = lift(ORIGIN, ground, np.zeros_like(ground))
    assert bearing.detectable(ORIGIN, sensor, pos).tolist() == [False, True]
    near = _bearing(2, "eo", max_range_m=5_000.0, min_elevation_rad=0.01,
                    position_enu_m=(0.0, 0.0, 0.0))
    pts = np.array([[0.0, 4_000.0, 200.0], [0.0, 6_000.0, 600.0], [0.0, 4_000.0, 20.0]])
    assert bearing.detectable(ORIGIN, near, pts).tolist() == [True, False, False]


@pytest.mark.parametrize("dim", [1, 2])
def test_clutter_rate_and_angle_box(dim: int) -> None:
    rng = np.random.default_rng(8)
    sensor = _bearing(dim, clutter_per_scan=6.0, pd=0.0, min_elevation_rad=-0.1)
    box = bearing.coverage(sensor)
    assert tuple(box) == sensor.columns
    counts, zs = [], []
    for _ in range(400):
        z, who = bearing.scan(ORIGIN, sensor, np.empty((0, 3)), rng)
        assert np.all(who == -1)
        counts.append(who.size)
        zs.append(z)
    c = np.array(counts)
    assert abs(c.mean() - 6.0) < 4 * math.sqrt(6.0 / 400)
    assert abs(c.var() - 6.0) < 1.2
    z = np.concatenate(zs)
    assert np.all(z[:, dim:] == 0.0)
    assert np.all((z[:, 0] >= 0) & (z[:, 0] < 2 * math.pi))
    assert abs(np.mean(z[:, 0] < math.pi) - 0.5) < 0.05
    if dim == 2:
        lo, hi = box["elevation_rad"]
        assert lo == 0.0 and hi == radar.COVERAGE_MAX_ELEVATION_RAD
        assert z[:, 1].min() >= lo and z[:, 1].max() <= hi
