"""GeoJSON out of a real picture: RFC 7946 structure, the right-hand rule, full precision,
and zones as the zone reader reads them back."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import shapely
from shapely.geometry import shape

from skyfence import sim
from skyfence.adapters.geojson_out import encode, groups_geojson, tracks_geojson, zones_geojson
from skyfence.errors import SkyfenceError
from skyfence.geo import Origin
from skyfence.groups import GroupTable
from skyfence.picture import Frame, Picture
from skyfence.pipeline import batch_bounds
from skyfence.track import Tracker
from skyfence.types import TrackFlag
from skyfence.zones.geojson import parse_geojson

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


@pytest.fixture(scope="module")
def run() -> tuple[Origin, list[Frame]]:
    """20 s of the mixed scenario through the tracker and the picture."""
    result = sim.build("mixed", seed=0, duration_s=20.0)
    tracker = Tracker.from_scenario(result.scenario)
    picture = Picture.for_scenario(result.scenario)
    det = result.detections
    frames = []
    for a, b in zip(*batch_bounds(det.t), strict=True):
        frames.append(picture.update(tracker.step(det.take(slice(a, b)))))
    return result.scenario.origin, frames


def _ring_area(ring: list[list[float]]) -> float:
    """Shoelace area in degrees² (positive: counter-clockwise, lon east and lat north)."""
    x = np.array([p[0] for p in ring])
    y = np.array([p[1] for p in ring])
    return 0.5 * float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))


def _check_collection(fc: dict[str, Any]) -> list[dict[str, Any]]:
    """What RFC 7946 asks of a FeatureCollection, and that it survives JSON."""
    assert fc["type"] == "FeatureCollection"
    back = json.loads(encode(fc))
    assert back == fc  # nothing lost, nothing that JSON cannot say (NaN)
    features: list[dict[str, Any]] = fc["features"]
    for f in features:
        assert f["type"] == "Feature" and set(f) == {"type", "id", "geometry", "properties"}
        geometry = f["geometry"]
        if geometry["type"] == "Point":
            lon, lat = geometry["coordinates"][:2]
            assert -180 <= lon <= 180 and -90 <= lat <= 90
        else:
            assert geometry["type"] == "Polygon"
            for ring in geometry["coordinates"]:
                assert len(ring) >= 4 and ring[0] == ring[-1]
                assert all(-180 <= p[0] <= 180 and -90 <= p[1] <= 90 for p in ring)
            assert _ring_area(geometry["coordinates"][0]) > 0  # right-hand rule
            assert shape(geometry).is_valid
    return features


def test_tracks_are_points_with_their_picture(run: tuple[Origin, list[Frame]]) -> None:
    origin, frames = run
    for frame in frames[-5:]:
        tr = frame.tracks
        features = _check_collection(tracks_geojson(frame, origin))
        assert len(features) == len(tr)
        lat, lon, hae = origin.enu_to_geodetic(tr.x[:, :3])
        names = frame.class_names().tolist()
        for i, f in enumerate(features):
            p = f["properties"]
            # Full precision: the very floats of the conversion, lon first.
            assert f["geometry"]["coordinates"] == [lon[i], lat[i], hae[i]]
            assert p["id"] == tr.id[i] and f["id"] == f"track-{tr.id[i]}"
            assert p["class"] == names[i] and p["class_p"] == frame.class_p()[i]
            assert p["identity"] == (str(tr.identity[i]) or None)
            assert p["flags"] == [s for s in str(tr.flag_names()[i]).split("|") if s]
            assert p["group"] == (None if frame.group[i] < 0 else frame.group[i])
            assert p["status"] in ("confirmed", "coasting")
            assert math.isclose(p["speed_mps"], math.hypot(tr.x[i, 3], tr.x[i, 4]),
                                rel_tol=1e-3)
            assert 0.0 <= p["course_deg"] < 360.0
            assert math.isclose(p["height_m"], hae[i] - origin.alt_m, abs_tol=1e-9)
            assert p["t"].endswith("Z") and len(p["t"]) == 24
    last = tracks_geojson(frames[-1], origin)["features"]
    assert any("dark" in f["properties"]["flags"] for f in last)
    assert any(f["properties"]["identity"] for f in last)


def test_groups_are_polygons_around_their_members(run: tuple[Origin, list[Frame]]) -> None:
    origin, frames = run
    seen = 0
    for frame in frames:
        hull = _check_collection(groups_geojson(frame, origin))
        circle = _check_collection(groups_geojson(frame, origin, outline="circle"))
        assert len(hull) == len(circle) == len(frame.groups)
        for k, (h, c) in enumerate(zip(hull, circle, strict=True)):
            gid = int(frame.groups.id[k])
            members = frame.group == gid
            assert h["properties"]["id"] == gid and h["id"] == f"group-{gid}"
            assert h["properties"]["count"] == frame.groups.count[k] == members.sum()
            assert h["properties"]["members"] == frame.groups.members(gid).tolist()
            # The swarm's members are multirotors once the evidence is in.
            assert h["properties"]["class"] in ("unknown", "drone_multirotor")
            lat, lon, _ = origin.enu_to_geodetic(frame.tracks.x[members, :3])
            polygon = shape(h["geometry"])
            # Every member inside the hull (to a few cm: the corners sit at their own
            # heights, the others project a hair differently); the corners are members.
            points = shapely.points(np.column_stack([lon, lat]))
            assert all(polygon.buffer(1e-6).contains(pt) for pt in points)
            corners = {tuple(p) for p in h["geometry"]["coordinates"][0]}
            assert corners <= set(zip(lon.tolist(), lat.tolist(), strict=True))
            # The circle holds the hull: its radius is the extent about the centroid.
            assert shape(c["geometry"]).buffer(1e-7).contains(polygon)
            seen += 1
    assert seen > 10
    assert groups_geojson(frames[-1], origin)["features"][0]["properties"]["class"] == \
        "drone_multirotor"


def test_a_group_of_two_or_in_a_line_gets_a_circle(run: tuple[Origin, list[Frame]]) -> None:
    origin, frames = run
    frame = frames[-1]
    tr = frame.tracks
    members = np.flatnonzero(frame.group >= 0)
    x = tr.x.copy()
    x[members, 1] = 0.0  # all on one east-west line
    x[members, 0] = np.arange(members.size) * 10.0
    lined = replace(frame, tracks=replace(tr, x=x))
    (f,) = _check_collection(groups_geojson(lined, origin, circle_points=12))
    assert len(f["geometry"]["coordinates"][0]) == 13
    g = frame.groups
    tiny = replace(frame, groups=GroupTable(id=g.id, count=g.count, centroid=g.centroid,
                                            extent_m=np.zeros(1), velocity=g.velocity,
                                            member_ids=g.member_ids,
                                            member_start=g.member_start))
    (f,) = _check_collection(groups_geojson(tiny, origin, outline="circle",
                                            min_radius_m=25.0))
    ring = np.array(f["geometry"]["coordinates"][0])
    hae = origin.enu_to_geodetic(g.centroid[0])[2]
    enu = origin.geodetic_to_enu(ring[:, 1], ring[:, 0], np.full(len(ring), hae))
    radius = 25.0 / math.cos(math.pi / 36)  # the polygon's edges touch the circle
    assert np.allclose(np.hypot(*(enu[:, :2] - g.centroid[0, :2]).T), radius, atol=1e-3)


def test_bad_outline_options_are_refused() -> None:
    frame_free = Origin(lat_deg=0.0, lon_deg=0.0, alt_m=0.0)
    with pytest.raises(SkyfenceError, match="outline"):
        groups_geojson(None, frame_free, outline="blob")  # type: ignore[arg-type]
    with pytest.raises(SkyfenceError, match="circle_points"):
        groups_geojson(None, frame_free, circle_points=2)  # type: ignore[arg-type]


def test_non_finite_tracks_are_left_out_and_nan_never_written(
        run: tuple[Origin, list[Frame]]) -> None:
    origin, frames = run
    frame = frames[-1]
    tr = frame.tracks
    x = tr.x.copy()
    x[0, 0] = np.nan
    x[1, 3] = np.inf
    flags = tr.flags.copy()
    flags[2] |= TrackFlag.SPOOF_SUSPECT
    odd = replace(frame, tracks=replace(tr, x=x, flags=flags))
    features = _check_collection(tracks_geojson(odd, origin))
    assert len(features) == len(tr) - 1
    assert features[0]["properties"]["speed_mps"] is None
    assert "spoof_suspect" in features[1]["properties"]["flags"]
    with pytest.raises(ValueError, match="JSON"):
        encode({"type": "FeatureCollection", "features": [], "x": math.nan})


def test_zones_round_trip_through_the_zone_reader() -> None:
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature",
         "geometry": {"type": "Polygon", "coordinates": [[[8.54, 47.37], [8.56, 47.37],
                                                          [8.55, 47.38], [8.54, 47.37]]]},
         "properties": {"id": "ZRH-1", "name": "Zurich centre", "restriction": "prohibited",
                        "upper_limit": 120, "upper_reference": "AGL"}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [8.5, 47.4]},
         "properties": {"id": "SITE", "restriction": "conditional", "radius_m": 500.0}}]}
    zones, problems = parse_geojson(fc, file=None)
    assert not problems
    out = zones_geojson(zones)
    _check_collection({"type": "FeatureCollection",
                       "features": [{**f, "id": f["properties"]["id"]}
                                    for f in out["features"]]})
    again, problems = parse_geojson(json.loads(encode(out)), file=None)
    assert not problems and again == zones
