import numpy as np
import pymap3d
import pyproj
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skyfence.geo import (
    Origin,
    ecef_to_geodetic,
    geodetic_to_ecef,
    height_above_origin_m,
    radar_horizon_visible,
)

_TO_ECEF = pyproj.Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True)

lats = st.floats(-89.9, 89.9)
lons = st.floats(-180.0, 180.0)
heights = st.floats(-500.0, 40_000.0)


def _points(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return rng.uniform(-89.99, 89.99, n), rng.uniform(-180, 180, n), rng.uniform(-400, 40_000, n)


def test_geodetic_to_ecef_matches_pyproj_to_the_millimetre() -> None:
    lat, lon, h = _points(np.random.default_rng(1), 5000)
    ours = geodetic_to_ecef(lat, lon, h)
    ref = np.stack(_TO_ECEF.transform(lon, lat, h), axis=1)
    assert np.abs(ours - ref).max() < 1e-3


def test_ecef_to_geodetic_matches_pyproj_to_the_millimetre() -> None:
    lat, lon, h = _points(np.random.default_rng(2), 5000)
    x, y, z = _TO_ECEF.transform(lon, lat, h)
    lat2, lon2, h2 = ecef_to_geodetic(np.stack([x, y, z], axis=1))
    back = np.stack(_TO_ECEF.transform(lon2, lat2, h2), axis=1)
    assert np.abs(back - np.stack([x, y, z], axis=1)).max() < 1e-3
    assert np.abs(h2 - h).max() < 1e-3


def test_enu_matches_pymap3d_to_the_millimetre() -> None:
    rng = np.random.default_rng(3)
    origin = Origin(47.45, 8.56, 420.0)
    lat = origin.lat_deg + rng.uniform(-1, 1, 2000)
    lon = origin.lon_deg + rng.uniform(-1, 1, 2000)
    h = rng.uniform(0, 12_000, 2000)
    ours = origin.geodetic_to_enu(lat, lon, h)
    ref = np.stack(pymap3d.geodetic2enu(lat, lon, h, origin.lat_deg, origin.lon_deg,
                                        origin.alt_m), axis=1)
    assert np.abs(ours - ref).max() < 1e-3


@settings(max_examples=200, deadline=None, derandomize=True)
@given(lat0=lats, lon0=lons, h0=st.floats(-100, 3000),
       enu=arrays(np.float64, (8, 3), elements=st.floats(-200_000, 200_000)))
def test_enu_round_trip(lat0: float, lon0: float, h0: float, enu: np.ndarray) -> None:
    origin = Origin(lat0, lon0, h0)
    back = origin.geodetic_to_enu(*origin.enu_to_geodetic(enu))
    assert np.abs(back - enu).max() < 1e-3


def test_origin_is_zero_and_up_is_up() -> None:
    origin = Origin(-33.9, 151.2, 50.0)
    assert np.abs(origin.geodetic_to_enu(-33.9, 151.2, 50.0)).max() < 1e-6
    up = origin.geodetic_to_enu(-33.9, 151.2, 1050.0)
    assert np.allclose(up, [0, 0, 1000], atol=1e-6)


def test_height_above_origin_accounts_for_curvature() -> None:
    origin = Origin(47.0, 8.0, 400.0)
    # A point on the tangent plane 50 km away is ~196 m above the ellipsoid surface there.
    h = height_above_origin_m(origin, np.array([[50_000.0, 0.0, 0.0]]))
    assert 150 < h[0] < 250


def test_radar_horizon_four_thirds_earth() -> None:
    # Sensor 20 m up: horizon ≈ 18.4 km; a 50 m target adds ≈ 29.1 km → ≈ 47.6 km.
    seen = radar_horizon_visible(20.0, np.array([50.0, 50.0, 2000.0]),
                                 np.array([45_000.0, 60_000.0, 60_000.0]))
    assert seen.tolist() == [True, False, True]
