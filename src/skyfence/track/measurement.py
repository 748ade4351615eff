"""Measurement models: what each sensor kind measures of a state, in its native frame.

A model predicts measurements and their Jacobian for many states at once,
forms residuals (wrapping angles), converts measurements into ENU positions
(for gating pre-selection and track initiation) and says which predicted
positions the sensor can see at all (so that a track out of cover is not
charged with a miss).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from skyfence.geo import Origin, height_above_origin_m, radar_horizon_visible
from skyfence.scenario import Region, SensorSpec
from skyfence.track.models import STATE_DIM
from skyfence.types import F64

TWO_PI = 2.0 * math.pi


def wrap_pi(a: F64) -> F64:
    """Angles wrapped into [−π, π)."""
    return (a + math.pi) % TWO_PI - math.pi


class MeasurementModel(Protocol):
    @property
    def sensor_pos(self) -> F64:
        """The sensor's ENU position (3,), m."""
        ...

    @property
    def max_range_m(self) -> float:
        """Beyond this range it sees nothing (inf: unlimited)."""
        ...

    @property
    def dim(self) -> int:
        """Number of measured components."""
        ...

    @property
    def pd(self) -> float:
        """Probability of detection, for the track-confirmation test."""
        ...

    @property
    def clutter_per_scan(self) -> float:
        """False detections per scan as stated for the sensor; 0 when unknown (estimated)."""
        ...

    @property
    def cooperative(self) -> bool:
        """Reports come from the targets themselves (ADS-B, Remote ID): no clutter, and a
        target that does not report is not missed."""
        ...

    @property
    def initiates(self) -> bool:
        """One measurement fixes a position (``to_enu``); bearings need triangulating."""
        ...

    @property
    def partner(self) -> bool:
        """Reports are a partner node's tracks (fused whole, by covariance intersection)."""
        ...

    @property
    def modality(self) -> str | None:
        """What a bearing sensor is (``rf``, ``eo``, ``ir``, ``acoustic``); None otherwise."""
        ...

    def predict(self, x: F64) -> tuple[F64, F64]:
        """Predicted measurements (n, dim) and Jacobian (n, dim, 7) of states (n, 7)."""
        ...

    def residual(self, z: F64, z_pred: F64) -> F64:
        """z − z_pred with angles wrapped, (n, dim)."""
        ...

    def to_enu(self, z: F64, R: F64) -> tuple[F64, F64]:
        """ENU positions (m, 3) and their covariances (m, 3, 3) of measurements (m, dim)."""
        ...

    def visible(self, pos: F64) -> np.ndarray:
        """Whether the sensor could detect targets at ENU positions (n, 3), by geometry
        alone: bool (n,). (The tracker decides what a silence means: a cooperative
        receiver's says nothing.)"""
        ...

    #: Period of each measurement component (0: not periodic), for gating distances.
    @property
    def periods(self) -> F64:
        ...

    def coverage_extent(self) -> F64 | None:
        """Span of each measurement component over the sensor's cover, if it is bounded."""
        ...

    @property
    def min_extent(self) -> F64:
        """Smallest span assumed for each component when the cover is unbounded.

        The clutter density of such a sensor is estimated over the extent of
        what it has reported; a few early detections must not make that
        volume (and so the track-confirmation evidence) absurdly small.
        """
        ...


@dataclass(frozen=True, slots=True)
class PositionModel:
    """A sensor that reports ENU positions directly (noisy, Cartesian)."""

    sensor_pos: F64
    max_range_m: float
    pd: float = 0.9
    #: The surveillance volume's spans (east, north, up), when the scenario gives one.
    region_extent: F64 | None = None
    #: False detections per scan, when the scenario states it (0: estimate from the data).
    clutter_per_scan: float = 0.0
    #: A cooperative sensor (ADS-B, Remote ID receiver): positions the targets report.
    cooperative: bool = False
    #: A partner node's tracks: fused whole (state and covariance), not as positions.
    partner: bool = False
    dim: int = 3
    initiates: bool = True
    modality: str | None = None

    def predict(self, x: F64) -> tuple[F64, F64]:
        h = np.zeros((x.shape[0], 3, STATE_DIM))
        h[:, 0, 0] = h[:, 1, 1] = h[:, 2, 2] = 1.0
        return x[:, :3].copy(), h

    def residual(self, z: F64, z_pred: F64) -> F64:
        return z - z_pred

    def to_enu(self, z: F64, R: F64) -> tuple[F64, F64]:
        return z.copy(), R.copy()

    @property
    def periods(self) -> F64:
        return np.zeros(3)

    def coverage_extent(self) -> F64 | None:
        if self.region_extent is not None:
            return self.region_extent
        if math.isinf(self.max_range_m):
            return None
        return np.full(3, 2.0 * self.max_range_m)

    @property
    def min_extent(self) -> F64:
        return np.array([1000.0, 1000.0, 300.0])

    def visible(self, pos: F64) -> np.ndarray:
        if math.isinf(self.max_range_m):
            return np.ones(pos.shape[0], dtype=bool)
        d = np.linalg.norm(pos - self.sensor_pos, axis=1)
        return np.asarray(d <= self.max_range_m)


def azimuth_residual(z: F64, z_pred: F64, column: int) -> F64:
    """z − z_pred (n, dim) with the azimuth in ``column`` wrapped into [−π, π)."""
    nu = z - z_pred
    nu[:, column] = wrap_pi(nu[:, column])
    return nu


def spherical(x: F64, sensor_pos: F64) -> tuple[F64, F64]:
    """Range, azimuth, elevation (n, 3) of ENU states from ``sensor_pos``, and the Jacobian
    (n, 3, 7) with respect to the state."""
    d = x[:, :3] - sensor_pos
    de, dn, du = d[:, 0], d[:, 1], d[:, 2]
    rho2 = np.maximum(de**2 + dn**2, 1e-6)
    rho = np.sqrt(rho2)
    r2 = rho2 + du**2
    r = np.sqrt(r2)
    z = np.stack([r, np.arctan2(de, dn), np.arctan2(du, rho)], axis=1)
    h = np.zeros((x.shape[0], 3, STATE_DIM))
    h[:, 0, 0], h[:, 0, 1], h[:, 0, 2] = de / r, dn / r, du / r
    h[:, 1, 0], h[:, 1, 1] = dn / rho2, -de / rho2
    h[:, 2, 0] = -du * de / (r2 * rho)
    h[:, 2, 1] = -du * dn / (r2 * rho)
    h[:, 2, 2] = rho / r2
    return z, h


def line_of_sight(origin: Origin, sensor_pos: F64, pos: F64, max_range_m: float,
                  min_elevation_rad: float) -> NDArray[np.bool_]:
    """Whether ENU positions (n, 3) are within range, above the minimum elevation and
    over the 4/3-earth horizon of a sensor at ``sensor_pos`` (radio and radar alike;
    optical refraction bends a little less, which this does not model)."""
    d = pos - sensor_pos
    ground = np.hypot(d[:, 0], d[:, 1])
    rng = np.hypot(ground, d[:, 2])
    el = np.arctan2(d[:, 2], ground)
    heights = height_above_origin_m(origin, np.vstack([sensor_pos, pos]))
    over_horizon = radar_horizon_visible(heights[0], heights[1:], ground)
    return np.asarray((rng <= max_range_m) & (el >= min_elevation_rad) & over_horizon)


@dataclass(frozen=True, slots=True)
class RadarModel:
    """A 3-D radar: range, azimuth (clockwise from north), elevation, from ``sensor_pos``."""

    sensor_pos: F64
    max_range_m: float
    min_elevation_rad: float
    origin: Origin
    pd: float = 0.9
    #: False detections per scan, when the scenario states it (0: estimate from the data).
    clutter_per_scan: float = 0.0
    dim: int = 3
    cooperative: bool = False
    initiates: bool = True
    partner: bool = False
    modality: str | None = None

    def predict(self, x: F64) -> tuple[F64, F64]:
        return spherical(x, self.sensor_pos)

    def residual(self, z: F64, z_pred: F64) -> F64:
        return azimuth_residual(z, z_pred, 1)

    def to_enu(self, z: F64, R: F64) -> tuple[F64, F64]:
        r, az, el = z[:, 0], z[:, 1], z[:, 2]
        sa, ca, se, ce = np.sin(az), np.cos(az), np.sin(el), np.cos(el)
        pos = self.sensor_pos + np.stack([r * sa * ce, r * ca * ce, r * se], axis=1)
        j = np.empty((z.shape[0], 3, 3))
        j[:, :, 0] = np.stack([sa * ce, ca * ce, se], axis=1)
        j[:, :, 1] = np.stack([r * ca * ce, -r * sa * ce, np.zeros_like(r)], axis=1)
        j[:, :, 2] = np.stack([-r * sa * se, -r * ca * se, r * ce], axis=1)
        cov = j @ R @ j.transpose(0, 2, 1)
        return pos, 0.5 * (cov + cov.transpose(0, 2, 1))

    @property
    def periods(self) -> F64:
        return np.array([0.0, TWO_PI, 0.0])

    def coverage_extent(self) -> F64 | None:
        if math.isinf(self.max_range_m):
            return None
        # Elevations far below the horizon carry no returns worth counting.
        low = max(self.min_elevation_rad, -math.pi / 18)
        return np.array([self.max_range_m, TWO_PI, math.pi / 2 - low])

    @property
    def min_extent(self) -> F64:
        return np.array([1000.0, 0.5, 0.1])

    def visible(self, pos: F64) -> np.ndarray:
        return line_of_sight(self.origin, self.sensor_pos, pos, self.max_range_m,
                             self.min_elevation_rad)


@dataclass(frozen=True, slots=True)
class Radar2DModel:
    """A 2-D radar: slant range and azimuth from ``sensor_pos``; height is not measured.

    A new track from it starts at ``assumed_height_m`` above the origin with
    ``assumed_height_std_m``: the height a drone or low aircraft flies at, loosely.
    """

    sensor_pos: F64
    max_range_m: float
    min_elevation_rad: float
    origin: Origin
    pd: float = 0.9
    clutter_per_scan: float = 0.0
    assumed_height_m: float = 120.0
    assumed_height_std_m: float = 150.0
    dim: int = 2
    cooperative: bool = False
    initiates: bool = True
    partner: bool = False
    modality: str | None = None

    def predict(self, x: F64) -> tuple[F64, F64]:
        z, h = spherical(x, self.sensor_pos)
        return z[:, :2].copy(), h[:, :2].copy()

    def residual(self, z: F64, z_pred: F64) -> F64:
        return azimuth_residual(z, z_pred, 1)

    def to_enu(self, z: F64, R: F64) -> tuple[F64, F64]:
        r, az = z[:, 0], z[:, 1]
        du = np.full_like(r, self.assumed_height_m - self.sensor_pos[2])
        # The target at the assumed height, or level with the radar if the slant range
        # is shorter than that height difference.
        du = np.clip(du, -0.95 * r, 0.95 * r)
        rho = np.sqrt(r**2 - du**2)
        sa, ca = np.sin(az), np.cos(az)
        pos = self.sensor_pos + np.stack([rho * sa, rho * ca, du], axis=1)
        # Jacobian with respect to (range, azimuth, height offset).
        j = np.zeros((z.shape[0], 3, 3))
        j[:, 0, 0], j[:, 1, 0] = r / rho * sa, r / rho * ca
        j[:, 0, 1], j[:, 1, 1] = rho * ca, -rho * sa
        j[:, 0, 2], j[:, 1, 2], j[:, 2, 2] = -du / rho * sa, -du / rho * ca, 1.0
        cov_in = np.zeros((z.shape[0], 3, 3))
        cov_in[:, :2, :2] = R
        cov_in[:, 2, 2] = self.assumed_height_std_m**2
        cov = j @ cov_in @ j.transpose(0, 2, 1)
        return pos, 0.5 * (cov + cov.transpose(0, 2, 1))

    @property
    def periods(self) -> F64:
        return np.array([0.0, TWO_PI])

    def coverage_extent(self) -> F64 | None:
        if math.isinf(self.max_range_m):
            return None
        return np.array([self.max_range_m, TWO_PI])

    @property
    def min_extent(self) -> F64:
        return np.array([1000.0, 0.5])

    def visible(self, pos: F64) -> np.ndarray:
        return line_of_sight(self.origin, self.sensor_pos, pos, self.max_range_m,
                             self.min_elevation_rad)


@dataclass(frozen=True, slots=True)
class BearingModel:
    """Azimuth (``dim`` 1) or azimuth and elevation (``dim`` 2) from ``sensor_pos``:
    an RF direction finder, an EO/IR camera, an acoustic array. No range, so its
    detections start tracks only by triangulation with another sensor's."""

    sensor_pos: F64
    max_range_m: float
    min_elevation_rad: float
    origin: Origin
    dim: int
    modality: str | None = "rf"
    pd: float = 0.9
    clutter_per_scan: float = 0.0
    cooperative: bool = False
    initiates: bool = False
    partner: bool = False

    def predict(self, x: F64) -> tuple[F64, F64]:
        z, h = spherical(x, self.sensor_pos)
        return z[:, 1:1 + self.dim].copy(), h[:, 1:1 + self.dim].copy()

    def residual(self, z: F64, z_pred: F64) -> F64:
        return azimuth_residual(z, z_pred, 0)

    def to_enu(self, z: F64, R: F64) -> tuple[F64, F64]:
        raise ValueError("a bearing does not fix a position: triangulate (see triangulate)")

    @property
    def periods(self) -> F64:
        return np.array([TWO_PI, 0.0][:self.dim])

    def coverage_extent(self) -> F64 | None:
        low = max(self.min_elevation_rad, -math.pi / 18)
        return np.array([TWO_PI, math.pi / 2 - low][:self.dim])

    @property
    def min_extent(self) -> F64:
        return np.array([0.5, 0.1][:self.dim])

    def visible(self, pos: F64) -> np.ndarray:
        return line_of_sight(self.origin, self.sensor_pos, pos, self.max_range_m,
                             self.min_elevation_rad)


def model_for(sensor: SensorSpec, origin: Origin, region: Region | None = None
              ) -> MeasurementModel:
    pos = np.asarray(sensor.position_enu_m, dtype=np.float64)
    rng, pd, clutter = sensor.max_range_m, sensor.pd, sensor.clutter_per_scan
    min_el = sensor.min_elevation_rad
    if sensor.kind == "radar":
        return RadarModel(sensor_pos=pos, max_range_m=rng, min_elevation_rad=min_el,
                          origin=origin, pd=pd, clutter_per_scan=clutter)
    if sensor.kind == "radar2d":
        return Radar2DModel(sensor_pos=pos, max_range_m=rng, min_elevation_rad=min_el,
                            origin=origin, pd=pd, clutter_per_scan=clutter)
    if sensor.kind == "bearing":
        return BearingModel(sensor_pos=pos, max_range_m=rng, min_elevation_rad=min_el,
                            origin=origin, dim=sensor.bearing_dim,
                            modality=sensor.modality or "rf", pd=pd, clutter_per_scan=clutter)
    if sensor.kind in ("position", "cooperative", "track"):
        extent = None if region is None else np.array(
            [b - a for a, b in (region.east_m, region.north_m, region.up_m)])
        return PositionModel(sensor_pos=pos, max_range_m=rng, pd=pd, region_extent=extent,
                             clutter_per_scan=clutter, cooperative=sensor.kind == "cooperative",
                             partner=sensor.kind == "track")
    raise ValueError(f"no measurement model for sensor kind {sensor.kind!r}")
