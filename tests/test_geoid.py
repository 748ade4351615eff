import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyfence.errors import InputError, SkyfenceError
from skyfence.geoid import amsl_to_ellipsoid_m, ellipsoid_to_amsl_m, geoid_height_m

# NGA's published EGM96 check values (lat_deg, lon_deg, N_m), computed from the
# spherical-harmonic model itself and so independent of the shipped grid.
NGA_TEST_VALUES = [
    (38.6281550, 269.7791550, -31.628),
    (-14.6212170, 305.0211140, -2.969),
    (46.8743190, 102.4487290, -43.575),
    (-23.6174460, 133.8747120, 15.871),
    (38.6254730, 359.9995000, 50.066),
    (-0.4667440, 0.0023000, 17.329),
]
# Bilinear on the 15' grid misses these by at most 5.6 cm (at -23.6°, 133.9°):
# the grid's own resolution, not its centimetre rounding (≤ 5 mm).
NGA_TOLERANCE_M = 0.06

# EGM96 spans -106.99 m (south of India) to +85.39 m (New Guinea).
EGM96_MIN_M, EGM96_MAX_M = -107.0, 86.0

# The raw grid is only for the build-time cross-check; every other test uses what ships.
GTX_PATH = Path(os.environ.get("SKYFENCE_EGM96_GTX", "/usr/share/proj/egm96_15.gtx"))


@pytest.mark.parametrize(("lat_deg", "lon_deg", "expected_m"), NGA_TEST_VALUES)
def test_matches_nga_test_values(lat_deg: float, lon_deg: float, expected_m: float) -> None:
    assert abs(float(geoid_height_m(lat_deg, lon_deg)) - expected_m) < NGA_TOLERANCE_M


def test_nga_values_in_one_vectorised_call() -> None:
    lat, lon, expected = np.array(NGA_TEST_VALUES).T
    n = geoid_height_m(lat, lon)
    assert n.dtype == np.float64
    assert n.shape == (len(NGA_TEST_VALUES),)
    assert np.abs(n - expected).max() < NGA_TOLERANCE_M


def test_shapes_broadcast() -> None:
    lat = np.array([[-45.0], [0.0], [52.3]])
    lon = np.array([-170.0, 0.0, 13.4, 179.9])
    n = geoid_height_m(lat, lon)
    assert n.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            assert n[i, j] == geoid_height_m(lat[i, 0], lon[j])
    scalar = geoid_height_m(52.3, 13.4)
    assert scalar.shape == ()
    assert scalar.dtype == np.float64
    assert geoid_height_m([52.3], 13.4).shape == (1,)
    assert geoid_height_m(np.empty((0, 2)), 0.0).shape == (0, 2)


def test_longitude_wraps() -> None:
    rng = np.random.default_rng(7)
    lat = rng.uniform(-90.0, 90.0, 5000)
    lon = rng.uniform(-180.0, 180.0, 5000)
    n = geoid_height_m(lat, lon)
    for shift_deg in (-360.0, 360.0, 720.0, -1080.0):
        np.testing.assert_allclose(geoid_height_m(lat, lon + shift_deg), n, rtol=0, atol=1e-9)


def test_continuous_across_the_antimeridian_and_greenwich() -> None:
    lat = np.linspace(-89.0, 89.0, 179)
    for lon_deg in (180.0, 0.0):
        east = geoid_height_m(lat, lon_deg - 1e-9)
        west = geoid_height_m(lat, lon_deg + 1e-9)
        np.testing.assert_allclose(east, west, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(geoid_height_m(lat, 180.0), geoid_height_m(lat, -180.0))


def test_poles_are_one_value_whatever_the_longitude() -> None:
    lon = np.linspace(-180.0, 540.0, 97)
    north = geoid_height_m(90.0, lon)
    south = geoid_height_m(-90.0, lon)
    np.testing.assert_array_equal(north, north[0])
    np.testing.assert_array_equal(south, south[0])
    # EGM96 at the poles: +13.606 m north, -29.534 m south.
    assert abs(north[0] - 13.606) < 0.01
    assert abs(south[0] - -29.534) < 0.01
    # Just short of a pole, still close to the pole value.
    assert np.abs(geoid_height_m(89.999, lon) - north[0]).max() < 0.01


@pytest.mark.parametrize("bad_lat", [90.5, -91.0, 180.0, np.inf, -np.inf])
def test_latitude_outside_range_raises_naming_the_value(bad_lat: float) -> None:
    with pytest.raises(InputError, match=f"latitude {bad_lat!r}") as info:
        geoid_height_m(bad_lat, 10.0)
    assert isinstance(info.value, SkyfenceError)
    assert info.value.field == "lat_deg"


def test_one_bad_latitude_in_an_array_raises() -> None:
    with pytest.raises(InputError, match=r"latitude 123\.0 .*1 such"):
        geoid_height_m(np.array([10.0, 123.0, -5.0]), 0.0)
    with pytest.raises(InputError):
        amsl_to_ellipsoid_m(100.0, -95.0, 0.0)


def test_missing_coordinates_give_nan_without_warnings() -> None:
    n = geoid_height_m([np.nan, 10.0, 10.0, 10.0], [0.0, np.nan, np.inf, 20.0])
    assert np.isnan(n[:3]).all()
    assert np.isfinite(n[3])


def test_amsl_and_ellipsoid_heights() -> None:
    lat, lon, n_m = NGA_TEST_VALUES[0]  # geoid 31.6 m below the ellipsoid
    h_ell = amsl_to_ellipsoid_m(120.0, lat, lon)
    assert abs(float(h_ell) - (120.0 + n_m)) < NGA_TOLERANCE_M
    assert float(ellipsoid_to_amsl_m(h_ell, lat, lon)) == pytest.approx(120.0, abs=1e-9)
    h = np.array([[0.0, 100.0, 5000.0]])
    lats = np.array([[10.0], [-60.0]])
    out = amsl_to_ellipsoid_m(h, lats, 45.0)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out - h, geoid_height_m(lats, 45.0) * np.ones((1, 3)))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    lat_deg=st.floats(-90.0, 90.0),
    lon_deg=st.floats(-1e4, 1e4),
    h_m=st.floats(-500.0, 40_000.0),
)
def test_property_within_egm96_range_and_round_trips(
    lat_deg: float, lon_deg: float, h_m: float
) -> None:
    n = float(geoid_height_m(lat_deg, lon_deg))
    assert EGM96_MIN_M <= n <= EGM96_MAX_M
    back = ellipsoid_to_amsl_m(amsl_to_ellipsoid_m(h_m, lat_deg, lon_deg), lat_deg, lon_deg)
    assert float(back) == pytest.approx(h_m, abs=1e-9)


def _read_gtx(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = path.read_bytes()
    header = np.frombuffer(raw[:32], dtype=">f8")
    rows, cols = (int(v) for v in np.frombuffer(raw[32:40], dtype=">i4"))
    return header, np.frombuffer(raw[40:], dtype=">f4").reshape(rows, cols).astype(np.float64)


@pytest.mark.skipif(
    not GTX_PATH.is_file(),
    reason=f"build-time check: no raw EGM96 grid at {GTX_PATH} (set SKYFENCE_EGM96_GTX)",
)
def test_shipped_grid_matches_the_raw_gtx() -> None:
    header, grid = _read_gtx(GTX_PATH)
    lat0, lon0, dlat, dlon = header
    rows, cols = grid.shape
    # At the nodes, the only difference is the rounding to whole centimetres.
    i = np.arange(rows)[:, None]
    j = np.arange(cols)[None, :]
    at_nodes = geoid_height_m(lat0 + i * dlat, lon0 + j * dlon)
    assert np.abs(at_nodes - grid).max() <= 0.005 + 1e-9

    # Between nodes, against an independent bilinear interpolation of the raw floats.
    rng = np.random.default_rng(11)
    lat = rng.uniform(-90.0, 90.0, 100_000)
    lon = rng.uniform(-180.0, 180.0, 100_000)
    fi = (lat - lat0) / dlat
    fj = (lon - lon0) / dlon
    i0 = np.minimum(np.floor(fi).astype(int), rows - 2)
    j0 = np.floor(fj).astype(int)
    t, u = fi - i0, fj - j0
    j1 = (j0 + 1) % cols  # the grid does not repeat its first column at +180°
    j0 = j0 % cols
    ref = (1 - t) * ((1 - u) * grid[i0, j0] + u * grid[i0, j1]) + t * (
        (1 - u) * grid[i0 + 1, j0] + u * grid[i0 + 1, j1]
    )
    assert np.abs(geoid_height_m(lat, lon) - ref).max() <= 0.005 + 1e-9
