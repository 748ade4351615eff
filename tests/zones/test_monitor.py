"""The zone monitor against shapely and hand-made geometry: inside now, time and
probability of entry, heights, holes, exemptions, schedules, the grid index."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from skyfence.geo import Origin
from skyfence.geoid import geoid_height_m
from skyfence.zones import (
    Applicability,
    DailyPeriod,
    HeightReference,
    Limit,
    Polygon,
    Restriction,
    Volume,
    Zone,
)
from skyfence.zones.monitor import FlatGround, MonitorConfig, ZoneMonitor, _GridIndex

from .scenes import ORIGIN, circle_zone, square_zone


def _tracks(pos: list[tuple[float, float, float]], vel: list[tuple[float, float, float]],
            *, pos_std_m: float = 5.0, vel_std_mps: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    x = np.c_[np.asarray(pos, float), np.asarray(vel, float)]
    P = np.tile(np.diag([pos_std_m**2] * 3 + [vel_std_mps**2] * 3), (len(x), 1, 1))
    return x, P


def _monitor(zones: list[Zone], **cfg: object) -> ZoneMonitor:
    return ZoneMonitor(zones, ORIGIN, ground=FlatGround(ORIGIN.alt_m),
                       config=MonitorConfig(**cfg))  # type: ignore[arg-type]


def test_inside_now_and_time_to_entry_of_a_square() -> None:
    m = _monitor([square_zone("Z", (-300, 300), (300, 900))])
    x, P = _tracks([(0, -1200, 80), (0, 600, 80), (0, 600, 250), (2000, 0, 80)],
                   [(0, 15, 0), (0, 0, 0), (0, 0, 0), (0, 15, 0)])
    hits = m.check(0.0, x, P)
    by = {int(t): k for k, t in enumerate(hits.track)}
    assert set(by) == {0, 1, 2}  # the far track is not even a candidate
    k = by[0]
    assert not hits.inside[k]
    # 1,500 m at 15 m/s; the ENU plane and the ellipsoid plane differ by centimetres here.
    assert hits.time_to_breach_s[k] == pytest.approx(100.0, abs=0.2)
    assert 0.5 < hits.probability[k] < 1.0
    assert hits.inside[by[1]] and hits.time_to_breach_s[by[1]] == 0.0
    assert hits.depth_m[by[1]] == pytest.approx(70.0, abs=2.0)  # 80 m in a 0-150 m band
    assert not hits.inside[by[2]]  # above the ceiling
    assert hits.depth_m[by[2]] == pytest.approx(-100.0, abs=2.0)


def test_circle_entry_matches_the_geometry() -> None:
    m = _monitor([circle_zone("C", (0.0, 2000.0), 500.0)])
    x, P = _tracks([(300, 0, 60)], [(0, 20, 0)])
    hits = m.check(0.0, x, P)
    # Enters where north = 2000 − √(500² − 300²) = 1600: 80 s at 20 m/s.
    assert hits.time_to_breach_s[0] == pytest.approx(80.0, abs=0.2)
    x2, P2 = _tracks([(0, 2100, 60)], [(0, 0, 0)])
    h2 = m.check(0.0, x2, P2)
    assert h2.inside[0] and h2.depth_m[0] == pytest.approx(60.0, abs=1.0)


def test_climbing_into_the_band_enters_when_it_crosses_the_floor() -> None:
    lat, lon, _ = ORIGIN.enu_to_geodetic(np.array([[-500, -500, 0], [500, -500, 0],
                                                   [500, 500, 0], [-500, 500, 0]], float))
    ring = (*zip(lon.tolist(), lat.tolist(), strict=True), (float(lon[0]), float(lat[0])))

    def zone(floor_m: float) -> Zone:
        return Zone(id="high", name="high", restriction=Restriction.PROHIBITED,
                    volumes=(Volume(Polygon((ring,)), Limit(floor_m, HeightReference.AGL),
                                    Limit(400.0, HeightReference.AGL)),))

    x, P = _tracks([(0, 0, 100)], [(0, 0, 2)])
    hits = _monitor([zone(130.0)]).check(0.0, x, P)
    assert not hits.inside[0]
    assert hits.depth_m[0] == pytest.approx(-30.0, abs=1.0)
    assert hits.time_to_breach_s[0] == pytest.approx(15.0, abs=0.5)
    # A climb is held for 20 s in the prediction: 40 m, not the 100 m to a 200 m floor.
    hits = _monitor([zone(200.0)]).check(0.0, x, P)
    assert np.isnan(hits.time_to_breach_s).all()
    hits = _monitor([zone(200.0)], climb_hold_s=120.0).check(0.0, x, P)
    assert hits.time_to_breach_s[0] == pytest.approx(50.0, abs=0.5)


def test_a_hole_is_outside() -> None:
    outer = np.array([[-1000, -1000], [1000, -1000], [1000, 1000], [-1000, 1000], [-1000, -1000]])
    hole = outer * 0.2
    rings = []
    for r in (outer, hole):
        lat, lon, _ = ORIGIN.enu_to_geodetic(np.c_[r, np.zeros(len(r))].astype(float))
        rings.append(tuple(zip(lon.tolist(), lat.tolist(), strict=True)))
    zone = Zone(id="ring", name="ring", restriction=Restriction.PROHIBITED,
                volumes=(Volume(Polygon(tuple(rings)), Limit(0.0, HeightReference.AGL),
                                Limit(500.0, HeightReference.AGL)),))
    m = _monitor([zone])
    x, P = _tracks([(0, 0, 50), (500, 0, 50)], [(0, 0, 0), (0, 0, 0)])
    hits = m.check(0.0, x, P)
    inside = dict(zip(hits.track.tolist(), hits.inside.tolist(), strict=True))
    assert inside == {0: False, 1: True}


def test_heights_in_each_reference() -> None:
    ground = ORIGIN.alt_m
    n = float(geoid_height_m(ORIGIN.lat_deg, ORIGIN.lon_deg))
    lat, lon, _ = ORIGIN.enu_to_geodetic(np.array([[-500, -500, 0], [500, -500, 0],
                                                   [500, 500, 0], [-500, 500, 0]], float))
    ring = (*zip(lon.tolist(), lat.tolist(), strict=True), (float(lon[0]), float(lat[0])))

    def zone(ref: HeightReference, top: float) -> Zone:
        return Zone(id=ref.value, name=ref.value, restriction=Restriction.PROHIBITED,
                    volumes=(Volume(Polygon((ring,)), Limit(-1e4, ref), Limit(top, ref)),))

    # A track 100 m above the origin: 500 + 100 m above the ellipsoid.
    x, P = _tracks([(0, 0, 100)], [(0, 0, 0)], pos_std_m=1.0)
    for ref, top_in, top_out in (
        (HeightReference.WGS84, ground + 105, ground + 95),
        (HeightReference.AMSL, ground + 105 - n, ground + 95 - n),
        (HeightReference.AGL, 105.0, 95.0),
    ):
        m = _monitor([zone(ref, top_in), zone(ref, top_out)])
        hits = m.check(0.0, x, P)
        assert hits.inside[hits.zone == 0].all() and not hits.inside[hits.zone == 1].any(), ref


def test_exempt_identities_unless_suspected_of_spoofing() -> None:
    z = square_zone("Z", (-300, 300), (-300, 300), exempt=frozenset({"rid:GOOD1"}))
    m = _monitor([z])
    x, P = _tracks([(0, 0, 50), (10, 0, 50)], [(0, 0, 0), (0, 0, 0)])
    ident = np.array(["rid:GOOD1", "rid:OTHER"])
    hits = m.check(0.0, x, P, ident)
    assert hits.track.tolist() == [1]
    hits = m.check(0.0, x, P, ident, spoof_suspect=np.array([True, False]))
    assert sorted(hits.track.tolist()) == [0, 1]


def test_zones_out_of_force_are_skipped_and_come_back() -> None:
    # In force 08:00-18:00 UTC on weekdays.
    z = square_zone("Z", (-300, 300), (-300, 300))
    z = Zone(id=z.id, name=z.name, restriction=z.restriction, volumes=z.volumes,
             applicability=(Applicability(daily=(DailyPeriod(frozenset(range(5)), 8 * 3600.0,
                                                             18 * 3600.0),)),))
    m = _monitor([z])
    x, P = _tracks([(0, 0, 50)], [(0, 0, 0)])
    monday_noon = 1_764_590_400.0  # 2025-12-01 12:00 UTC, a Monday
    assert len(m.check(monday_noon, x, P)) == 1
    assert len(m.check(monday_noon + 7 * 3600, x, P)) == 0  # 19:00
    assert len(m.check(monday_noon + 21 * 3600, x, P)) == 1  # Tuesday 09:00
    assert len(m.check(monday_noon + 5 * 86400, x, P)) == 0  # Saturday


def test_probability_falls_off_beside_the_path() -> None:
    m = _monitor([square_zone("Z", (-300, 300), (900, 1500))])
    offsets = [0.0, 200.0, 300.0, 450.0, 800.0]
    x, P = _tracks([(300 + o, 0, 60) for o in offsets], [(0, 15, 0)] * len(offsets),
                   vel_std_mps=0.3)
    hits = m.check(0.0, x, P)
    p = np.zeros(len(offsets))
    p[hits.track] = hits.probability
    assert p[0] > 0.4 and np.all(np.diff(p) <= 1e-9)
    assert p[-1] < 0.05


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_inside_agrees_with_shapely(seed: int) -> None:
    rng = np.random.default_rng(seed)
    zones, polys = [], []
    for k in range(8):
        n = int(rng.integers(3, 40))
        c = rng.uniform(-3000, 3000, 2)
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        r = rng.uniform(100, 800) * rng.uniform(0.3, 1.0, n)
        enu = np.c_[c[0] + r * np.sin(ang), c[1] + r * np.cos(ang), np.zeros(n)]
        lat, lon, _ = ORIGIN.enu_to_geodetic(enu)
        ring = (*zip(lon.tolist(), lat.tolist(), strict=True), (float(lon[0]), float(lat[0])))
        poly = shapely.Polygon(ring)
        if not poly.is_valid:
            continue
        zones.append(Zone(id=f"Z{k}", name="", restriction=Restriction.PROHIBITED,
                          volumes=(Volume(Polygon((ring,)), Limit(-1e4, HeightReference.AGL),
                                          Limit(1e4, HeightReference.AGL)),)))
        polys.append(poly)
    m = _monitor(zones)
    pts = np.c_[rng.uniform(-4000, 4000, (300, 2)), np.full(300, 50.0)]
    x, P = _tracks([tuple(p) for p in pts], [(0.0, 0.0, 0.0)] * len(pts))
    hits = m.check(0.0, x, P)
    got = {(int(t), int(z)) for t, z, i in zip(hits.track, hits.zone, hits.inside,
                                               strict=True) if i}
    lat, lon, _ = ORIGIN.enu_to_geodetic(pts)
    want = {(i, k) for k, poly in enumerate(polys)
            for i in np.flatnonzero(shapely.contains_xy(poly, lon, lat)).tolist()}
    # Lon/lat straight edges and plane straight edges differ by millimetres here:
    # only points within a metre of an edge may disagree.
    for i, k in got ^ want:
        d = shapely.distance(shapely.Point(lon[i], lat[i]), polys[k].exterior)
        assert d * 111_000 < 1.0, (i, k)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(0, 60), m=st.integers(0, 60))
def test_grid_index_finds_exactly_the_overlapping_boxes(seed: int, n: int, m: int) -> None:
    rng = np.random.default_rng(seed)
    lo = rng.uniform(-1000, 1000, (n, 2))
    boxes = np.c_[lo, lo + rng.uniform(0, rng.choice([10, 300, 3000]), (n, 2))]
    qlo = rng.uniform(-1500, 1500, (m, 2))
    qhi = qlo + rng.uniform(0, 800, (m, 2))
    qi, bi = _GridIndex(boxes).query(qlo, qhi)
    got = set(zip(qi.tolist(), bi.tolist(), strict=True))
    want = {(q, b) for q in range(m) for b in range(n)
            if boxes[b, 0] <= qhi[q, 0] and boxes[b, 2] >= qlo[q, 0]
            and boxes[b, 1] <= qhi[q, 1] and boxes[b, 3] >= qlo[q, 1]}
    assert got == want
    assert len(got) == len(qi)  # no pair twice


def test_a_zone_far_from_the_origin_is_placed_by_latitude_and_longitude() -> None:
    origin = Origin(46.0, 7.0, 400.0)
    far_lat, far_lon = 47.3, 9.2  # ~210 km away
    d = 0.004
    ring = ((far_lon - d, far_lat - d), (far_lon + d, far_lat - d), (far_lon + d, far_lat + d),
            (far_lon - d, far_lat + d), (far_lon - d, far_lat - d))
    zone = Zone(id="far", name="far", restriction=Restriction.PROHIBITED,
                volumes=(Volume(Polygon((ring,)), Limit(0.0, HeightReference.WGS84),
                                Limit(3000.0, HeightReference.WGS84)),))
    m = ZoneMonitor([zone], origin, ground=FlatGround(400.0))
    # A track 1,500 m above the ellipsoid over the zone's centre, 20 m inside its east edge.
    inner_lon = far_lon + d - 20.0 / (111_320 * math.cos(math.radians(far_lat)))
    enu = origin.geodetic_to_enu(np.array([far_lat, far_lat]), np.array([far_lon, inner_lon]),
                                 np.array([1500.0, 1500.0]))
    x, P = _tracks([tuple(e) for e in enu], [(0, 0, 0), (0, 0, 0)], pos_std_m=1.0)
    hits = m.check(0.0, x, P)
    assert hits.inside.all() and len(hits) == 2
    assert hits.depth_m[hits.track == 1][0] == pytest.approx(20.0, abs=1.5)


def test_no_tracks_no_zones() -> None:
    x, P = _tracks([(0, 0, 0)], [(0, 0, 0)])
    assert len(_monitor([]).check(0.0, x, P)) == 0
    assert len(_monitor([square_zone("Z", (0, 1), (0, 1))]).check(0.0, x[:0], P[:0])) == 0


def test_ground_from_a_dem_above_mean_sea_level() -> None:
    from skyfence.coverage import Dem
    from skyfence.zones.monitor import DemGround

    # A 1 km plateau 300 m above mean sea level around the origin, 2 km square.
    dem = Dem(heights_m=np.full((3, 3), 300.0), lat0_deg=ORIGIN.lat_deg + 0.01,
              lon0_deg=ORIGIN.lon_deg - 0.015, dlat_deg=-0.01, dlon_deg=0.015)
    ground = DemGround(dem, fallback_m=ORIGIN.alt_m)
    n = float(geoid_height_m(ORIGIN.lat_deg, ORIGIN.lon_deg))
    h = ground.height_m(np.array([ORIGIN.lat_deg, 10.0]), np.array([ORIGIN.lon_deg, 10.0]))
    assert h[0] == pytest.approx(300.0 + n, abs=0.01)
    assert h[1] == ORIGIN.alt_m  # off the DEM
    m = ZoneMonitor([square_zone("Z", (-300, 300), (-300, 300), top_m=150.0)], ORIGIN,
                    ground=ground)
    # The origin is 500 m above the ellipsoid; the ground here is 300 + N ≈ 350 m: a
    # track 100 m above the origin is ~250 m above the ground, over a 150 m ceiling;
    # one 100 m below the origin is ~50 m above the ground, inside.
    x, P = _tracks([(0, 0, 100), (0, 0, -100)], [(0, 0, 0), (0, 0, 0)])
    hits = m.check(0.0, x, P)
    inside = dict(zip(hits.track.tolist(), hits.inside.tolist(), strict=True))
    assert inside.get(0) is not True and inside[1] is True


def test_agl_without_terrain_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="skyfence.zones"):
        ZoneMonitor([square_zone("Z", (0, 1), (0, 1))], ORIGIN)
    assert len(caplog.records) == 1 and "no terrain model" in caplog.records[0].getMessage()
