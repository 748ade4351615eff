"""Position sensor: noisy ENU positions (a cooperative or RF locator, say).

Noise is independent Gaussian per ENU axis (``noise_std`` metres); a target within
``max_range_m`` (straight-line distance from the sensor) is detected with
probability ``pd``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from skyfence.scenario import Region, SensorSpec
from skyfence.types import F64

#: Top of the box clutter is drawn from when the scenario has no region (m, ENU up).
COVERAGE_CEILING_M = 3000.0


def detectable(sensor: SensorSpec, enu_m: F64) -> NDArray[np.bool_]:
    d = enu_m - np.asarray(sensor.position_enu_m, dtype=np.float64)
    out: NDArray[np.bool_] = np.linalg.norm(d, axis=-1) <= sensor.max_range_m
    return out


def coverage(sensor: SensorSpec) -> dict[str, list[float]]:
    """The ENU box clutter is drawn from when there is no region."""
    if not math.isfinite(sensor.max_range_m):
        raise ValueError(f"sensor {sensor.id!r} has clutter but neither a region nor max_range_m")
    e, n, _ = sensor.position_enu_m
    r = sensor.max_range_m
    return {"east_m": [e - r, e + r], "north_m": [n - r, n + r],
            "up_m": [0.0, COVERAGE_CEILING_M]}


def clutter(sensor: SensorSpec, region: Region | None, rng: np.random.Generator, n: int) -> F64:
    """``n`` false positions (n, 3) uniform in ``region``, else in the coverage box."""
    if n == 0:
        return np.empty((0, 3))
    box = region.to_json() if region is not None else coverage(sensor)
    lo = np.array([box[k][0] for k in ("east_m", "north_m", "up_m")])
    hi = np.array([box[k][1] for k in ("east_m", "north_m", "up_m")])
    out: F64 = lo + rng.random((n, 3)) * (hi - lo)
    return out


def scan(
    sensor: SensorSpec, enu_m: F64, region: Region | None, rng: np.random.Generator, *,
    visible: NDArray[np.bool_] | None = None,
) -> tuple[F64, NDArray[np.int64]]:
    """One scan over targets at ENU positions (n, 3): noisy positions (m, 3) and the
    target behind each (-1 for clutter), in random order. ``visible`` (n,) is
    :func:`detectable` of the targets, if already known."""
    seen = np.flatnonzero(detectable(sensor, enu_m) if visible is None else visible)
    hit = seen[rng.random(seen.size) < sensor.pd]
    z = enu_m[hit] + rng.standard_normal((hit.size, 3)) * np.asarray(sensor.noise_std)
    n_false = int(rng.poisson(sensor.clutter_per_scan)) if sensor.clutter_per_scan > 0 else 0
    z_all = np.concatenate([z, clutter(sensor, region, rng, n_false)])
    who = np.concatenate([hit.astype(np.int64), np.full(n_false, -1, dtype=np.int64)])
    order = rng.permutation(who.size)
    return z_all[order], who[order]
