"""Coverage: the lowest altitude above the ground at which at least one sensor sees a target.

For each cell of a grid over the area and each sensor, the column of air above the cell
(a straight line: the geodetic normal through the cell's ground point) is cut by the
sensor's limits, each solved on its own for all cells at once:

- range: the sphere of ``max_range_m`` around the sensor gives an interval of altitudes,
  the roots of a quadratic;
- elevation: at or above ``min_elevation_rad``, measured along the scenario's ENU axes as
  the scenario format defines it; elevation rises monotonically up the column, so this is a
  lower bound, found by vectorised bisection (32 halvings of [0, max_altitude_m]);
- the horizon over a smooth earth of radius k·R (4/3 model), in closed form: beyond the
  sensor's own horizon a target at ground distance d must be at least
  (d − √(2kR·hₛ))² / (2kR) high, which is :func:`skyfence.geo.radar_horizon_visible` solved
  for the target height;
- terrain, when a DEM is given, instead of the smooth horizon: the straight ray (in the
  effective-earth frame) must clear each terrain sample T at fraction f of the way, whose
  earth bulge is f(1−f)d²/(2kR): h ≥ hₛ + (T − hₛ + f(1−f)d²/(2kR)) / f for every sample,
  a lower bound in closed form per sample, maximised over the samples. On flat terrain
  this maximum is the smooth horizon above.

A sensor's lowest visible altitude at a cell is the largest lower bound, if the range
interval holds it and it is at most ``max_altitude_m``; the coverage is the minimum over
sensors. Heights are metres above the ground: without a DEM the ground is flat at the
origin's ellipsoidal height, as in the simulator, whose own visibility test
(:func:`skyfence.sim.radar.detectable`) the tests check this against by brute force.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from skyfence.errors import InputError
from skyfence.geo import (
    EARTH_RADIUS_M,
    K_FOUR_THIRDS,
    Origin,
    geodetic_to_ecef,
    height_above_origin_m,
)
from skyfence.scenario import Scenario, SensorSpec
from skyfence.types import F64

#: Kinds that see nothing: cooperative sources (ADS-B, Remote ID) report their own
#: position, and track feeds report others' tracks.
NON_SEEING_KINDS = frozenset({"cooperative", "track"})
#: Kinds whose line of sight is not modelled (a locator network or a fused feed that
#: reports positions): only their range and any stated elevation limit bound them, as in
#: the simulator and the tracker. Every other kind also needs a line of sight.
RANGE_ONLY_KINDS = frozenset({"position"})
#: Effective-earth factor for every line of sight. 4/3 is the standard radio refraction
#: (radar, RF direction finders); optical refraction is a bit smaller (k ≈ 7/6), so for
#: EO/IR cameras the horizon drawn here is about 6 % too far.
EFFECTIVE_EARTH_K = K_FOUR_THIRDS
EFFECTIVE_EARTH_RADIUS_M = EFFECTIVE_EARTH_K * EARTH_RADIUS_M

DEFAULT_MAX_ALTITUDE_M = 1000.0
#: Upper edges of the altitude bands of the outputs (m above ground); the last band ends
#: at the altitude cap.
BAND_EDGES_M = (30.0, 60.0, 100.0, 200.0, 500.0)
#: Cells along the larger side of the area when no resolution is given.
DEFAULT_CELLS_PER_SIDE = 200
MAX_CELLS = 4_000_000
#: Half-side of the area around sensors that nothing bounds (no region, no range).
UNBOUNDED_HALF_SIDE_M = 10_000.0
_BISECTION_STEPS = 32
_MAX_PROFILE_SAMPLES = 2048
_MAX_TERRAIN_SIDE = 2048
#: Elements per block of the (cells × profile samples) terrain arrays: bounds memory.
_PROFILE_BLOCK = 1_000_000


# --------------------------------------------------------------------------- grid


@dataclass(frozen=True, slots=True)
class Grid:
    """A regular grid of cells over the area, ENU metres.

    ``east_m`` (nx,) and ``north_m`` (ny,) are cell centres; the cells tile
    ``east_bounds_m`` × ``north_bounds_m`` exactly. Arrays over the grid are (ny, nx),
    row 0 southmost.
    """

    east_m: F64
    north_m: F64
    east_bounds_m: tuple[float, float]
    north_bounds_m: tuple[float, float]

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.north_m.size), int(self.east_m.size))

    @property
    def step_m(self) -> tuple[float, float]:
        """Cell size (east, north), metres."""
        return ((self.east_bounds_m[1] - self.east_bounds_m[0]) / self.east_m.size,
                (self.north_bounds_m[1] - self.north_bounds_m[0]) / self.north_m.size)

    @property
    def area_m2(self) -> float:
        return ((self.east_bounds_m[1] - self.east_bounds_m[0])
                * (self.north_bounds_m[1] - self.north_bounds_m[0]))


def _round_2_significant(x: float) -> float:
    scale = 10.0 ** (math.floor(math.log10(x)) - 1)
    return round(x / scale) * scale


def seeing_sensors(scenario: Scenario) -> tuple[tuple[SensorSpec, ...], tuple[SensorSpec, ...]]:
    """The sensors that see targets, and those skipped (kinds in ``NON_SEEING_KINDS``)."""
    used = tuple(s for s in scenario.sensors if s.kind not in NON_SEEING_KINDS)
    skipped = tuple(s for s in scenario.sensors if s.kind in NON_SEEING_KINDS)
    return used, skipped


def _reach_m(origin: Origin, sensor: SensorSpec, max_altitude_m: float) -> float:
    """How far from the sensor (ground distance, m) it can see anything below the cap."""
    reach = sensor.max_range_m
    if sensor.kind not in RANGE_ONLY_KINDS:
        hs = max(float(height_above_origin_m(origin, sensor.position_enu_m)), 0.0)
        horizon = (math.sqrt(2.0 * EFFECTIVE_EARTH_RADIUS_M * hs)
                   + math.sqrt(2.0 * EFFECTIVE_EARTH_RADIUS_M * max_altitude_m))
        reach = min(reach, horizon)
    return reach


def make_grid(scenario: Scenario, sensors: Sequence[SensorSpec], *,
              resolution_m: float | None = None,
              max_altitude_m: float = DEFAULT_MAX_ALTITUDE_M) -> Grid:
    """The grid over the scenario's region, else over a square around the sensors
    sized by how far each can see below ``max_altitude_m``.

    ``resolution_m`` is the largest cell side; by default the larger side of the area
    over ``DEFAULT_CELLS_PER_SIDE``, rounded to two significant digits.
    """
    if scenario.region is not None:
        east, north = scenario.region.east_m, scenario.region.north_m
    else:
        pos = np.array([s.position_enu_m for s in sensors], dtype=np.float64).reshape(-1, 3)
        reach = np.array([_reach_m(scenario.origin, s, max_altitude_m) for s in sensors])
        finite = np.isfinite(reach)
        reach = np.where(finite, reach, reach[finite].max() if finite.any()
                         else UNBOUNDED_HALF_SIDE_M)
        lo = (pos[:, :2] - reach[:, None]).min(axis=0)
        hi = (pos[:, :2] + reach[:, None]).max(axis=0)
        centre, half = 0.5 * (lo + hi), 0.5 * float((hi - lo).max())
        east = (float(centre[0] - half), float(centre[0] + half))
        north = (float(centre[1] - half), float(centre[1] + half))
    width, height = east[1] - east[0], north[1] - north[0]
    if resolution_m is None:
        resolution_m = _round_2_significant(max(width, height) / DEFAULT_CELLS_PER_SIDE)
    if not (math.isfinite(resolution_m) and resolution_m > 0):
        raise InputError(f"{resolution_m!r} is not a positive size", field="--resolution-m",
                         fix="give the cell size in metres, e.g. 50")
    nx, ny = max(1, math.ceil(width / resolution_m)), max(1, math.ceil(height / resolution_m))
    if nx * ny > MAX_CELLS:
        raise InputError(
            f"{resolution_m:g} m cells make a {nx} × {ny} grid over "
            f"{width / 1e3:g} × {height / 1e3:g} km", field="--resolution-m",
            fix=f"give a coarser resolution (at most {MAX_CELLS:,} cells)")
    return Grid(
        east_m=east[0] + (np.arange(nx, dtype=np.float64) + 0.5) * (width / nx),
        north_m=north[0] + (np.arange(ny, dtype=np.float64) + 0.5) * (height / ny),
        east_bounds_m=(float(east[0]), float(east[1])),
        north_bounds_m=(float(north[0]), float(north[1])),
    )


# --------------------------------------------------------------------------- terrain


@dataclass(frozen=True, slots=True)
class Dem:
    """A geographic elevation raster (WGS84 lon/lat in degrees).

    ``heights_m`` (rows, cols), NaN where there is no data; the centre of pixel (r, c)
    is at lat0_deg + r·dlat_deg, lon0_deg + c·dlon_deg (dlat_deg is usually negative:
    rows run south).
    """

    heights_m: F64
    lat0_deg: float
    lon0_deg: float
    dlat_deg: float
    dlon_deg: float
    name: str = "DEM"
    #: The vertical reference the file declares (e.g. "EPSG:5773", EGM96 geoid), if any.
    vertical_crs: str | None = None

    def sample(self, lat_deg: F64, lon_deg: F64) -> F64:
        """Bilinear heights at the points, NaN outside the raster or next to no-data."""
        rows, cols = self.heights_m.shape
        r = (np.asarray(lat_deg) - self.lat0_deg) / self.dlat_deg
        c = (np.asarray(lon_deg) - self.lon0_deg) / self.dlon_deg
        # The raster's area reaches half a pixel beyond the outer pixel centres.
        inside = (r >= -0.5) & (r <= rows - 0.5) & (c >= -0.5) & (c <= cols - 0.5)
        out = _bilinear(self.heights_m, np.clip(r, 0, rows - 1), np.clip(c, 0, cols - 1))
        return np.where(inside, out, np.nan)

    @property
    def pixel_m(self) -> float:
        """The smaller pixel side in metres, at the raster's middle."""
        lat = math.radians(self.lat0_deg + 0.5 * self.dlat_deg * (self.heights_m.shape[0] - 1))
        deg_m = math.pi * EARTH_RADIUS_M / 180.0
        return min(abs(self.dlat_deg) * deg_m, abs(self.dlon_deg) * deg_m * math.cos(lat))


def _bilinear(z: F64, r: F64, c: F64) -> F64:
    """Bilinear interpolation of z (rows, cols) at fractional indices inside the raster."""
    rows, cols = z.shape
    r0 = np.clip(np.floor(r).astype(np.intp), 0, max(rows - 2, 0))
    c0 = np.clip(np.floor(c).astype(np.intp), 0, max(cols - 2, 0))
    r1, c1 = np.minimum(r0 + 1, rows - 1), np.minimum(c0 + 1, cols - 1)
    fr, fc = r - r0, c - c0
    top = z[r0, c0] * (1.0 - fc) + z[r0, c1] * fc
    bottom = z[r1, c0] * (1.0 - fc) + z[r1, c1] * fc
    out: F64 = top * (1.0 - fr) + bottom * fr
    return out


@dataclass(frozen=True, slots=True)
class Terrain:
    """Ground heights above the origin's height (origin.alt_m), on a regular ENU raster.

    ``heights_m`` (rows, cols): pixel (r, c) at east0_m + c·step_m, north0_m + r·step_m;
    ``valid`` marks pixels the DEM covers (elsewhere the ground is at the origin's height).
    """

    heights_m: F64
    valid: NDArray[np.bool_]
    east0_m: float
    north0_m: float
    step_m: float
    name: str

    def height_at(self, east_m: F64, north_m: F64) -> F64:
        """Bilinear ground height (m above origin.alt_m) at ENU points (any shape)."""
        from scipy.ndimage import map_coordinates

        # scipy's bilinear interpolation, in one pass: this runs on every profile sample.
        out: F64 = map_coordinates(
            self.heights_m, [(np.asarray(north_m) - self.north0_m) / self.step_m,
                             (np.asarray(east_m) - self.east0_m) / self.step_m],
            order=1, mode="nearest", prefilter=False)
        return out

    def valid_at(self, east_m: F64, north_m: F64) -> NDArray[np.bool_]:
        rows, cols = self.heights_m.shape
        r = np.clip((north_m - self.north0_m) / self.step_m, 0, rows - 1)
        c = np.clip((east_m - self.east0_m) / self.step_m, 0, cols - 1)
        out: NDArray[np.bool_] = _bilinear(self.valid.astype(np.float64), r, c) > 0.999
        return out


def terrain_from_dem(dem: Dem, origin: Origin, east_bounds_m: tuple[float, float],
                     north_bounds_m: tuple[float, float], *, step_m: float,
                     geoid_height_m: float = 0.0) -> Terrain:
    """Resample the DEM onto an ENU raster covering the bounds.

    ``geoid_height_m`` is added to the DEM's heights to make them ellipsoidal like
    ``origin.alt_m`` (the geoid undulation, for a DEM above mean sea level).
    """
    width = east_bounds_m[1] - east_bounds_m[0]
    height = north_bounds_m[1] - north_bounds_m[0]
    step = max(step_m, max(width, height) / (_MAX_TERRAIN_SIDE - 1))
    cols, rows = math.ceil(width / step) + 1, math.ceil(height / step) + 1
    e = east_bounds_m[0] + step * np.arange(cols)
    n = north_bounds_m[0] + step * np.arange(rows)
    h = np.empty((rows, cols))
    lat_range, lon_range = [math.inf, -math.inf], [math.inf, -math.inf]
    band = max(1, 500_000 // cols)  # rows at a time: the geodesy makes a dozen temporaries
    for r in range(0, rows, band):
        ee, nn = np.meshgrid(e, n[r:r + band])
        lat, lon, _ = origin.enu_to_geodetic(np.stack([ee, nn, np.zeros_like(ee)], axis=-1))
        h[r:r + band] = dem.sample(lat, lon) + geoid_height_m - origin.alt_m
        lat_range = [min(lat_range[0], lat.min()), max(lat_range[1], lat.max())]
        lon_range = [min(lon_range[0], lon.min()), max(lon_range[1], lon.max())]
    valid = np.isfinite(h)
    if not valid.any():
        lat_lo, lat_hi = sorted((dem.lat0_deg, dem.lat0_deg + dem.dlat_deg
                                 * (dem.heights_m.shape[0] - 1)))
        lon_lo, lon_hi = sorted((dem.lon0_deg, dem.lon0_deg + dem.dlon_deg
                                 * (dem.heights_m.shape[1] - 1)))
        raise InputError(
            f"the DEM (lat {lat_lo:.4f}…{lat_hi:.4f}°, lon {lon_lo:.4f}…{lon_hi:.4f}°) does "
            f"not reach the area around the sensors (lat {lat_range[0]:.4f}…{lat_range[1]:.4f}°"
            f", lon {lon_range[0]:.4f}…{lon_range[1]:.4f}°)", file=dem.name,
            fix="give a DEM of the scenario's area")
    return Terrain(heights_m=np.where(valid, h, 0.0), valid=valid, east0_m=float(e[0]),
                   north0_m=float(n[0]), step_m=step, name=dem.name)


# GeoTIFF keys and tags (GeoTIFF 1.1, OGC 19-008r4).
_TAG_PIXEL_SCALE = 33550
_TAG_TIEPOINT = 33922
_TAG_TRANSFORMATION = 34264
_TAG_GEO_KEYS = 34735
_TAG_GDAL_NODATA = 42113
_KEY_MODEL_TYPE = 1024
_KEY_RASTER_TYPE = 1025
_KEY_GEOGRAPHIC_TYPE = 2048
_KEY_ANGULAR_UNITS = 2054
_KEY_PROJECTED_TYPE = 3072
_KEY_VERTICAL_TYPE = 4096
_MODEL_PROJECTED, _MODEL_GEOGRAPHIC = 1, 2
_RASTER_PIXEL_IS_POINT = 2
_ANGULAR_DEGREE = 9102
_USER_DEFINED = 32767
#: Geographic CRSs within a couple of metres of WGS84, which is nothing for terrain:
#: WGS84 (2-D, 3-D), ETRS89 (2-D, 3-D), NAD83.
_WGS84_LIKE = frozenset({4326, 4979, 4258, 4937, 4269})
_REPROJECT = "reproject it to WGS84 lon/lat, e.g. gdalwarp -t_srs EPSG:4326 in.tif out.tif"


def read_dem(path: str | Path) -> Dem:
    """Read a GeoTIFF elevation model on a geographic (WGS84 lon/lat) grid.

    Projected rasters are refused with the command that reprojects them: the common
    free DEMs (SRTM, Copernicus GLO-30/90, ASTER, NASADEM) come in lon/lat, and a
    projection library is a large dependency for the rest.
    """
    import tifffile

    p = Path(path)
    name = str(p)
    if not p.is_file():
        raise InputError("not found", file=name, fix="give the path of a GeoTIFF DEM (--dem)")
    try:
        with tifffile.TiffFile(p) as tif:
            page = tif.pages.first
            tags = {t.code: t.value for t in page.tags}
            # tifffile raises many kinds of errors on damaged or exotic files.
            data = np.asarray(page.asarray())
    except Exception as exc:
        raise InputError(f"not a readable GeoTIFF ({exc})", file=name,
                         fix="give an uncompressed or Deflate-compressed GeoTIFF, e.g. "
                         "gdal_translate -co COMPRESS=DEFLATE in.tif out.tif") from None
    if data.ndim == 3 and 1 in (data.shape[0], data.shape[-1]):
        data = np.squeeze(data)
    if data.ndim != 2 or min(data.shape) < 2:
        raise InputError(f"the raster has shape {data.shape}, not one band of 2 × 2 or more",
                         file=name, fix="give a single-band elevation raster")
    if not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)):
        raise InputError(f"pixels of type {data.dtype} are not heights", file=name,
                         fix="give a raster of heights in metres")
    keys = _geo_keys(tags.get(_TAG_GEO_KEYS))
    if not keys:
        raise InputError("no GeoTIFF keys (GeoKeyDirectoryTag): the raster is not "
                         "georeferenced", file=name, fix=_REPROJECT)
    model = keys.get(_KEY_MODEL_TYPE)
    if model == _MODEL_PROJECTED or _KEY_PROJECTED_TYPE in keys:
        code = keys.get(_KEY_PROJECTED_TYPE)
        crs = f"EPSG:{code}" if code and code != _USER_DEFINED else "a projected CRS"
        raise InputError(f"the DEM is in {crs}; only geographic lon/lat DEMs are read",
                         file=name, fix=_REPROJECT)
    if model not in (_MODEL_GEOGRAPHIC, None):
        raise InputError(f"GTModelTypeGeoKey {model} is not geographic (2)", file=name,
                         fix=_REPROJECT)
    geographic = keys.get(_KEY_GEOGRAPHIC_TYPE)
    if geographic not in (None, _USER_DEFINED) and geographic not in _WGS84_LIKE:
        raise InputError(f"the DEM's datum is EPSG:{geographic}, not WGS84", file=name,
                         fix=_REPROJECT)
    if keys.get(_KEY_ANGULAR_UNITS, _ANGULAR_DEGREE) != _ANGULAR_DEGREE:
        raise InputError("angular units are not degrees", file=name, fix=_REPROJECT)
    lon0, lat0, dlon, dlat = _pixel_centres(tags, name)
    if keys.get(_KEY_RASTER_TYPE) != _RASTER_PIXEL_IS_POINT:
        # PixelIsArea (the default): the tie point is a pixel's corner, not its centre.
        lon0, lat0 = lon0 + 0.5 * dlon, lat0 + 0.5 * dlat
    heights = data.astype(np.float64)
    nodata = tags.get(_TAG_GDAL_NODATA)
    if nodata is not None:
        # An unreadable no-data value marks nothing.
        with contextlib.suppress(ValueError):
            heights[heights == float(str(nodata).strip("\x00 "))] = np.nan
    # Voids often carry a huge negative sentinel without a declared no-data value.
    heights[(heights < -1000.0) | (heights > 9000.0)] = np.nan
    vertical = keys.get(_KEY_VERTICAL_TYPE)
    return Dem(heights_m=heights, lat0_deg=lat0, lon0_deg=lon0, dlat_deg=dlat, dlon_deg=dlon,
               name=name, vertical_crs=f"EPSG:{vertical}" if vertical else None)


def _geo_keys(directory: Any) -> dict[int, int]:
    """The short (inline) GeoKeys of a GeoKeyDirectoryTag value."""
    if directory is None:
        return {}
    d = [int(v) for v in directory]
    if len(d) < 4:
        return {}
    keys = {}
    for i in range(min(d[3], (len(d) - 4) // 4)):
        key, location, _count, value = d[4 + 4 * i: 8 + 4 * i]
        if location == 0:
            keys[key] = value
    return keys


def _pixel_centres(tags: dict[int, Any], name: str) -> tuple[float, float, float, float]:
    """(lon, lat) of raster point (0, 0) and the step per column and per row, degrees."""
    if _TAG_TIEPOINT in tags and _TAG_PIXEL_SCALE in tags:
        tie = [float(v) for v in tags[_TAG_TIEPOINT]]
        scale = [float(v) for v in tags[_TAG_PIXEL_SCALE]]
        if len(tie) < 6 or len(scale) < 2 or scale[0] == 0 or scale[1] == 0:
            raise InputError("ModelTiepointTag/ModelPixelScaleTag are malformed", file=name,
                             fix=_REPROJECT)
        i, j, _, x, y, _ = tie[:6]
        return x - i * scale[0], y + j * scale[1], scale[0], -scale[1]
    if _TAG_TRANSFORMATION in tags:
        m = [float(v) for v in tags[_TAG_TRANSFORMATION]]
        if len(m) == 16 and m[1] == 0 and m[4] == 0 and m[0] != 0 and m[5] != 0:
            return m[3], m[7], m[0], m[5]
        raise InputError("the raster is rotated (ModelTransformationTag)", file=name,
                         fix=_REPROJECT)
    raise InputError("no ModelTiepointTag and ModelPixelScaleTag: the raster is not "
                     "georeferenced", file=name, fix=_REPROJECT)


# --------------------------------------------------------------------------- visibility


@dataclass(frozen=True, slots=True)
class Columns:
    """The vertical column of air above each of n cells.

    A point ``a`` metres above the ground of cell i is at
    ``ground_enu_m[i] + a · up_enu[i]`` (ENU metres): the geodetic normal is a straight
    line along which the ellipsoidal height grows one for one.
    """

    east_m: F64  #: (n,) cell centres, ENU metres
    north_m: F64
    ground_m: F64  #: (n,) ground height above origin.alt_m
    ground_enu_m: F64  #: (n, 3)
    up_enu: F64  #: (n, 3) unit vectors
    ground_ecef_m: F64  #: (n, 3) the ground point at the origin's height, for distances

    @staticmethod
    def at(origin: Origin, east_m: F64, north_m: F64, terrain: Terrain | None = None) -> Columns:
        """Columns through the ENU points (east_m, north_m, 0), arrays of one shape."""
        e, n = np.ravel(east_m).astype(np.float64), np.ravel(north_m).astype(np.float64)
        lat, lon, _ = origin.enu_to_geodetic(np.stack([e, n, np.zeros_like(e)], axis=-1))
        ecef = geodetic_to_ecef(lat, lon, origin.alt_m)
        la, lo = np.radians(lat), np.radians(lon)
        normal = np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], -1)
        up = normal @ origin.rotation.T
        ground = np.zeros_like(e) if terrain is None else terrain.height_at(e, n)
        enu = origin.ecef_to_enu(ecef) + ground[:, None] * up
        return Columns(east_m=e, north_m=n, ground_m=ground, ground_enu_m=enu, up_enu=up,
                       ground_ecef_m=ecef)


def lowest_visible_agl_m(origin: Origin, sensor: SensorSpec, columns: Columns, *,
                         terrain: Terrain | None = None,
                         max_altitude_m: float = DEFAULT_MAX_ALTITUDE_M) -> F64:
    """The lowest height above the ground (m) at which the sensor sees a target in each
    column, (n,); +inf where it sees nothing up to ``max_altitude_m``."""
    s = np.asarray(sensor.position_enu_m, dtype=np.float64)
    w0 = columns.ground_enu_m - s
    v = columns.up_enu
    lower = np.zeros(w0.shape[0])
    upper = np.full(w0.shape[0], float(max_altitude_m))

    if math.isfinite(sensor.max_range_m):
        # |w0 + a·v|² ≤ R²: a ∈ −b ± √(R² − |w0 × v|²).
        b = np.einsum("ij,ij->i", w0, v)
        disc = sensor.max_range_m**2 - np.sum(np.cross(w0, v) ** 2, axis=1)
        root = np.sqrt(np.maximum(disc, 0.0))
        lower = np.maximum(lower, np.where(disc >= 0, -b - root, np.inf))
        upper = np.minimum(upper, np.where(disc >= 0, -b + root, -np.inf))

    if sensor.min_elevation_rad > -math.pi / 2:
        lower = np.maximum(lower, _lowest_at_elevation(w0, v, sensor.min_elevation_rad,
                                                       max_altitude_m))

    if sensor.kind not in RANGE_ONLY_KINDS:
        hs = float(height_above_origin_m(origin, s))
        s_ecef = origin.enu_to_ecef(s)
        # Great-circle distance on the mean sphere, as the simulator measures it.
        cross = np.linalg.norm(np.cross(columns.ground_ecef_m, s_ecef), axis=1)
        d = EARTH_RADIUS_M * np.arctan2(cross, columns.ground_ecef_m @ s_ecef)
        if terrain is None:
            beyond = np.maximum(d - math.sqrt(2.0 * EFFECTIVE_EARTH_RADIUS_M * max(hs, 0.0)), 0)
            lower = np.maximum(lower, beyond**2 / (2.0 * EFFECTIVE_EARTH_RADIUS_M))
        else:
            todo = lower <= upper  # out of range or elevation already: no profile needed
            lower = np.maximum(lower, _lowest_over_terrain(terrain, s, hs, columns, d, todo))

    return np.where(lower <= upper, lower, np.inf)


def _lowest_at_elevation(w0: F64, v: F64, min_elevation_rad: float, top_m: float) -> F64:
    """Lowest a in [0, top_m] where w0 + a·v is at or above the elevation (ENU axes);
    +inf where none is. Bisection: elevation grows monotonically with a."""

    def ok(a: F64) -> NDArray[np.bool_]:
        w = w0 + a[:, None] * v
        el = np.arctan2(w[:, 2], np.hypot(w[:, 0], w[:, 1]))
        out: NDArray[np.bool_] = el >= min_elevation_rad
        return out

    n = w0.shape[0]
    lo, hi = np.zeros(n), np.full(n, float(top_m))
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        good = ok(mid)
        hi = np.where(good, mid, hi)
        lo = np.where(good, lo, mid)
    return np.where(ok(np.zeros(n)), 0.0, np.where(ok(np.full(n, float(top_m))), hi, np.inf))


def _lowest_over_terrain(terrain: Terrain, sensor_enu_m: F64, hs: float, columns: Columns,
                         d: F64, todo: NDArray[np.bool_]) -> F64:
    """Lowest height above the ground at which the ray from the sensor clears the terrain
    profile (with the earth's bulge) to each column, (n,); computed where ``todo``.

    Each ray is sampled about every terrain pixel: cells are taken in groups of similar
    distance so that near cells do not pay for the samples of far ones.
    """
    out = np.zeros(d.size)
    cells = np.flatnonzero(todo)
    if cells.size == 0:
        return out
    # Sample counts 16, 32, 64, ...: a group holds the cells whose rays need that many.
    need_samples = np.maximum(np.ceil(d[cells] / terrain.step_m), 16.0)
    group = np.ceil(np.log2(need_samples)).astype(np.intp)
    for g in np.unique(group):
        members = cells[group == g]
        samples = int(min(2 ** int(g), _MAX_PROFILE_SAMPLES))
        # Fractions of the way from the sensor, both ends left out: the sensor's own
        # ground does not mask it, and at the cell the bound is the ground itself.
        f = np.arange(1, samples) / samples
        bulge = f * (1.0 - f) / (2.0 * EFFECTIVE_EARTH_RADIUS_M)
        block = max(1, _PROFILE_BLOCK // f.size)
        for i in range(0, members.size, block):
            idx = members[i:i + block]
            e = sensor_enu_m[0] + f * (columns.east_m[idx, None] - sensor_enu_m[0])
            n = sensor_enu_m[1] + f * (columns.north_m[idx, None] - sensor_enu_m[1])
            t = terrain.height_at(e, n)
            need = hs + (t - hs + bulge * d[idx, None] ** 2) / f
            out[idx] = need.max(axis=1) - columns.ground_m[idx]
    return out


# --------------------------------------------------------------------------- coverage


@dataclass(frozen=True, slots=True)
class Coverage:
    """Lowest visible height above the ground over a grid, per sensor and overall.

    Arrays are over the grid, (ny, nx), row 0 southmost; heights in metres above the
    ground, +inf where nothing is seen up to ``max_altitude_m``.
    """

    scenario: Scenario
    grid: Grid
    sensors: tuple[SensorSpec, ...]
    skipped: tuple[SensorSpec, ...]
    per_sensor_agl_m: F64  #: (sensors, ny, nx)
    lowest_agl_m: F64  #: (ny, nx)
    ground_m: F64  #: (ny, nx) ground height above origin.alt_m
    lat_deg: F64  #: (ny, nx) cell centres
    lon_deg: F64
    sensor_agl_m: F64  #: (sensors,) each sensor's height above the ground below it
    max_altitude_m: float
    terrain: Terrain | None = None
    #: Fraction of the cells whose ground the DEM gives (1 without a DEM).
    dem_fraction: float = 1.0

    def fraction_seen(self, agl_m: float) -> float:
        """Fraction of the area where a target ``agl_m`` above the ground is seen."""
        return float(np.mean(self.lowest_agl_m <= agl_m))

    def fraction_seen_per_sensor(self, agl_m: float) -> F64:
        out: F64 = np.mean(self.per_sensor_agl_m <= agl_m, axis=(1, 2))
        return out


def compute(scenario: Scenario, *, resolution_m: float | None = None,
            max_altitude_m: float = DEFAULT_MAX_ALTITUDE_M, dem: Dem | None = None,
            geoid_height_m: float = 0.0) -> Coverage:
    """Coverage of the scenario's sensors over its region (or around the sensors)."""
    if not (math.isfinite(max_altitude_m) and max_altitude_m > 0):
        raise InputError(f"{max_altitude_m!r} is not a positive height",
                         field="--max-altitude-m", fix="give metres above ground, e.g. 1000")
    if not math.isfinite(geoid_height_m):
        raise InputError(f"{geoid_height_m!r} is not finite", field="--geoid-height-m",
                         fix="give the geoid height in metres")
    sensors, skipped = seeing_sensors(scenario)
    if not sensors:
        raise InputError(
            "no sensor sees anything: "
            + ", ".join(f"{s.id!r} is {s.kind}" for s in scenario.sensors),
            file="scenario.json", field="sensors",
            fix="cooperative and track sources report positions themselves; add a sensor")
    origin = scenario.origin
    grid = make_grid(scenario, sensors, resolution_m=resolution_m,
                     max_altitude_m=max_altitude_m)
    ee, nn = np.meshgrid(grid.east_m, grid.north_m)
    pos = np.array([s.position_enu_m for s in sensors], dtype=np.float64)
    terrain = None
    if dem is not None:
        east = (min(grid.east_bounds_m[0], pos[:, 0].min()),
                max(grid.east_bounds_m[1], pos[:, 0].max()))
        north = (min(grid.north_bounds_m[0], pos[:, 1].min()),
                 max(grid.north_bounds_m[1], pos[:, 1].max()))
        terrain = terrain_from_dem(dem, origin, east, north,
                                   step_m=min(min(grid.step_m), dem.pixel_m),
                                   geoid_height_m=geoid_height_m)
    columns = Columns.at(origin, ee, nn, terrain)
    per_sensor = np.stack([
        lowest_visible_agl_m(origin, s, columns, terrain=terrain, max_altitude_m=max_altitude_m)
        for s in sensors
    ]).reshape(len(sensors), *grid.shape)
    lat, lon, _ = origin.enu_to_geodetic(np.stack([ee, nn, np.zeros_like(ee)], axis=-1))
    sensor_h = np.atleast_1d(height_above_origin_m(origin, pos))
    sensor_ground = (np.zeros(len(sensors)) if terrain is None
                     else terrain.height_at(pos[:, 0], pos[:, 1]))
    dem_fraction = (1.0 if terrain is None
                    else float(np.mean(terrain.valid_at(columns.east_m, columns.north_m))))
    return Coverage(
        scenario=scenario, grid=grid, sensors=sensors, skipped=skipped,
        per_sensor_agl_m=per_sensor, lowest_agl_m=per_sensor.min(axis=0),
        ground_m=columns.ground_m.reshape(grid.shape), lat_deg=lat, lon_deg=lon,
        sensor_agl_m=sensor_h - sensor_ground, max_altitude_m=float(max_altitude_m),
        terrain=terrain, dem_fraction=dem_fraction,
    )


# --------------------------------------------------------------------------- bands


@dataclass(frozen=True, slots=True)
class Band:
    """Cells whose lowest visible height is in (lo_m, hi_m] (the first band from 0);
    the last band, ``covered`` False, is where nothing is seen up to the cap."""

    label: str
    lo_m: float
    hi_m: float | None
    covered: bool
    rgb: tuple[int, int, int]


#: Light where even a low flyer is seen, darker as only higher flyers are, near black
#: where nothing is: lightness alone orders them (readable with colour-blindness).
_BAND_COLOURS = ((255, 255, 178), (254, 217, 118), (254, 178, 76), (253, 141, 60),
                 (240, 59, 32), (189, 0, 38))
_NOT_COVERED_RGB = (58, 58, 58)


def bands(max_altitude_m: float) -> tuple[Band, ...]:
    """The altitude bands of the outputs up to the cap, then "not covered"."""
    edges = [0.0, *(e for e in BAND_EDGES_M if e < max_altitude_m), max_altitude_m]
    out = [Band(f"{lo:g}–{hi:g} m", lo, hi, True, _BAND_COLOURS[i])
           for i, (lo, hi) in enumerate(itertools.pairwise(edges))]
    out.append(Band(f"not seen up to {max_altitude_m:g} m", max_altitude_m, None, False,
                    _NOT_COVERED_RGB))
    return tuple(out)


def band_index(agl_m: F64, max_altitude_m: float) -> NDArray[np.intp]:
    """Index into :func:`bands` of each height (inf: the last, not covered)."""
    highs = np.array([b.hi_m for b in bands(max_altitude_m) if b.covered])
    out: NDArray[np.intp] = np.searchsorted(highs, agl_m, side="left")
    return out


# --------------------------------------------------------------------------- GeoJSON


def to_geojson(cov: Coverage) -> dict[str, Any]:
    """Filled contours of the lowest visible height, one feature per non-empty band, in
    WGS84 lon/lat (RFC 7946: outer rings anticlockwise, holes clockwise).

    The bands are contourpy's filled contours of the grid with linear interpolation
    between cell centres; not-covered cells take twice the cap, so the edge of cover lies
    about halfway between a covered and an uncovered cell. Where the field jumps (a range
    limit, a terrain shadow), the bands in between show as strips under a cell wide.
    """
    from contourpy import FillType, contour_generator

    g = cov.grid
    cap = cov.max_altitude_m
    z = np.pad(np.where(np.isfinite(cov.lowest_agl_m), cov.lowest_agl_m, 2.0 * cap), 1,
               mode="edge")
    # Padding at the area's edges makes the bands tile the whole area, not just the hull
    # of the cell centres.
    x = np.concatenate([[g.east_bounds_m[0]], g.east_m, [g.east_bounds_m[1]]])
    y = np.concatenate([[g.north_bounds_m[0]], g.north_m, [g.north_bounds_m[1]]])
    gen = contour_generator(x, y, z, fill_type=FillType.OuterOffset)
    counts = np.bincount(band_index(cov.lowest_agl_m.ravel(), cap).astype(np.intp),
                         minlength=len(bands(cap)))
    features = []
    for k, band in enumerate(bands(cap)):
        lower = -1.0 if k == 0 else band.lo_m
        upper = band.hi_m if band.hi_m is not None else 2.0 * cap
        # OuterOffset: a list of point arrays and a list of ring-offset arrays.
        points, offsets = cast("tuple[list[F64], list[NDArray[np.uint32]]]",
                               gen.filled(lower, upper))
        polygons = _polygons_lonlat(cov.scenario.origin, points, offsets)
        if not polygons:
            continue
        fraction = float(counts[k]) / cov.lowest_agl_m.size
        features.append({
            "type": "Feature",
            "properties": {
                "band": band.label,
                "min_visible_agl_m": band.lo_m,
                "max_visible_agl_m": band.hi_m,
                "covered": band.covered,
                "area_km2": round(fraction * g.area_m2 / 1e6, 4),
                "fraction_of_area": round(fraction, 6),
                "fill": "#{:02x}{:02x}{:02x}".format(*band.rgb),
            },
            "geometry": {"type": "MultiPolygon", "coordinates": polygons},
        })
    origin = cov.scenario.origin
    return {
        "type": "FeatureCollection",
        # A foreign member (RFC 7946 §6.1): how the layer was made.
        "skyfence_coverage": {
            "scenario": cov.scenario.name,
            "origin": {"lat_deg": origin.lat_deg, "lon_deg": origin.lon_deg,
                       "alt_m": origin.alt_m},
            "heights": "metres above the ground",
            "ground": cov.terrain.name if cov.terrain is not None
            else "flat at the origin's ellipsoidal height",
            "max_altitude_m": cap,
            "cell_m": list(g.step_m),
            "sensors": [s.id for s in cov.sensors],
            "effective_earth_k": EFFECTIVE_EARTH_K,
        },
        "features": features,
    }


def _polygons_lonlat(origin: Origin, points: Sequence[F64],
                     offsets: Sequence[NDArray[np.uint32]]) -> list[list[list[list[float]]]]:
    """contourpy OuterOffset polygons (ENU) → GeoJSON polygon coordinates (lon, lat)."""
    if not points:
        return []
    allpts = np.concatenate(points)
    lat, lon, _ = origin.enu_to_geodetic(np.column_stack([allpts, np.zeros(len(allpts))]))
    lonlat = np.asarray(np.round(np.column_stack([lon, lat]), 8), dtype=np.float64)
    out: list[list[list[list[float]]]] = []
    start = 0
    for pts, offs in zip(points, offsets, strict=True):
        rings = []
        for j, (a, b) in enumerate(itertools.pairwise(offs)):
            ring = _clean_ring(pts[a:b], lonlat[start + a:start + b], outer=j == 0)
            if ring is None:
                if j == 0:
                    break  # a degenerate outer ring: its holes go with it
                continue
            rings.append(ring)
        if rings:
            out.append(rings)
        start += len(pts)
    return out


def _clean_ring(enu: F64, lonlat: F64, *, outer: bool) -> list[list[float]] | None:
    """A closed ring without repeated points, oriented for RFC 7946; None if degenerate."""
    keep = np.concatenate([[True], np.any(np.diff(lonlat, axis=0) != 0, axis=1)])
    enu, lonlat = enu[keep], lonlat[keep]
    if len(lonlat) < 2 or np.any(lonlat[0] != lonlat[-1]):
        enu, lonlat = np.vstack([enu, enu[:1]]), np.vstack([lonlat, lonlat[:1]])
    if len(lonlat) < 4:
        return None
    x, y = enu[:, 0], enu[:, 1]
    area2 = float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))
    if area2 == 0.0:
        return None
    if (area2 > 0) != outer:
        lonlat = lonlat[::-1]
    ring: list[list[float]] = lonlat.tolist()
    return ring


# --------------------------------------------------------------------------- PNG


def write_png(cov: Coverage, path: str | Path, *, map_px: int = 760) -> None:
    """A colour map of the bands, north up, with the sensors, axes in km and a legend."""
    from PIL import Image, ImageDraw, ImageFont

    g = cov.grid
    width_m = g.east_bounds_m[1] - g.east_bounds_m[0]
    height_m = g.north_bounds_m[1] - g.north_bounds_m[0]
    scale = map_px / max(width_m, height_m)  # px per metre
    mw, mh = max(1, round(width_m * scale)), max(1, round(height_m * scale))
    left, top, legend_w, bottom = 78, 70, 300, 62
    canvas = Image.new("RGB", (left + mw + 24 + legend_w, top + mh + bottom), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=15)
    small = ImageFont.load_default(size=13)
    title = ImageFont.load_default(size=19)

    # Nearest cell under each pixel centre; row 0 of the image is the north edge.
    col = np.clip(((np.arange(mw) + 0.5) / mw * g.east_m.size).astype(np.intp), 0,
                  g.east_m.size - 1)
    row = np.clip(((mh - 0.5 - np.arange(mh)) / mh * g.north_m.size).astype(np.intp), 0,
                  g.north_m.size - 1)
    all_bands = bands(cov.max_altitude_m)
    palette = np.array([b.rgb for b in all_bands], dtype=np.uint8)
    idx = band_index(cov.lowest_agl_m, cov.max_altitude_m)
    canvas.paste(Image.fromarray(palette[idx[row[:, None], col[None, :]]], "RGB"), (left, top))
    draw.rectangle((left - 1, top - 1, left + mw, top + mh), outline="black")

    def px(east: float, north: float) -> tuple[float, float]:
        return (left + (east - g.east_bounds_m[0]) * scale,
                top + (g.north_bounds_m[1] - north) * scale)

    tick = _nice_step(max(width_m, height_m) / 6.0)
    for e in np.arange(math.ceil(g.east_bounds_m[0] / tick) * tick, g.east_bounds_m[1] + 1e-6,
                       tick):
        x, _ = px(e, 0.0)
        draw.line((x, top + mh, x, top + mh + 5), fill="black")
        draw.text((x, top + mh + 8), f"{e / 1e3:g}", fill="black", font=small, anchor="ma")
    for n in np.arange(math.ceil(g.north_bounds_m[0] / tick) * tick,
                       g.north_bounds_m[1] + 1e-6, tick):
        _, y = px(0.0, n)
        draw.line((left - 6, y, left - 1, y), fill="black")
        draw.text((left - 9, y), f"{n / 1e3:g}", fill="black", font=small, anchor="rm")
    draw.text((left + mw / 2, top + mh + 30), "km east of the origin", fill="black",
              font=font, anchor="ma")
    axis = Image.new("RGBA", (mh, 22), (255, 255, 255, 0))
    ImageDraw.Draw(axis).text((mh / 2, 0), "km north of the origin", fill="black", font=font,
                              anchor="ma")
    canvas.paste(axis.rotate(90, expand=True), (6, top), axis.rotate(90, expand=True))

    for s in cov.sensors:
        x, y = px(s.position_enu_m[0], s.position_enu_m[1])
        if not (left <= x <= left + mw and top <= y <= top + mh):
            continue
        draw.ellipse((x - 7, y - 7, x + 7, y + 7), fill=(33, 102, 172), outline="white",
                     width=2)
        draw.text((x + 10, y), s.id, fill="black", font=font, anchor="lm", stroke_width=3,
                  stroke_fill="white")

    ground = (f"ground: DEM {Path(cov.terrain.name).name}" if cov.terrain is not None
              else "ground: flat at the origin's height (no DEM)")
    draw.text((left, 14), f"skyfence coverage: {cov.scenario.name}", fill="black", font=title)
    draw.text((left, 42), "lowest altitude above the ground at which a sensor sees a target; "
              + ground, fill=(60, 60, 60), font=small)

    lx, y = left + mw + 24, top
    draw.text((lx, y), "lowest altitude seen", fill="black", font=font)
    draw.text((lx, y + 19), "(m above ground)    share of area", fill=(60, 60, 60), font=small)
    y += 46
    counts = np.bincount(idx.ravel(), minlength=len(all_bands)) / idx.size
    for band, share in zip(all_bands, counts, strict=True):
        draw.rectangle((lx, y, lx + 28, y + 18), fill=band.rgb, outline="black")
        draw.text((lx + 38, y + 9), _ascii(band.label), fill="black", font=font, anchor="lm")
        draw.text((lx + legend_w - 24, y + 9), f"{100 * share:.1f} %", fill="black",
                  font=font, anchor="rm")
        y += 26
    y += 14
    draw.ellipse((lx + 7, y + 2, lx + 21, y + 16), fill=(33, 102, 172), outline="white",
                 width=2)
    draw.text((lx + 38, y + 9), "sensor", fill="black", font=font, anchor="lm")
    y += 30
    notes = [f"{len(cov.sensors)} sensor(s): " + ", ".join(s.id for s in cov.sensors)]
    if cov.skipped:
        notes.append("not seeing (cooperative): " + ", ".join(s.id for s in cov.skipped))
    notes += ["4/3-earth horizon" + ("" if cov.terrain is None else " and terrain"),
              f"{g.shape[1]} x {g.shape[0]} cells of {g.step_m[0]:.4g} m"]
    for line in notes:
        for part in _wrap(_ascii(line), 36):
            draw.text((lx, y), part, fill=(60, 60, 60), font=small)
            y += 17
    canvas.save(path, format="PNG", optimize=True)


def _ascii(text: str) -> str:
    """Pillow's built-in font has no en dash or multiplication sign."""
    return text.replace("–", "-").replace("×", "x")


def _nice_step(x: float) -> float:
    """The smallest of 1, 2, 5 × 10^k at or above x."""
    base = 10.0 ** math.floor(math.log10(x))
    return next(m * base for m in (1.0, 2.0, 5.0, 10.0) if m * base >= x)


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line]


# --------------------------------------------------------------------------- outputs


def write(cov: Coverage, out_dir: str | Path) -> list[Path]:
    """Write coverage.geojson, coverage.png and coverage.npz into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "coverage.geojson", out / "coverage.png", out / "coverage.npz"]
    paths[0].write_text(json.dumps(to_geojson(cov), separators=(",", ":")) + "\n",
                        encoding="utf-8")
    write_png(cov, paths[1])
    np.savez_compressed(
        paths[2], east_m=cov.grid.east_m, north_m=cov.grid.north_m, lat_deg=cov.lat_deg,
        lon_deg=cov.lon_deg, lowest_visible_agl_m=cov.lowest_agl_m,
        per_sensor_agl_m=cov.per_sensor_agl_m, sensor_ids=np.array([s.id for s in cov.sensors]),
        ground_m=cov.ground_m, max_altitude_m=np.float64(cov.max_altitude_m),
    )
    return paths


def summary_lines(cov: Coverage) -> list[str]:
    """A short text summary: the area, the share seen at 30 and 100 m, per sensor."""
    g = cov.grid
    cap = cov.max_altitude_m
    w_km = (g.east_bounds_m[1] - g.east_bounds_m[0]) / 1e3
    h_km = (g.north_bounds_m[1] - g.north_bounds_m[0]) / 1e3
    levels = [h for h in (30.0, 100.0) if h < cap] + [cap]
    lines = [
        f"area {w_km:g} × {h_km:g} km ({g.area_m2 / 1e6:,.1f} km²), {g.shape[1]} × "
        f"{g.shape[0]} cells of {g.step_m[0]:.4g} × {g.step_m[1]:.4g} m, heights up to "
        f"{cap:g} m above the ground",
    ]
    id_w = max(6, *(len(s.id) for s in cov.sensors))
    kind_w = max(4, *(len(s.kind) for s in cov.sensors))
    head = "  ".join(f"{f'seen at {h:g} m':>14}" for h in levels)
    lines.append(f"{'sensor':<{id_w}}  {'kind':<{kind_w}}  {'above ground':>12}  {head}")
    per = [cov.fraction_seen_per_sensor(h) for h in levels]
    for i, s in enumerate(cov.sensors):
        cells = "  ".join(f"{100 * p[i]:12.1f} %" for p in per)
        lines.append(f"{s.id:<{id_w}}  {s.kind:<{kind_w}}  {cov.sensor_agl_m[i]:10.0f} m  "
                     f"{cells}")
    cells = "  ".join(f"{100 * cov.fraction_seen(h):12.1f} %" for h in levels)
    lines.append(f"{'all':<{id_w}}  {'':<{kind_w}}  {'':>12}  {cells}")
    return lines


def warnings(cov: Coverage, *, geoid_height_m: float = 0.0, dem: Dem | None = None) -> list[str]:
    """What the user should know about the assumptions behind this coverage."""
    out = []
    if cov.terrain is None:
        out.append(f"no DEM given: the ground is flat at the origin's ellipsoidal height "
                   f"({cov.scenario.origin.alt_m:g} m); heights are above it and no terrain "
                   "masks anything")
    else:
        if cov.dem_fraction < 1.0:
            out.append(f"the DEM covers {100 * cov.dem_fraction:.1f} % of the area; elsewhere "
                       "the ground is taken at the origin's height")
        if dem is not None and dem.vertical_crs is not None and geoid_height_m == 0.0:
            out.append(f"the DEM declares vertical datum {dem.vertical_crs}; if its heights are "
                       "above mean sea level while origin.alt_m is ellipsoidal, give "
                       "--geoid-height-m")
        for s, h in zip(cov.sensors, cov.sensor_agl_m, strict=True):
            if h < 0:
                out.append(f"sensor {s.id!r} is {-h:.0f} m below the DEM ground: its "
                           "position_enu_m up is measured from origin.alt_m, not from the "
                           "ground")
    for s in cov.skipped:
        out.append(f"sensor {s.id!r} ({s.kind}) left out: it reports positions, it sees "
                   "nothing")
    return out
