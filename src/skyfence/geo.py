"""WGS84 geodetic ↔ ECEF ↔ local ENU conversions, vectorised over numpy arrays.

Angles at this edge are in degrees (``lat_deg``, ``lon_deg``) since that is how
positions arrive from the outside world; heights are metres above the WGS84
ellipsoid. ENU is the local tangent frame at a deployment origin.

Written here rather than called from pyproj/pymap3d because these run on the
tracker's hot path over whole arrays at once, with no per-call set-up, and the
code is short; tests check them against pyproj to the millimetre.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

WGS84_A_M = 6378137.0
WGS84_F = 1.0 / 298.257223563
WGS84_B_M = WGS84_A_M * (1.0 - WGS84_F)
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)
WGS84_EP2 = WGS84_E2 / (1.0 - WGS84_E2)
#: Mean earth radius, for horizon and curvature estimates (m).
EARTH_RADIUS_M = 6371008.8
#: Effective-earth factor for radar propagation in a standard atmosphere.
K_FOUR_THIRDS = 4.0 / 3.0

F64 = NDArray[np.float64]


def geodetic_to_ecef(lat_deg: ArrayLike, lon_deg: ArrayLike, h_m: ArrayLike) -> F64:
    """Geodetic (degrees, metres above ellipsoid) → ECEF, shape (..., 3) metres."""
    lat = np.radians(np.asarray(lat_deg, dtype=np.float64))
    lon = np.radians(np.asarray(lon_deg, dtype=np.float64))
    h = np.asarray(h_m, dtype=np.float64)
    sin_lat = np.sin(lat)
    n = WGS84_A_M / np.sqrt(1.0 - WGS84_E2 * sin_lat**2)
    x = (n + h) * np.cos(lat) * np.cos(lon)
    y = (n + h) * np.cos(lat) * np.sin(lon)
    z = (n * (1.0 - WGS84_E2) + h) * sin_lat
    return np.stack(np.broadcast_arrays(x, y, z), axis=-1)


def ecef_to_geodetic(xyz_m: ArrayLike) -> tuple[F64, F64, F64]:
    """ECEF (..., 3) metres → (lat_deg, lon_deg, h_m).

    Bowring's closed form followed by one Newton-style refinement of the
    latitude: sub-millimetre from the ground to geostationary heights.
    """
    xyz = np.asarray(xyz_m, dtype=np.float64)
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    lon = np.arctan2(y, x)
    p = np.hypot(x, y)
    theta = np.arctan2(z * WGS84_A_M, p * WGS84_B_M)
    lat = np.arctan2(
        z + WGS84_EP2 * WGS84_B_M * np.sin(theta) ** 3,
        p - WGS84_E2 * WGS84_A_M * np.cos(theta) ** 3,
    )
    for _ in range(2):
        sin_lat = np.sin(lat)
        n = WGS84_A_M / np.sqrt(1.0 - WGS84_E2 * sin_lat**2)
        h = np.where(
            np.abs(np.cos(lat)) > 1e-10,
            p / np.maximum(np.cos(lat), 1e-300) - n,
            np.abs(z) - WGS84_B_M,
        )
        lat = np.arctan2(z, p * (1.0 - WGS84_E2 * n / (n + h)))
    sin_lat = np.sin(lat)
    cos_lat = np.cos(lat)
    n = WGS84_A_M / np.sqrt(1.0 - WGS84_E2 * sin_lat**2)
    # Height along the normal, stable at every latitude.
    h = p * cos_lat + z * sin_lat - WGS84_A_M**2 / n
    return np.degrees(lat), np.degrees(lon), h


def _enu_rotation(lat_deg: float, lon_deg: float) -> F64:
    """Rows are the E, N, U unit vectors in ECEF at the given point."""
    lat, lon = np.radians(lat_deg), np.radians(lon_deg)
    sl, cl, so, co = np.sin(lat), np.cos(lat), np.sin(lon), np.cos(lon)
    return np.array(
        [
            [-so, co, 0.0],
            [-sl * co, -sl * so, cl],
            [cl * co, cl * so, sl],
        ]
    )


@dataclass(frozen=True, slots=True)
class Origin:
    """The deployment's local ENU tangent frame: its origin in WGS84."""

    lat_deg: float
    lon_deg: float
    alt_m: float

    @property
    def ecef_m(self) -> F64:
        return geodetic_to_ecef(self.lat_deg, self.lon_deg, self.alt_m)

    @property
    def rotation(self) -> F64:
        return _enu_rotation(self.lat_deg, self.lon_deg)

    def ecef_to_enu(self, xyz_m: ArrayLike) -> F64:
        """ECEF (..., 3) → ENU (..., 3), metres."""
        d = np.asarray(xyz_m, dtype=np.float64) - self.ecef_m
        return d @ self.rotation.T

    def enu_to_ecef(self, enu_m: ArrayLike) -> F64:
        """ENU (..., 3) → ECEF (..., 3), metres."""
        return np.asarray(enu_m, dtype=np.float64) @ self.rotation + self.ecef_m

    def geodetic_to_enu(self, lat_deg: ArrayLike, lon_deg: ArrayLike, h_m: ArrayLike) -> F64:
        """Geodetic (degrees, metres above ellipsoid) → ENU (..., 3), metres."""
        return self.ecef_to_enu(geodetic_to_ecef(lat_deg, lon_deg, h_m))

    def enu_to_geodetic(self, enu_m: ArrayLike) -> tuple[F64, F64, F64]:
        """ENU (..., 3) metres → (lat_deg, lon_deg, h_m above ellipsoid)."""
        return ecef_to_geodetic(self.enu_to_ecef(enu_m))

    def enu_velocity_to_ecef(self, v_enu: ArrayLike) -> F64:
        """Rotate ENU vectors (..., 3) into ECEF axes (no translation)."""
        return np.asarray(v_enu, dtype=np.float64) @ self.rotation


def height_above_origin_m(origin: Origin, enu_m: ArrayLike) -> F64:
    """Ellipsoidal height of ENU points (..., 3) minus the origin's height (m).

    On flat terrain at the origin's height this is the height above ground.
    """
    return origin.enu_to_geodetic(enu_m)[2] - origin.alt_m


def radar_horizon_visible(
    sensor_height_m: ArrayLike,
    target_height_m: ArrayLike,
    ground_distance_m: ArrayLike,
    *,
    k: float = K_FOUR_THIRDS,
) -> NDArray[np.bool_]:
    """Line of sight over a smooth earth of radius k·R (4/3 model by default).

    Heights are above the ground sphere; a target is visible when the ground
    distance is within the sum of both horizon distances √(2kRh).
    """
    r = k * EARTH_RADIUS_M
    hs = np.maximum(np.asarray(sensor_height_m, dtype=np.float64), 0.0)
    ht = np.asarray(target_height_m, dtype=np.float64)
    horizon = np.sqrt(2.0 * r * hs) + np.sqrt(2.0 * r * np.maximum(ht, 0.0))
    return (ht >= 0.0) & (np.asarray(ground_distance_m, dtype=np.float64) <= horizon)
