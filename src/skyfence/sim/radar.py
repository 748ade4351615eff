"""3-D and 2-D radar: range, azimuth (and elevation) from the sensor, with detection
and clutter.

Measurements are taken from the sensor's position along the scenario's ENU axes:
range = |d|, azimuth = atan2(de, dn) clockwise from north, wrapped into [0, 2π),
elevation = atan2(du, hypot(de, dn)) in [-π/2, π/2]. A target is detectable when it
is within ``max_range_m``, at or above ``min_elevation_rad``, and above the radar
horizon of a 4/3-earth (heights above the flat ground at the origin's ellipsoidal
height); each detectable target is detected with probability ``pd``. A 2-D radar
(kind ``radar2d``) sees the same volume but measures only range and azimuth: its
``z`` rows are (range_m, azimuth_rad, 0).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from skyfence.geo import EARTH_RADIUS_M, Origin, height_above_origin_m, radar_horizon_visible
from skyfence.scenario import Region, SensorSpec
from skyfence.types import F64

TWO_PI = 2.0 * math.pi
#: Upper elevation of the volume clutter is drawn from when the scenario has no region.
COVERAGE_MAX_ELEVATION_RAD = 0.5


def wrap_azimuth(az_rad: F64) -> F64:
    """Azimuths wrapped into [0, 2π)."""
    out = np.remainder(az_rad, TWO_PI)
    # remainder(-1e-17, 2π) rounds to 2π itself.
    wrapped: F64 = np.where(out >= TWO_PI, 0.0, out)
    return wrapped


def measure(sensor_enu_m: F64, enu_m: F64) -> F64:
    """Noise-free (range_m, azimuth_rad, elevation_rad) (n, 3) of ENU points (n, 3)."""
    d = np.asarray(enu_m, dtype=np.float64) - np.asarray(sensor_enu_m, dtype=np.float64)
    ground = np.hypot(d[..., 0], d[..., 1])
    return np.stack(
        [np.sqrt(ground**2 + d[..., 2] ** 2),
         wrap_azimuth(np.arctan2(d[..., 0], d[..., 1])),
         np.arctan2(d[..., 2], ground)],
        axis=-1,
    )


def to_enu(sensor_enu_m: F64, z: F64) -> F64:
    """ENU points (n, 3) of radar measurements (n, 3): the inverse of :func:`measure`."""
    r, az, el = z[..., 0], z[..., 1], z[..., 2]
    ground = r * np.cos(el)
    d = np.stack([ground * np.sin(az), ground * np.cos(az), r * np.sin(el)], axis=-1)
    out: F64 = d + np.asarray(sensor_enu_m, dtype=np.float64)
    return out


def ground_distance_m(origin: Origin, a_enu_m: F64, b_enu_m: F64) -> F64:
    """Distance along the (mean-radius) earth between the points below a and b."""
    a = origin.enu_to_ecef(a_enu_m)
    b = origin.enu_to_ecef(b_enu_m)
    cross = np.linalg.norm(np.cross(a, b), axis=-1)
    dot = np.sum(a * b, axis=-1)
    out: F64 = EARTH_RADIUS_M * np.arctan2(cross, dot)
    return out


def detectable(origin: Origin, sensor: SensorSpec, enu_m: F64) -> NDArray[np.bool_]:
    """Which of the ENU points (n, 3) the radar can see (ignoring pd)."""
    pos = np.asarray(sensor.position_enu_m, dtype=np.float64)
    z = measure(pos, enu_m)
    in_volume = (z[:, 0] <= sensor.max_range_m) & (z[:, 2] >= sensor.min_elevation_rad)
    sensor_h = height_above_origin_m(origin, pos)
    target_h = height_above_origin_m(origin, enu_m)
    dist = ground_distance_m(origin, np.broadcast_to(pos, enu_m.shape), enu_m)
    out: NDArray[np.bool_] = in_volume & radar_horizon_visible(sensor_h, target_h, dist)
    return out


def coverage(sensor: SensorSpec) -> dict[str, list[float]]:
    """The measurement-space box clutter is drawn from when there is no region, over
    the sensor's columns (a 2-D radar's has no elevation)."""
    if not math.isfinite(sensor.max_range_m):
        raise ValueError(f"radar {sensor.id!r} has clutter but neither a region nor max_range_m")
    lo = max(sensor.min_elevation_rad, 0.0)
    box = {
        "range_m": [0.0, sensor.max_range_m],
        "azimuth_rad": [0.0, TWO_PI],
        "elevation_rad": [lo, max(lo, COVERAGE_MAX_ELEVATION_RAD)],
    }
    return {k: box[k] for k in sensor.columns}


def clutter(
    sensor: SensorSpec, region: Region | None, rng: np.random.Generator, n: int
) -> F64:
    """``n`` false measurements (n, 3): from points uniform in ``region`` if given,
    else uniform in the sensor's coverage box in measurement space. Components the
    sensor does not measure (a 2-D radar's elevation) are 0."""
    if n == 0:
        return np.empty((0, 3))
    if region is not None:
        lo = np.array([region.east_m[0], region.north_m[0], region.up_m[0]])
        hi = np.array([region.east_m[1], region.north_m[1], region.up_m[1]])
        points = lo + rng.random((n, 3)) * (hi - lo)
        z = measure(np.asarray(sensor.position_enu_m), points)
    else:
        box = coverage(sensor)
        lo = np.array([b[0] for b in box.values()])
        hi = np.array([b[1] for b in box.values()])
        z = np.zeros((n, 3))
        z[:, :lo.size] = lo + rng.random((n, lo.size)) * (hi - lo)
        z[:, 1] = wrap_azimuth(z[:, 1])
    z[:, sensor.dim:] = 0.0
    return z


def scan(
    origin: Origin,
    sensor: SensorSpec,
    enu_m: F64,
    region: Region | None,
    rng: np.random.Generator,
    *,
    visible: NDArray[np.bool_] | None = None,
) -> tuple[F64, NDArray[np.int64]]:
    """One scan over targets at ENU positions (n, 3).

    ``visible`` (n,) is :func:`detectable` of the targets, if already known.
    Returns measurements (m, 3) with Gaussian noise in (range, azimuth, elevation)
    — (range, azimuth, 0) for a 2-D radar — and the index of the target behind each
    (-1 for clutter), in random order.
    """
    dim = sensor.dim
    seen = np.flatnonzero(detectable(origin, sensor, enu_m) if visible is None else visible)
    hit = seen[rng.random(seen.size) < sensor.pd]
    z = measure(np.asarray(sensor.position_enu_m), enu_m[hit])
    z[:, :dim] += rng.standard_normal((hit.size, dim)) * np.asarray(sensor.noise_std[:dim])
    z[:, 0] = np.abs(z[:, 0])  # a range is never negative (only matters within ~5σ of 0)
    z[:, 1] = wrap_azimuth(z[:, 1])
    z[:, 2] = np.clip(z[:, 2], -math.pi / 2, math.pi / 2)
    z[:, dim:] = 0.0
    n_false = int(rng.poisson(sensor.clutter_per_scan)) if sensor.clutter_per_scan > 0 else 0
    zc = clutter(sensor, region, rng, n_false)
    z_all = np.concatenate([z, zc])
    who = np.concatenate([hit.astype(np.int64), np.full(n_false, -1, dtype=np.int64)])
    order = rng.permutation(who.size)
    return z_all[order], who[order]
