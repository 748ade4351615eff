from __future__ import annotations

import math

import numpy as np

from skyfence.scenario import Region, SensorSpec
from skyfence.sim import position


def _sensor(**kw: object) -> SensorSpec:
    args: dict[str, object] = {
        "id": "p", "kind": "position", "position_enu_m": (0.0, 0.0, 10.0), "pd": 0.8,
        "noise_std": (15.0, 10.0, 25.0), "max_range_m": 10_000.0,
    }
    args.update(kw)
    return SensorSpec(**args)  # type: ignore[arg-type]


def test_noise_pd_and_range() -> None:
    rng = np.random.default_rng(3)
    n = 300
    pts = np.column_stack([rng.uniform(-6000, 6000, (n, 2)), rng.uniform(50, 300, n)])
    pts[:20, 0] = 12_000.0  # out of range
    sensor = _sensor()
    hits, errs = 0, []
    for _ in range(60):
        z, who = position.scan(sensor, pts, None, rng)
        assert np.all(who >= 20)
        hits += who.size
        errs.append(z - pts[who])
    rate = hits / (280 * 60)
    assert abs(rate - 0.8) < 4 * math.sqrt(0.8 * 0.2 / (280 * 60))
    np.testing.assert_allclose(np.concatenate(errs).std(axis=0), [15, 10, 25], rtol=0.04)


def test_clutter_in_region_and_coverage() -> None:
    rng = np.random.default_rng(8)
    region = Region(east_m=(0.0, 1000.0), north_m=(-500.0, 0.0), up_m=(10.0, 20.0))
    sensor = _sensor(clutter_per_scan=4.0, pd=0.0)
    counts = []
    for _ in range(300):
        z, who = position.scan(sensor, np.empty((0, 3)), region, rng)
        counts.append(who.size)
        assert np.all((z[:, 0] >= 0) & (z[:, 0] <= 1000) & (z[:, 2] >= 10) & (z[:, 2] <= 20))
    assert abs(np.mean(counts) - 4.0) < 4 * math.sqrt(4.0 / 300)
    z = position.clutter(sensor, None, rng, 1000)
    assert np.abs(z[:, :2]).max() <= 10_000 and z[:, 2].min() >= 0
