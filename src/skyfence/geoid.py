"""EGM96 geoid heights, for converting between AMSL and WGS84 ellipsoidal heights.

Zones give their altitude limits above mean sea level (AMSL) while tracks carry
heights above the WGS84 ellipsoid; the two differ by the geoid height N (the
height of the EGM96 geoid above the ellipsoid, about −107…+86 m worldwide):
``h_ellipsoid_m = h_amsl_m + N``. AMSL here means height above the EGM96 geoid.

The grid ships with skyfence (``skyfence/data/egm96.npz``, built by
``tools/make_geoid.py`` from NGA's public-domain 15-arc-minute EGM96 grid) so
that nothing downloads at run time: we found no Python package on the registry
that ships the EGM96 grid — ``egm96`` on PyPI is an empty placeholder (0.1.0
holds an empty ``__init__.py``), and pyproj fetches its geoid grids from the
network when first used. Bilinear interpolation on the 15' grid agrees with NGA's own
spherical-harmonic test values to within 6 cm (tests/test_geoid.py), of which
the centimetre rounding of the shipped grid is at most 5 mm.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

import numpy as np
from numpy.typing import ArrayLike, NDArray

from skyfence.errors import InputError, SkyfenceError

F64 = NDArray[np.float64]

_DATA_FILE = "egm96.npz"


@dataclass(frozen=True, slots=True)
class _Grid:
    """Geoid heights on a global regular grid, row 0 at the south pole.

    ``n_cm`` is (rows, cols) int16 centimetres; columns start at ``lon0_deg`` and
    go once round the globe with no repeated column, rows run from −90° to +90°.
    """

    n_cm: NDArray[np.int16]
    lat0_deg: float
    lon0_deg: float
    dlat_deg: float
    dlon_deg: float


@functools.cache
def _grid() -> _Grid:
    ref = resources.files("skyfence") / "data" / _DATA_FILE
    try:
        with ref.open("rb") as fh, np.load(fh, allow_pickle=False) as npz:
            n_cm = np.asarray(npz["n_cm"], dtype=np.int16)
            lat0, lon0 = float(npz["lat0_deg"]), float(npz["lon0_deg"])
            dlat, dlon = float(npz["dlat_deg"]), float(npz["dlon_deg"])
    except FileNotFoundError as err:
        raise SkyfenceError(
            f"the EGM96 grid skyfence/data/{_DATA_FILE} is missing from the installed package; "
            "reinstall skyfence, or rebuild it with tools/make_geoid.py"
        ) from err
    n_cm.setflags(write=False)
    return _Grid(n_cm=n_cm, lat0_deg=lat0, lon0_deg=lon0, dlat_deg=dlat, dlon_deg=dlon)


def geoid_height_m(lat_deg: ArrayLike, lon_deg: ArrayLike) -> F64:
    """EGM96 geoid height N above the WGS84 ellipsoid, metres, bilinear on the 15' grid.

    ``lat_deg`` and ``lon_deg`` are geodetic degrees of any shapes that broadcast
    together; the result is float64 of the broadcast shape (0-d for scalars).
    Longitudes may be in any range (−180…180, 0…360, or beyond); latitudes must
    lie in −90…90, else ``InputError``. A NaN or infinite longitude, or a NaN
    latitude, gives NaN there, so arrays with gaps pass through.
    """
    lat, lon = np.broadcast_arrays(
        np.asarray(lat_deg, dtype=np.float64), np.asarray(lon_deg, dtype=np.float64)
    )
    bad = np.abs(lat) > 90.0
    if bad.any():
        first = float(lat[bad].flat[0])
        raise InputError(
            f"latitude {first!r} is outside -90..90 ({int(bad.sum())} such value(s))",
            field="lat_deg",
            fix="latitudes are geodetic degrees north; check for swapped lat/lon or radians",
        )
    ok = np.isfinite(lat) & np.isfinite(lon)
    # Placeholders where the input is missing keep floor/cast free of invalid-value warnings.
    lat = np.where(ok, lat, 0.0)
    lon = np.where(ok, lon, 0.0)

    g = _grid()
    rows, cols = g.n_cm.shape
    fi = (lat - g.lat0_deg) / g.dlat_deg
    # The top row is the north pole itself: clip so that +90° interpolates within the last cell.
    i0 = np.clip(np.floor(fi), 0, rows - 2).astype(np.intp)
    t = fi - i0
    fj = np.mod(lon - g.lon0_deg, 360.0) / g.dlon_deg
    j_floor = np.floor(fj)
    u = fj - j_floor
    # mod can round a tiny negative up to exactly 360°, hence the second wrap.
    j0 = j_floor.astype(np.intp) % cols
    j1 = (j0 + 1) % cols

    n = g.n_cm
    south = (1.0 - u) * n[i0, j0] + u * n[i0, j1]
    north = (1.0 - u) * n[i0 + 1, j0] + u * n[i0 + 1, j1]
    n_m: F64 = ((1.0 - t) * south + t * north) * 0.01
    return np.where(ok, n_m, np.nan)


def amsl_to_ellipsoid_m(h_amsl_m: ArrayLike, lat_deg: ArrayLike, lon_deg: ArrayLike) -> F64:
    """Height above the EGM96 geoid (m) → height above the WGS84 ellipsoid (m), broadcast."""
    return np.asarray(h_amsl_m, dtype=np.float64) + geoid_height_m(lat_deg, lon_deg)


def ellipsoid_to_amsl_m(h_ellipsoid_m: ArrayLike, lat_deg: ArrayLike, lon_deg: ArrayLike) -> F64:
    """Height above the WGS84 ellipsoid (m) → height above the EGM96 geoid (m), broadcast."""
    return np.asarray(h_ellipsoid_m, dtype=np.float64) - geoid_height_m(lat_deg, lon_deg)
