"""Coverage: lowest visible altitude per cell, against formulas, the simulator and a DEM."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from skyfence import coverage, sim
from skyfence.cli import main
from skyfence.errors import InputError
from skyfence.geo import EARTH_RADIUS_M, Origin
from skyfence.scenario import Region, Scenario, SensorSpec
from skyfence.sim import radar as sim_radar

ORIGIN = Origin(46.5, 7.5, 600.0)
KR = 4.0 / 3.0 * EARTH_RADIUS_M


def _sensor(sid: str = "radar", kind: str = "radar", pos: tuple[float, float, float] = (0, 0, 25),
            **kw: float) -> SensorSpec:
    return SensorSpec(id=sid, kind=kind, position_enu_m=pos, pd=0.9, noise_std=(5.0, 0.01, 0.01),
                      **kw)  # type: ignore[arg-type]


def _along_east(east_m: np.ndarray, terrain: coverage.Terrain | None = None
                ) -> coverage.Columns:
    return coverage.Columns.at(ORIGIN, east_m, np.zeros_like(east_m), terrain)


def _lowest(sensor: SensorSpec, east_m: np.ndarray, **kw: object) -> np.ndarray:
    return coverage.lowest_visible_agl_m(ORIGIN, sensor, _along_east(east_m), **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- one sensor


def test_flat_earth_radar_sees_down_to_the_four_thirds_horizon() -> None:
    hs = 25.0
    d = np.array([0.0, 5_000.0, 15_000.0, 20_000.0, 25_000.0, 40_000.0, 60_000.0, 90_000.0])
    got = _lowest(_sensor(pos=(0.0, 0.0, hs)), d, max_altitude_m=5_000.0)
    # The simulator's ground distance (on the mean sphere) is 0.07 % longer than ENU east here.
    ground = sim_radar.ground_distance_m(ORIGIN, np.array([0.0, 0.0, hs]),
                                         _along_east(d).ground_enu_m)
    # Beyond the antenna's own horizon √(2kR·hs) ≈ 20.6 km: h = (d − √(2kR·hs))² / (2kR).
    expected = np.maximum(ground - math.sqrt(2 * KR * hs), 0.0) ** 2 / (2 * KR)
    np.testing.assert_allclose(got, expected, atol=0.01)
    assert got[3] == 0.0 and 1.0 < got[4] < 1.3  # 20 km inside the horizon, 25 km just past
    assert 91.0 < got[6] < 92.0  # 60 km: (60.04 − 20.61)² km² / 16,990 km ≈ 91.5 m


def test_min_elevation_is_a_cone_above_the_sensor() -> None:
    hs, el = 10.0, 0.05
    d = np.array([500.0, 1_000.0, 2_000.0, 5_000.0])
    got = _lowest(_sensor(pos=(0.0, 0.0, hs), min_elevation_rad=el), d)
    # Elevation is measured along the ENU axes, whose plane the ground falls below by d²/2R.
    expected = hs + d * math.tan(el) + d**2 / (2 * EARTH_RADIUS_M)
    np.testing.assert_allclose(got, expected, atol=0.01)


def test_max_range_is_a_sphere() -> None:
    low = _sensor(pos=(0.0, 0.0, 10.0), max_range_m=5_000.0)
    got = _lowest(low, np.array([4_900.0, 5_050.0]))
    assert got[0] == 0.0 and np.isinf(got[1])
    # From a 400 m mast the ground at 4.99 km is out of range, but a target higher up
    # (nearer the mast's height) is in: from 402 − √(5000² − 4990²) ≈ 86 m.
    tall = _sensor(pos=(0.0, 0.0, 400.0), max_range_m=5_000.0)
    assert 84.0 < _lowest(tall, np.array([4_990.0]))[0] < 89.0
    assert np.isinf(_lowest(tall, np.array([4_990.0]), max_altitude_m=50.0)[0])


def test_position_sensor_with_no_range_limit_sees_everything() -> None:
    far = np.array([0.0, 50_000.0, 300_000.0])
    assert np.all(_lowest(_sensor(kind="position", pos=(0, 0, 5)), far) == 0.0)
    assert np.isinf(_lowest(_sensor(kind="position", max_range_m=1e4), far)[1])


def test_matches_the_simulators_visibility_by_brute_force() -> None:
    """Closed forms and bisection against sim.radar.detectable on every 0.5 m of each column."""
    sensor = _sensor(pos=(2_000.0, -1_000.0, 30.0), max_range_m=30_000.0,
                     min_elevation_rad=0.004)
    rng = np.random.default_rng(7)
    e, n = rng.uniform(-35_000, 35_000, 300), rng.uniform(-35_000, 35_000, 300)
    cap, step = 600.0, 0.5
    cols = coverage.Columns.at(ORIGIN, e, n)
    got = coverage.lowest_visible_agl_m(ORIGIN, sensor, cols, max_altitude_m=cap)
    a = np.arange(0.0, cap + step / 2, step)
    points = cols.ground_enu_m[:, None, :] + a[None, :, None] * cols.up_enu[:, None, :]
    seen = sim_radar.detectable(ORIGIN, sensor, points.reshape(-1, 3)).reshape(len(e), len(a))
    brute = np.where(seen.any(axis=1), a[np.argmax(seen, axis=1)], np.inf)
    assert np.array_equal(np.isinf(got), np.isinf(brute))
    finite = np.isfinite(got)
    assert finite.sum() > 50 and (~finite).sum() > 50 and (got[finite] > 1).sum() > 30
    assert np.all(np.abs(got[finite] - brute[finite]) <= step + 1e-6)


# --------------------------------------------------------------------------- several sensors


def _scenario(*sensors: SensorSpec, half_m: float = 10_000.0) -> Scenario:
    return Scenario(name="test", origin=ORIGIN, sensors=sensors,
                    region=Region(east_m=(-half_m, half_m), north_m=(-half_m, half_m),
                                  up_m=(0.0, 1000.0)))


def test_two_sensors_give_the_lower_of_the_two() -> None:
    a = _sensor("a", pos=(-6_000.0, 0.0, 5.0), max_range_m=8_000.0)
    b = _sensor("b", pos=(6_000.0, 2_000.0, 40.0), max_range_m=7_000.0,
                min_elevation_rad=-0.01)
    cov = coverage.compute(_scenario(a, b), resolution_m=500.0)
    assert cov.per_sensor_agl_m.shape == (2, 40, 40)
    np.testing.assert_array_equal(cov.lowest_agl_m, cov.per_sensor_agl_m.min(axis=0))
    alone_a = coverage.compute(_scenario(a), resolution_m=500.0).lowest_agl_m
    np.testing.assert_array_equal(cov.per_sensor_agl_m[0], alone_a)
    # Each sensor wins somewhere, and together they see more at 30 m than either alone.
    assert (cov.per_sensor_agl_m[0] < cov.per_sensor_agl_m[1]).any()
    assert (cov.per_sensor_agl_m[1] < cov.per_sensor_agl_m[0]).any()
    both = cov.fraction_seen(30.0)
    assert both > cov.fraction_seen_per_sensor(30.0).max()


def test_cooperative_sources_are_left_out_and_alone_are_an_error() -> None:
    adsb = _sensor("adsb", kind="cooperative", pos=(0, 0, 0))
    cov = coverage.compute(_scenario(_sensor(), adsb), resolution_m=1000.0)
    assert [s.id for s in cov.sensors] == ["radar"] and [s.id for s in cov.skipped] == ["adsb"]
    assert any("adsb" in w for w in coverage.warnings(cov))
    with pytest.raises(InputError, match="no sensor sees anything"):
        coverage.compute(_scenario(adsb), resolution_m=1000.0)


def test_grid_without_region_is_a_square_around_the_sensors() -> None:
    s = _sensor(pos=(1_000.0, 0.0, 20.0), max_range_m=12_000.0)
    scen = Scenario(name="t", origin=ORIGIN, sensors=(s,))
    grid = coverage.make_grid(scen, (s,))
    assert grid.east_bounds_m == (-11_000.0, 13_000.0)
    assert grid.north_bounds_m == (-12_000.0, 12_000.0)
    assert grid.shape == (200, 200) and grid.step_m == (120.0, 120.0)
    # No range limit: the horizon for a target at the altitude cap bounds the area.
    unbounded = _sensor(pos=(0.0, 0.0, 20.0))
    g2 = coverage.make_grid(Scenario(name="t", origin=ORIGIN, sensors=(unbounded,)),
                            (unbounded,), max_altitude_m=100.0)
    horizon = math.sqrt(2 * KR * 20.0) + math.sqrt(2 * KR * 100.0)
    assert g2.east_bounds_m[1] == pytest.approx(horizon)
    with pytest.raises(InputError, match="--resolution-m"):
        coverage.make_grid(scen, (s,), resolution_m=1.0)


# --------------------------------------------------------------------------- terrain

RIDGE = (2_700.0, 2_900.0, 3_100.0, 3_300.0)  # foot, top, top, foot (m east)
RIDGE_HEIGHT_M = 200.0


def _ridge(east_m: np.ndarray) -> np.ndarray:
    up = np.clip((east_m - RIDGE[0]) / (RIDGE[1] - RIDGE[0]), 0, 1)
    down = np.clip((RIDGE[3] - east_m) / (RIDGE[3] - RIDGE[2]), 0, 1)
    return RIDGE_HEIGHT_M * np.minimum(up, down)


def _write_geotiff(path: Path, heights: np.ndarray, *, lon0: float, lat0: float,
                   step_deg: float, geokeys: list[int] | None = None) -> None:
    """A float32 GeoTIFF whose top-left pixel corner is at (lon0, lat0)."""
    keys = geokeys or [1, 1, 0, 4, 1024, 0, 1, 2, 1025, 0, 1, 1, 2048, 0, 1, 4326,
                       2054, 0, 1, 9102]
    tifffile.imwrite(path, heights.astype(np.float32), extratags=[
        (33550, "d", 3, (step_deg, step_deg, 0.0), True),
        (33922, "d", 6, (0.0, 0.0, 0.0, lon0, lat0, 0.0), True),
        (34735, "H", len(keys), keys, True),
    ])


def _ridge_dem(path: Path, *, ridge: bool = True) -> Path:
    """Ground at the origin's height, with a north-south ridge 3 km east of the origin."""
    step = 0.0004
    lon = np.arange(7.38, 7.66, step) + step / 2
    lat = np.arange(46.56, 46.44, -step) - step / 2
    east_m = ORIGIN.geodetic_to_enu(ORIGIN.lat_deg, lon, ORIGIN.alt_m)[:, 0]
    row = ORIGIN.alt_m + (_ridge(east_m) if ridge else np.zeros_like(east_m))
    _write_geotiff(path, np.tile(row, (lat.size, 1)), lon0=7.38, lat0=46.56, step_deg=step)
    return path


def _ray_march_lowest(east_m: float, hs: float, *, step: float = 0.5) -> float:
    """Lowest height at east_m (north 0) seen from (0, 0, hs) over the ridge: straight rays
    in the exact effective-earth geometry, checked against the analytic terrain."""
    theta = east_m / KR
    a = np.arange(0.0, 600.0, step)[:, None]
    t = np.linspace(0.0, 1.0, 2001)[None, 1:-1]
    sx, sy = 0.0, KR + hs
    tx, ty = (KR + a) * math.sin(theta), (KR + a) * math.cos(theta)
    px, py = sx + t * (tx - sx), sy + t * (ty - sy)
    height = np.hypot(px, py) - KR
    clear = np.all(height >= _ridge(np.arctan2(px, py) * KR), axis=1)
    return float(a[np.argmax(clear), 0]) if clear.any() else math.inf


def test_ridge_in_a_dem_hides_the_valley_behind_it(tmp_path: Path) -> None:
    dem = coverage.read_dem(_ridge_dem(tmp_path / "ridge.tif"))
    hs = 20.0
    scen = Scenario(name="ridge", origin=ORIGIN, sensors=(_sensor(pos=(0.0, 0.0, hs)),),
                    region=Region(east_m=(-2_000.0, 8_000.0), north_m=(-1_000.0, 1_000.0),
                                  up_m=(0.0, 1000.0)))
    cov = coverage.compute(scen, resolution_m=50.0, dem=dem)
    assert cov.dem_fraction == 1.0 and cov.sensor_agl_m[0] == pytest.approx(hs, abs=0.01)
    mid = cov.grid.shape[0] // 2
    east, lowest = cov.grid.east_m, cov.lowest_agl_m[mid]
    ground = cov.ground_m[mid]
    np.testing.assert_allclose(ground, _ridge(east), atol=3.0)
    # In front of the ridge and on its face: seen down to the ground.
    assert np.all(lowest[east < 2_850.0] <= 0.5)
    # Behind it: hidden up to the ray over its crest, ≈ 20 + 180·d/2.9 km (392 m at 6 km).
    for d in (3_500.0, 4_500.0, 6_000.0, 7_500.0):
        i = int(np.argmin(np.abs(east - d)))
        expected = _ray_march_lowest(float(east[i]), hs)
        assert lowest[i] == pytest.approx(expected, abs=6.0), d
    i6 = int(np.argmin(np.abs(east - 6_000.0)))
    assert 380.0 < lowest[i6] < 400.0
    # Only the half of the area up to the ridge is seen at 100 m.
    assert 0.48 < cov.fraction_seen(100.0) < 0.55

    # A flat DEM gives back the smooth 4/3-earth horizon of the closed form.
    flat = coverage.read_dem(_ridge_dem(tmp_path / "flat.tif", ridge=False))
    far = Scenario(name="flat", origin=ORIGIN, sensors=(_sensor(pos=(-9_000.0, 0.0, 5.0)),),
                   region=Region(east_m=(-9_000.0, 11_000.0), north_m=(-500.0, 500.0),
                                 up_m=(0.0, 100.0)))
    with_dem = coverage.compute(far, resolution_m=100.0, dem=flat).lowest_agl_m
    without = coverage.compute(far, resolution_m=100.0).lowest_agl_m
    assert without.max() > 2.0  # the ENU plane is 6 m above the ground 9 km out: hs ≈ 11 m
    np.testing.assert_allclose(with_dem, without, atol=0.05)


def test_dem_geoid_height_and_partial_cover(tmp_path: Path) -> None:
    dem = coverage.read_dem(_ridge_dem(tmp_path / "ridge.tif", ridge=False))
    # Heights 47 m below the ellipsoid's: --geoid-height-m 47 lifts them back.
    low = coverage.Dem(heights_m=dem.heights_m - 47.0, lat0_deg=dem.lat0_deg,
                       lon0_deg=dem.lon0_deg, dlat_deg=dem.dlat_deg, dlon_deg=dem.dlon_deg)
    scen = _scenario(_sensor(pos=(0.0, 0.0, 20.0)), half_m=5_000.0)
    cov = coverage.compute(scen, resolution_m=500.0, dem=low, geoid_height_m=47.0)
    assert np.abs(cov.ground_m).max() < 0.01
    wide = _scenario(_sensor(pos=(0.0, 0.0, 20.0)), half_m=20_000.0)
    cov = coverage.compute(wide, resolution_m=1000.0, dem=dem)
    assert cov.dem_fraction == pytest.approx(21.4 * 13.3 / 40**2, abs=0.02)
    assert any("DEM covers" in w for w in coverage.warnings(cov))


def test_bad_dems_are_refused_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "text.tif").write_text("not a tiff")
    with pytest.raises(InputError, match="not a readable GeoTIFF"):
        coverage.read_dem(tmp_path / "text.tif")
    with pytest.raises(InputError, match="not found"):
        coverage.read_dem(tmp_path / "missing.tif")
    projected = [1, 1, 0, 2, 1024, 0, 1, 1, 3072, 0, 1, 2056]
    _write_geotiff(tmp_path / "lv95.tif", np.zeros((4, 4)), lon0=2.6e6, lat0=1.2e6,
                   step_deg=2.0, geokeys=projected)
    with pytest.raises(InputError, match=r"EPSG:2056.*gdalwarp"):
        coverage.read_dem(tmp_path / "lv95.tif")
    tifffile.imwrite(tmp_path / "plain.tif", np.zeros((4, 4), dtype=np.float32))
    with pytest.raises(InputError, match="not georeferenced"):
        coverage.read_dem(tmp_path / "plain.tif")
    _write_geotiff(tmp_path / "elsewhere.tif", np.zeros((4, 4)), lon0=-70.0, lat0=10.0,
                   step_deg=0.01)
    with pytest.raises(InputError, match="does not reach"):
        coverage.compute(_scenario(_sensor()), resolution_m=1000.0,
                         dem=coverage.read_dem(tmp_path / "elsewhere.tif"))


# --------------------------------------------------------------------------- outputs


def _ring_area_m2(ring: np.ndarray) -> float:
    """Signed area (anticlockwise > 0) of a lon/lat ring, locally projected."""
    x = np.radians(ring[:, 0] - ORIGIN.lon_deg) * EARTH_RADIUS_M * math.cos(
        math.radians(ORIGIN.lat_deg))
    y = np.radians(ring[:, 1] - ORIGIN.lat_deg) * EARTH_RADIUS_M
    return 0.5 * float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))


def _inside(ring: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Even-odd test of points p (n, 2) against one ring."""
    x0, y0, x1, y1 = ring[:-1, 0], ring[:-1, 1], ring[1:, 0], ring[1:, 1]
    px, py = p[:, 0, None], p[:, 1, None]
    crosses = ((y0 > py) != (y1 > py)) & (px < x0 + (py - y0) * (x1 - x0) / (y1 - y0 + 1e-300))
    out: np.ndarray = crosses.sum(axis=1) % 2 == 1
    return out


def test_geojson_bands_are_valid_and_tile_the_area(tmp_path: Path) -> None:
    dem = coverage.read_dem(_ridge_dem(tmp_path / "ridge.tif"))
    scen = Scenario(name="ridge", origin=ORIGIN, sensors=(
        _sensor(pos=(0.0, 0.0, 20.0), max_range_m=9_000.0),
        _sensor("eo", kind="bearing", pos=(7_000.0, 3_000.0, 4.0), max_range_m=2_500.0)),
        region=Region(east_m=(-2_000.0, 8_000.0), north_m=(-3_000.0, 4_000.0),
                      up_m=(0.0, 1000.0)))
    cov = coverage.compute(scen, resolution_m=100.0, dem=dem, max_altitude_m=400.0)
    doc = to_json = json.loads(json.dumps(coverage.to_geojson(cov)))
    assert to_json["type"] == "FeatureCollection"
    labels = [f["properties"]["band"] for f in doc["features"]]
    assert labels[0] == "0–30 m" and labels[-1] == "not seen up to 400 m"
    total = 0.0
    cells = np.column_stack([cov.lon_deg.ravel(), cov.lat_deg.ravel()])
    sample = np.random.default_rng(3).choice(len(cells), 400, replace=False)
    owner = np.full(sample.size, -1)
    for k, f in enumerate(doc["features"]):
        props, geom = f["properties"], f["geometry"]
        assert geom["type"] == "MultiPolygon" and geom["coordinates"]
        assert set(props) >= {"min_visible_agl_m", "max_visible_agl_m", "covered", "area_km2"}
        for polygon in geom["coordinates"]:
            inside = np.zeros(sample.size, dtype=bool)
            for j, ring_list in enumerate(polygon):
                ring = np.array(ring_list)
                assert ring.shape[0] >= 4 and ring.shape[1] == 2
                assert np.array_equal(ring[0], ring[-1])
                assert np.all(np.abs(ring[:, 0]) <= 180) and np.all(np.abs(ring[:, 1]) <= 90)
                area = _ring_area_m2(ring)
                assert (area > 0) == (j == 0)  # RFC 7946 winding
                total += area
                inside ^= _inside(ring, cells[sample])
            assert np.all(owner[inside] == -1)  # no cell centre in two bands
            owner[inside] = k
    region_m2 = 10_000.0 * 7_000.0
    assert total == pytest.approx(region_m2, rel=0.01)
    # Every sampled cell centre lies in the band of its own value.
    assert np.all(owner >= 0)
    value = cov.lowest_agl_m.ravel()[sample]
    lo = np.array([doc["features"][k]["properties"]["min_visible_agl_m"] for k in owner])
    hi = np.array([doc["features"][k]["properties"]["max_visible_agl_m"] or np.inf
                   for k in owner])
    assert np.all(((value > lo) | (value == 0)) & (value <= hi))


def test_png_shows_the_bands_and_the_sensors(tmp_path: Path) -> None:
    cov = coverage.compute(_scenario(_sensor(pos=(0.0, 0.0, 10.0), max_range_m=8_000.0),
                                     half_m=12_000.0), resolution_m=200.0)
    coverage.write_png(cov, tmp_path / "c.png")
    with Image.open(tmp_path / "c.png") as png:
        img = np.asarray(png.convert("RGB"))
    assert img.shape[0] > 700 and img.shape[1] > 1000
    colours = {tuple(int(c) for c in px) for px in img.reshape(-1, 3)[::7]}
    for band in (coverage.bands(1000.0)[0], coverage.bands(1000.0)[-1]):
        assert band.rgb in colours
    assert (33, 102, 172) in colours  # the sensor marker


def test_cli_on_a_simulated_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sim.write(tmp_path / "scen", sim.build("long_range", duration_s=5.0))
    out = tmp_path / "cov"
    assert main(["coverage", str(tmp_path / "scen"), "--out", str(out),
                 "--resolution-m", "2400", "--max-altitude-m", "500"]) == 0
    text = capsys.readouterr()
    assert "no DEM given" in text.err and text.err.count("warning") == 1
    assert "seen at 30 m" in text.out and "seen at 100 m" in text.out
    radar_row = next(line for line in text.out.splitlines() if line.startswith("radar"))
    shares = [float(x) for x in re.findall(r"([\d.]+) %", radar_row)]
    assert 0 < shares[0] < shares[1] < shares[2] < 100
    doc = json.loads((out / "coverage.geojson").read_text())
    assert doc["features"] and doc["skyfence_coverage"]["sensors"] == ["radar"]
    with Image.open(out / "coverage.png") as png:
        assert png.format == "PNG"
    with np.load(out / "coverage.npz") as npz:
        # No region: a square around the radar out to its horizon for a 500 m target.
        assert npz["lowest_visible_agl_m"].shape == (93, 93)
        assert list(npz["sensor_ids"]) == ["radar"]


def test_cli_user_errors_exit_2_with_the_place(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["coverage", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    assert "scenario.json: not found" in capsys.readouterr().err
    sim.write(tmp_path / "scen", sim.build("long_range", duration_s=5.0))
    (tmp_path / "dem.tif").write_bytes(b"II*\x00garbage")
    proc = subprocess.run(
        [sys.executable, "-m", "skyfence.cli", "coverage", str(tmp_path / "scen"), "--out",
         str(tmp_path / "o"), "--dem", str(tmp_path / "dem.tif")],
        capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "dem.tif: not a readable GeoTIFF" in proc.stderr
    assert main(["coverage", str(tmp_path / "scen"), "--out", str(tmp_path / "o"),
                 "--max-altitude-m", "-5"]) == 2
    assert "'--max-altitude-m'" in capsys.readouterr().err
