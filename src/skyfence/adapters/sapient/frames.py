"""Frames and units of SAPIENT coordinates, vectorised over numpy arrays.

- UTM on WGS84 both ways (Krüger's series to sixth order in n, after Karney 2011,
  "Transverse Mercator with an accuracy of a few nanometres": well under a
  millimetre inside a zone), and zone labels such as ``30N`` or ``30U``.
- Directions measured in a node's own local frame (azimuth clockwise from its true
  north, elevation above its horizon) turned into the deployment's ENU frame, where
  skyfence's radar and bearing models measure them: over 10 km the two norths differ
  by about 0.1°, more than a good radar's azimuth noise.

Angles are radians unless a name says ``_deg``; heights are metres above the WGS84
ellipsoid.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from skyfence.geo import WGS84_A_M, WGS84_E2, WGS84_F, Origin

F64 = NDArray[np.float64]

UTM_K0 = 0.9996
UTM_FALSE_EASTING_M = 500_000.0
UTM_FALSE_NORTHING_SOUTH_M = 10_000_000.0
TWO_PI = 2.0 * math.pi

_N = WGS84_F / (2.0 - WGS84_F)
_E = math.sqrt(WGS84_E2)
#: Rectifying radius A (metres).
_A = WGS84_A_M / (1.0 + _N) * (1.0 + _N**2 / 4.0 + _N**4 / 64.0 + _N**6 / 256.0)


def _series(coefficients: tuple[tuple[float, ...], ...]) -> F64:
    """Σ c·nᵏ for each row of polynomial coefficients (k = 1…6)."""
    powers = np.array([_N**k for k in range(1, 7)])
    return np.array([np.dot(np.array(row), powers) for row in coefficients])


_ALPHA = _series((
    (1 / 2, -2 / 3, 5 / 16, 41 / 180, -127 / 288, 7891 / 37800),
    (0, 13 / 48, -3 / 5, 557 / 1440, 281 / 630, -1983433 / 1935360),
    (0, 0, 61 / 240, -103 / 140, 15061 / 26880, 167603 / 181440),
    (0, 0, 0, 49561 / 161280, -179 / 168, 6601661 / 7257600),
    (0, 0, 0, 0, 34729 / 80640, -3418889 / 1995840),
    (0, 0, 0, 0, 0, 212378941 / 319334400),
))
_BETA = _series((
    (1 / 2, -2 / 3, 37 / 96, -1 / 360, -81 / 512, 96199 / 604800),
    (0, 1 / 48, 1 / 15, -437 / 1440, 46 / 105, -1118711 / 3870720),
    (0, 0, 17 / 480, -37 / 840, -209 / 4480, 5569 / 90720),
    (0, 0, 0, 4397 / 161280, -11 / 504, -830251 / 7257600),
    (0, 0, 0, 0, 4583 / 161280, -108847 / 3991680),
    (0, 0, 0, 0, 0, 20648693 / 638668800),
))
_J2 = 2.0 * np.arange(1, 7, dtype=np.float64)


def central_meridian_deg(zone: ArrayLike) -> F64:
    return np.asarray(zone, dtype=np.float64) * 6.0 - 183.0


def parse_utm_zone(text: str) -> tuple[int, bool] | None:
    """``"30N"`` → (30, True); ``"30U"`` (an MGRS latitude band) → (30, True);
    ``"56H"`` → (56, False). None when it is not a zone.

    A final N or S is read as the hemisphere, as the ICD's example (``30N``) has it,
    although as MGRS bands N is northern and S is too (32–40°N); bands C–M are
    southern, P–X northern.
    """
    t = text.strip().upper().replace(" ", "")
    digits = len(t) - len(t.lstrip("0123456789"))
    if digits == 0 or digits > 2 or len(t) != digits + 1:
        return None
    zone, letter = int(t[:digits]), t[digits:]
    if not 1 <= zone <= 60 or letter in ("I", "O") or not "C" <= letter <= "X":
        return None
    if letter in ("N", "S"):
        return zone, letter == "N"
    return zone, letter > "M"


def utm_zone_of(lon_deg: float) -> int:
    """The standard UTM zone of a longitude (no Norway/Svalbard exceptions)."""
    return int(min(60, max(1, math.floor((lon_deg + 180.0) / 6.0) + 1)))


def geodetic_to_utm(lat_deg: ArrayLike, lon_deg: ArrayLike, zone: ArrayLike,
                    north: ArrayLike) -> tuple[F64, F64]:
    """(easting_m, northing_m) in the given zones (not necessarily the points' own)."""
    phi = np.radians(np.asarray(lat_deg, dtype=np.float64))
    lam = np.radians(np.asarray(lon_deg, dtype=np.float64) - central_meridian_deg(zone))
    sin_phi = np.sin(phi)
    tau = np.sinh(np.arctanh(sin_phi) - _E * np.arctanh(_E * sin_phi))  # conformal tan φ
    xi1 = np.arctan2(tau, np.cos(lam))
    eta1 = np.arctanh(np.sin(lam) / np.sqrt(1.0 + tau**2))
    j = _J2[:, None] if xi1.ndim else _J2
    a = _ALPHA[:, None] if xi1.ndim else _ALPHA
    xi = xi1 + np.sum(a * np.sin(j * xi1) * np.cosh(j * eta1), axis=0)
    eta = eta1 + np.sum(a * np.cos(j * xi1) * np.sinh(j * eta1), axis=0)
    easting = UTM_FALSE_EASTING_M + UTM_K0 * _A * eta
    northing = UTM_K0 * _A * xi + np.where(np.asarray(north, dtype=bool), 0.0,
                                           UTM_FALSE_NORTHING_SOUTH_M)
    return np.asarray(easting, dtype=np.float64), np.asarray(northing, dtype=np.float64)


def utm_to_geodetic(easting_m: ArrayLike, northing_m: ArrayLike, zone: ArrayLike,
                    north: ArrayLike) -> tuple[F64, F64]:
    """(lat_deg, lon_deg) of UTM coordinates."""
    e = np.asarray(easting_m, dtype=np.float64)
    n = np.asarray(northing_m, dtype=np.float64) - np.where(
        np.asarray(north, dtype=bool), 0.0, UTM_FALSE_NORTHING_SOUTH_M)
    xi = n / (UTM_K0 * _A)
    eta = (e - UTM_FALSE_EASTING_M) / (UTM_K0 * _A)
    j = _J2[:, None] if xi.ndim else _J2
    b = _BETA[:, None] if xi.ndim else _BETA
    xi1 = xi - np.sum(b * np.sin(j * xi) * np.cosh(j * eta), axis=0)
    eta1 = eta - np.sum(b * np.cos(j * xi) * np.sinh(j * eta), axis=0)
    tau1 = np.sin(xi1) / np.sqrt(np.sinh(eta1) ** 2 + np.cos(xi1) ** 2)
    lam = np.arctan2(np.sinh(eta1), np.cos(xi1))
    tau = tau1.copy()
    for _ in range(3):  # Newton on τ' (τ); converges to machine precision in 2-3 steps
        sigma = np.sinh(_E * np.arctanh(_E * tau / np.sqrt(1.0 + tau**2)))
        tau_i = tau * np.sqrt(1.0 + sigma**2) - sigma * np.sqrt(1.0 + tau**2)
        tau += ((tau1 - tau_i) / np.sqrt(1.0 + tau_i**2)
                * (1.0 + (1.0 - WGS84_E2) * tau**2)
                / ((1.0 - WGS84_E2) * np.sqrt(1.0 + tau**2)))
    lat = np.degrees(np.arctan(tau))
    lon = np.degrees(lam) + central_meridian_deg(zone)
    return (np.asarray(lat, dtype=np.float64),
            np.asarray((lon + 180.0) % 360.0 - 180.0, dtype=np.float64))


def grid_convergence_rad(lat_deg: float, lon_deg: float, zone: int, north: bool) -> float:
    """Bearing of UTM grid north, clockwise from true north, at a point: an azimuth
    from grid north plus this is an azimuth from true north."""
    e, n = geodetic_to_utm(lat_deg, lon_deg, zone, north)
    lat2, lon2 = utm_to_geodetic(e, n + 1.0, zone, north)
    enu = Origin(lat_deg, lon_deg, 0.0).geodetic_to_enu(lat2, lon2, 0.0)
    return math.atan2(float(enu[0]), float(enu[1]))


def local_to_origin_angles(azimuth_rad: F64, elevation_rad: F64, node: Origin,
                           origin: Origin) -> tuple[F64, F64]:
    """Directions seen from ``node`` in its own local frame (azimuth clockwise from
    its north, elevation above its horizon), as azimuth in [0, 2π) and elevation in
    the ENU frame of ``origin``."""
    cos_el = np.cos(elevation_rad)
    local = np.stack([cos_el * np.sin(azimuth_rad), cos_el * np.cos(azimuth_rad),
                      np.sin(elevation_rad)], axis=-1)
    turn = origin.rotation @ node.rotation.T  # node ENU → ECEF → origin ENU
    d = local @ turn.T
    az = np.remainder(np.arctan2(d[..., 0], d[..., 1]), TWO_PI)
    az = np.where(az >= TWO_PI, 0.0, az)
    el = np.arctan2(d[..., 2], np.hypot(d[..., 0], d[..., 1]))
    return np.asarray(az, dtype=np.float64), np.asarray(el, dtype=np.float64)


def local_rotations(lat_deg: F64, lon_deg: F64, origin: Origin) -> F64:
    """(n, 3, 3) rotations taking origin-ENU vectors to local ENU at each point."""
    lat, lon = np.radians(lat_deg), np.radians(lon_deg)
    sl, cl, so, co = np.sin(lat), np.cos(lat), np.sin(lon), np.cos(lon)
    zero = np.zeros_like(lat)
    local = np.stack([np.stack([-so, co, zero], axis=-1),
                      np.stack([-sl * co, -sl * so, cl], axis=-1),
                      np.stack([cl * co, cl * so, sl], axis=-1)], axis=-2)
    out: F64 = local @ origin.rotation.T
    return out
