"""Bearing sensors: azimuth (and elevation) only — RF direction finders, EO/IR cameras,
acoustic arrays.

Angles are the radar's (see :mod:`skyfence.sim.radar`): azimuth clockwise from
north in [0, 2π), elevation up from the horizontal. A target is in cover when it is
within ``max_range_m``, at or above ``min_elevation_rad`` and over the 4/3-earth
horizon — the radar's line of sight, radio and light alike — and, for an RF
direction finder, when it emits a radio link (see :data:`EMITS_RF`). Cameras and
microphones see whatever is in their cover. Each target in cover is detected with
probability ``pd``. ``z`` rows are (azimuth_rad, elevation_rad, 0) with
``bearing_dim`` 2 and (azimuth_rad, 0, 0) with ``bearing_dim`` 1.

Clutter is drawn in angle space only (a bearing has no range): azimuth uniform in
[0, 2π), elevation uniform in the radar's clutter band (see :func:`coverage`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from numpy.typing import NDArray

from skyfence.geo import Origin
from skyfence.scenario import SensorSpec
from skyfence.sim import radar
from skyfence.types import F64

#: Whether a target of each kind emits the radio link an RF direction finder locates:
#: drones fly on a control and video link (2.4/5.8 GHz, or cellular); crewed aircraft,
#: birds and fast low flyers do not (a crewed aircraft's transponder and voice radio
#: are not what a drone direction finder listens to; a fast low flyer that is a drone
#: is simulated as a ``fixed_wing``). Kinds not listed here do not emit.
EMITS_RF: dict[str, bool] = {
    "multirotor": True,
    "fixed_wing": True,
    "swarm": True,
    "fast_low_flyer": False,
    "crewed": False,
    "bird": False,
}


def emits_rf(kinds: Iterable[str]) -> NDArray[np.bool_]:
    """(n,) whether targets of ``kinds`` (n, one per target) emit a drone radio link."""
    return np.array([EMITS_RF.get(k, False) for k in kinds], dtype=bool)


def sees(sensor: SensorSpec, emits: NDArray[np.bool_] | None, n: int) -> NDArray[np.bool_]:
    """(n,) which of n targets the sensor's modality can sense at all: an RF direction
    finder only emitters (every target when ``emits`` is None), the others all."""
    if sensor.modality == "rf" and emits is not None:
        return np.asarray(emits, dtype=bool)
    return np.ones(n, dtype=bool)


def detectable(origin: Origin, sensor: SensorSpec, enu_m: F64,
               emits: NDArray[np.bool_] | None = None) -> NDArray[np.bool_]:
    """(n,) which of the ENU points (n, 3) the sensor can see (ignoring pd).

    ``emits`` (n,) says which targets emit a drone radio link (None: all do); it
    matters to RF direction finders only.
    """
    out: NDArray[np.bool_] = (radar.detectable(origin, sensor, enu_m)
                              & sees(sensor, emits, enu_m.shape[0]))
    return out


def measure(sensor_enu_m: F64, enu_m: F64, dim: int) -> F64:
    """Noise-free (azimuth_rad[, elevation_rad]) of ENU points (n, 3), padded to (n, 3)
    with zeros."""
    z = radar.measure(sensor_enu_m, enu_m)
    out = np.zeros_like(z)
    out[:, :dim] = z[:, 1:1 + dim]
    return out


def coverage(sensor: SensorSpec) -> dict[str, list[float]]:
    """The angle box clutter is drawn from, over the sensor's columns: every azimuth,
    and elevations from max(min_elevation_rad, 0) to the radar's clutter ceiling."""
    lo = max(sensor.min_elevation_rad, 0.0)
    box = {
        "azimuth_rad": [0.0, radar.TWO_PI],
        "elevation_rad": [lo, max(lo, radar.COVERAGE_MAX_ELEVATION_RAD)],
    }
    return {k: box[k] for k in sensor.columns}


def clutter(sensor: SensorSpec, rng: np.random.Generator, n: int) -> F64:
    """``n`` false measurements (n, 3) uniform in the sensor's angle box; unused
    components 0."""
    z = np.zeros((n, 3))
    if n == 0:
        return z
    box = coverage(sensor)
    lo = np.array([b[0] for b in box.values()])
    hi = np.array([b[1] for b in box.values()])
    z[:, :lo.size] = lo + rng.random((n, lo.size)) * (hi - lo)
    z[:, 0] = radar.wrap_azimuth(z[:, 0])
    return z


def scan(
    origin: Origin,
    sensor: SensorSpec,
    enu_m: F64,
    rng: np.random.Generator,
    emits: NDArray[np.bool_] | None = None,
    *,
    visible: NDArray[np.bool_] | None = None,
) -> tuple[F64, NDArray[np.int64]]:
    """One scan over targets at ENU positions (n, 3); ``emits`` as in :func:`detectable`,
    ``visible`` (n,) that function's result, if already known.

    Returns measurements (m, 3) with Gaussian noise on each measured angle and the
    index of the target behind each (-1 for clutter), in random order.
    """
    dim = sensor.dim
    if visible is None:
        visible = detectable(origin, sensor, enu_m, emits)
    seen = np.flatnonzero(visible)
    hit = seen[rng.random(seen.size) < sensor.pd]
    z = measure(np.asarray(sensor.position_enu_m), enu_m[hit], dim)
    z[:, :dim] += rng.standard_normal((hit.size, dim)) * np.asarray(sensor.noise_std[:dim])
    z[:, 0] = radar.wrap_azimuth(z[:, 0])
    if dim == 2:
        z[:, 1] = np.clip(z[:, 1], -math.pi / 2, math.pi / 2)
    n_false = int(rng.poisson(sensor.clutter_per_scan)) if sensor.clutter_per_scan > 0 else 0
    z_all = np.concatenate([z, clutter(sensor, rng, n_false)])
    who = np.concatenate([hit.astype(np.int64), np.full(n_false, -1, dtype=np.int64)])
    order = rng.permutation(who.size)
    return z_all[order], who[order]
