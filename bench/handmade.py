"""A small hand-made scenario (one radar, one position sensor, straight flyers).

For exercising the harness without ``skyfence.sim``: ``python bench/handmade.py DIR``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from skyfence.geo import Origin
from skyfence.scenario import (
    Region,
    Scenario,
    SensorSpec,
    StateTable,
    write_detections,
    write_scenario,
    write_truth,
)
from skyfence.types import F64, Detections

T0_S = 1.7e9
RADAR_NOISE = (10.0, math.radians(0.3), math.radians(0.3))
POSITION_NOISE_M = (5.0, 5.0, 8.0)


def scenario() -> Scenario:
    radar = SensorSpec(id="radar", kind="radar", position_enu_m=(0.0, 0.0, 10.0), pd=0.9,
                       noise_std=RADAR_NOISE, scan_period_s=1.0)
    adsb = SensorSpec(id="pos", kind="position", position_enu_m=(0.0, 0.0, 0.0), pd=0.9,
                      noise_std=POSITION_NOISE_M, scan_period_s=1.0)
    return Scenario(name="handmade", origin=Origin(lat_deg=52.0, lon_deg=4.0, alt_m=0.0),
                    sensors=(radar, adsb),
                    region=Region((-5000.0, 5000.0), (-5000.0, 5000.0), (0.0, 1500.0)),
                    scan_period_s=1.0)


def truth(n_targets: int, duration_s: float, rng: np.random.Generator) -> tuple[F64, F64]:
    """Truth states at every half second: times (k,), states (k, n, 6) ENU m, m/s."""
    t = np.arange(0.0, duration_s, 0.5)
    p0 = rng.uniform([-4000, -4000, 100], [4000, 4000, 800], size=(n_targets, 3))
    v = rng.uniform([-30, -30, -2], [30, 30, 2], size=(n_targets, 3))
    pos = p0[None] + t[:, None, None] * v[None]
    return T0_S + t, np.concatenate([pos, np.broadcast_to(v, pos.shape)], axis=2)


def radar_measure(enu: F64, sensor_pos: F64) -> F64:
    d = enu - sensor_pos
    ground = np.hypot(d[:, 0], d[:, 1])
    return np.stack([np.hypot(ground, d[:, 2]), np.arctan2(d[:, 0], d[:, 1]),
                     np.arctan2(d[:, 2], ground)], axis=1)


def detections(sc: Scenario, t: F64, x: F64, rng: np.random.Generator) -> Detections:
    """Radar on whole seconds, position sensor on the half seconds; no clutter."""
    parts = []
    for k, tk in enumerate(t):
        s = k % 2
        sensor = sc.sensors[s]
        seen = rng.random(x.shape[1]) < sensor.pd
        pos = x[k, seen, :3]
        z = radar_measure(pos, np.asarray(sensor.position_enu_m)) if s == 0 else pos.copy()
        z = z + rng.normal(size=z.shape) * np.asarray(sensor.noise_std)
        n = len(z)
        parts.append(Detections(t=np.full(n, tk), sensor=np.full(n, s, dtype=np.int32), z=z,
                                R=np.broadcast_to(sensor.R, (n, 3, 3)).copy()))
    return Detections(*(np.concatenate([getattr(p, f) for p in parts])
                        for f in ("t", "sensor", "z", "R")))


def write(directory: Path, *, n_targets: int = 10, duration_s: float = 60.0,
          seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    sc = scenario()
    t, x = truth(n_targets, duration_s, rng)
    write_scenario(directory, sc)
    write_detections(directory, sc, detections(sc, t, x, rng))
    k, n = x.shape[:2]
    write_truth(directory, StateTable(t=np.repeat(t, n), id=np.tile(np.arange(n), k),
                                      x=x.reshape(-1, 6)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("directory", type=Path)
    ap.add_argument("--targets", type=int, default=10)
    ap.add_argument("--duration-s", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    write(args.directory, n_targets=args.targets, duration_s=args.duration_s, seed=args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
