"""skyfence GeoJSON: the documented form, its problems, and the round trip through
to_geojson for generated zones and for every real file."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyfence.zones.geojson import parse_geojson, to_geojson
from skyfence.zones.io import load_zones
from skyfence.zones.model import (
    Applicability,
    Circle,
    DailyPeriod,
    HeightReference,
    Limit,
    Polygon,
    Restriction,
    Volume,
    Zone,
    ZoneError,
    check_zone,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "zones"
REAL_FILES = sorted(p for p in DATA.rglob("*.json") if not p.name.startswith(("Invalid",
                                                                               "Partial")))
AGL = HeightReference.AGL
RING = [[8.0, 47.0], [8.01, 47.0], [8.01, 47.01], [8.0, 47.01], [8.0, 47.0]]


def t(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def feature(ident: str = "Z1", geometry: dict[str, Any] | None = None,
            **props: Any) -> dict[str, Any]:
    return {"type": "Feature",
            "geometry": geometry or {"type": "Polygon", "coordinates": [copy.deepcopy(RING)]},
            "properties": {"id": ident, "restriction": "prohibited", **props}}


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def parse(*features: dict[str, Any]) -> tuple[list[Zone], list[ZoneError]]:
    return parse_geojson(collection(*features), file=None)


def test_a_plain_polygon_with_defaults() -> None:
    [z], problems = parse(feature(upper_limit=120))
    assert problems == []
    assert z.restriction is Restriction.PROHIBITED and z.name == ""
    [v] = z.volumes
    assert (v.lower, v.upper) == (Limit(0.0, AGL), Limit(120.0, AGL))
    assert isinstance(v.shape, Polygon) and v.shape.rings[0][0] == (8.0, 47.0)
    assert z.applicability == () and z.exempt == frozenset()


def test_every_property() -> None:
    props: dict[str, Any] = {
        "name": "Stadium", "restriction": "REQ_AUTHORISATION", "lower_limit": 100,
        "lower_reference": "AMSL", "upper_limit": 1500, "upper_reference": "AMSL",
        "unit": "ft", "exempt": ["icao:4840D6", "rid:MFG1A0123456789"],
        "authority": "Police", "reason": "EMERGENCY", "message": "Match day",
        "extra": {"colour": "red"},
        "applicability": [{"start": "2025-06-01T00:00", "end": None,
                           "timezone": "Europe/Zurich",
                           "schedule": [{"days": ["SAT"], "start": "18:00", "end": "23:30"}]}]}
    [z], problems = parse(feature(**props))
    assert problems == []
    assert z.restriction is Restriction.AUTHORISATION_REQUIRED
    assert z.volumes[0].lower == Limit(pytest.approx(30.48), HeightReference.AMSL)  # type: ignore[arg-type]
    assert z.volumes[0].upper.height_m == pytest.approx(457.2)
    assert z.exempt == {"icao:4840D6", "rid:MFG1A0123456789"}
    assert (z.authority, z.reason, z.message) == ("Police", ("EMERGENCY",), "Match day")
    assert z.extra == {"colour": "red"}
    [a] = z.applicability
    assert a.start_t == t("2025-05-31T22:00:00+00:00")  # local midnight, summer time
    assert a.end_t is None and a.timezone == "Europe/Zurich"
    assert z.in_force(t("2025-06-07T17:00:00+00:00"))  # Saturday 19:00 in Zurich
    assert not z.in_force(t("2025-06-07T22:00:00+00:00"))  # Sunday 00:00 in Zurich


def test_features_sharing_an_id_are_one_zone() -> None:
    circle = {"type": "Point", "coordinates": [8.5, 47.4]}
    zones, problems = parse(feature("A", upper_limit=50), feature("B"),
                            feature("A", circle, radius_m=300, lower_limit=50, upper_limit=100))
    assert problems == []
    a, b = zones
    assert (a.id, b.id) == ("A", "B") and len(a.volumes) == 2
    assert a.volumes[1].shape == Circle(8.5, 47.4, 300.0)
    assert a.volumes[1].lower == Limit(50.0, AGL)


def test_features_of_one_zone_must_agree() -> None:
    zones, [p] = parse(feature("A"), feature("A", name="other", message="x"), feature("B"))
    assert [z.id for z in zones] == ["B"]
    assert p.zone == "A" and p.field == "features[1].properties"
    assert "name, message differ" in p.problem


def test_multipolygon_and_holes() -> None:
    hole = [[8.004, 47.004], [8.006, 47.004], [8.006, 47.006], [8.004, 47.004]]
    shifted = [[x + 1, y] for x, y in RING]
    [z], problems = parse(feature(geometry={"type": "MultiPolygon",
                                            "coordinates": [[RING, hole], [shifted]]}))
    assert problems == [] and len(z.volumes) == 2
    assert len(z.volumes[0].shape.rings) == 2  # type: ignore[union-attr]


def test_null_limits() -> None:
    [z], _ = parse(feature(lower_limit=None, upper_limit=None))
    assert (z.volumes[0].lower.height_m, z.volumes[0].upper.height_m) == (-math.inf, math.inf)


@pytest.mark.parametrize(("props", "field", "text"), [
    ({"upper_limt": 120}, "upper_limt", "unknown property"),
    ({"restriction": "forbidden"}, "restriction", "is not a restriction"),
    ({"restriction": None}, "restriction", "has no restriction"),
    ({"upper_limit": "120"}, "upper_limit", "is not a number"),
    ({"upper_reference": "MSL"}, "upper_reference", "is not a height reference"),
    ({"unit": "yd"}, "unit", "is not a unit"),
    ({"exempt": ["icao:4840d6"]}, "exempt[0]", "is not an identity"),
    ({"exempt": "icao:4840D6"}, "exempt", "is not a list"),
    ({"radius_m": 5}, "radius_m", "is for a Point"),
    ({"applicability": [{"timezone": "Mars/Base"}]}, "applicability[0].timezone",
     "unknown time zone"),
    ({"applicability": [{"schedule": [{"days": ["MON"], "start": "08:00Z"}]}]},
     "applicability[0].schedule[0].start", "carries a time zone"),
    ({"applicability": [{"schedule": [{"start": "08:00"}]}]},
     "applicability[0].schedule[0].days", "has no days"),
    ({"applicability": [{"begin": "2025-01-01T00:00:00Z"}]}, "applicability[0].begin",
     "unknown member"),
    ({"reason": [1]}, "reason[0]", "is not a string"),
])
def test_property_problems(props: dict[str, Any], field: str, text: str) -> None:
    zones, [p] = parse(feature("BAD", **props), feature("GOOD"))
    assert [z.id for z in zones] == ["GOOD"]
    assert p.zone == "BAD" and p.field == f"features[0].properties.{field}"
    assert text in p.problem, p.problem
    assert p.fix


def test_bad_input_that_check_zone_finds() -> None:
    open_ring = feature("OPEN")
    open_ring["geometry"]["coordinates"][0][-1] = [8.0, 47.001]
    bow = feature("BOW", geometry={"type": "Polygon", "coordinates": [[
        [8.0, 47.0], [8.01, 47.01], [8.01, 47.0], [8.0, 47.01], [8.0, 47.0]]]})
    inverted = feature("INV", lower_limit=200, upper_limit=100)
    window = feature("WIN", applicability=[{"start": "2025-02-01T00:00:00Z",
                                            "end": "2025-01-01T00:00:00Z"}])
    zones, problems = parse(open_ring, bow, inverted, window, feature("OK"))
    assert [z.id for z in zones] == ["OK"]
    assert [p.zone for p in problems] == ["OPEN", "BOW", "INV", "WIN"]


def test_the_document_shape() -> None:
    assert parse_geojson([], file=None)[1][0].problem.endswith("not an object")
    [p] = parse_geojson({"type": "Feature"}, file="f.json")[1]
    assert p.field == "type" and "FeatureCollection" in str(p.fix)
    [p] = parse_geojson({"type": "FeatureCollection"}, file=None)[1]
    assert p.field == "features"
    [], problems = parse(["x"], {"type": "Feature", "properties": {}})  # type: ignore[arg-type]
    assert [p.field for p in problems] == ["features[0]", "features[1].properties.id"]
    [], [p] = parse(feature(geometry={"type": "LineString", "coordinates": RING}))
    assert p.field == "features[0].geometry.type"


def test_the_written_form() -> None:
    z = Zone(id="Z", name="n", restriction=Restriction.CONDITIONAL,
             volumes=(Volume(Circle(8.5, 47.4, 250.0), Limit(-math.inf, AGL),
                             Limit(math.inf, HeightReference.WGS84)),),
             applicability=(Applicability(start_t=t("2025-06-01T00:00:00+00:00"),
                                          daily=(DailyPeriod(frozenset(range(7)), 0.0,
                                                             86400.0),)),),
             reason=("NOISE",))
    [f] = to_geojson([z])["features"]
    assert f["geometry"] == {"type": "Point", "coordinates": [8.5, 47.4]}
    assert f["properties"] == {
        "id": "Z", "name": "n", "restriction": "conditional", "reason": ["NOISE"],
        "applicability": [{"start": "2025-06-01T00:00:00Z", "timezone": "UTC",
                           "schedule": [{"days": ["ANY"], "start": "00:00", "end": "24:00"}]}],
        "lower_limit": None, "lower_reference": "AGL", "upper_limit": None,
        "upper_reference": "WGS84", "unit": "m", "radius_m": 250.0}
    with pytest.raises(ZoneError, match="no volume"):
        to_geojson([dataclasses.replace(z, volumes=())])


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.name)
def test_every_real_file_round_trips(path: Path) -> None:
    load = load_zones(path)
    assert load.zones and not load.problems
    text = json.dumps(to_geojson(load.zones), allow_nan=False)
    again, problems = parse_geojson(json.loads(text), file=None)
    assert problems == []
    assert again == [dataclasses.replace(z, source="") for z in load.zones]
    assert [z.extra for z in again] == [z.extra for z in load.zones]


# -- generated zones ---------------------------------------------------------------

lon = st.floats(-179.0, 179.0)
lat = st.floats(-80.0, 80.0)
ref = st.sampled_from(list(HeightReference))


@st.composite
def polygons(draw: st.DrawFn) -> Polygon:
    """Star-shaped around a centre (angles strictly increasing): never self-crossing."""
    cx, cy = draw(lon), draw(lat)
    n = draw(st.integers(3, 8))
    angles = sorted(draw(st.lists(st.floats(0.0, 6.2), min_size=n, max_size=n, unique=True)))
    radii = draw(st.lists(st.floats(0.001, 0.5), min_size=n, max_size=n))
    ring = tuple((cx + r * math.cos(a), cy + r * math.sin(a)) for a, r in zip(angles, radii,
                                                                              strict=True))
    return Polygon(rings=(ring + ring[:1],))


circles = st.builds(Circle, lon, lat, st.floats(0.5, 50_000.0))
heights = st.floats(-500.0, 20_000.0)


@st.composite
def volumes(draw: st.DrawFn) -> Volume:
    shape = draw(st.one_of(polygons(), circles))
    lower = Limit(draw(st.one_of(heights, st.just(-math.inf))), draw(ref))
    upper = Limit(draw(st.one_of(heights, st.just(math.inf))), draw(ref))
    return Volume(shape, lower, upper)


seconds = st.integers(0, 86_400).map(float)
daily = st.builds(DailyPeriod, st.frozensets(st.integers(0, 6), min_size=1), seconds, seconds)
epoch = st.one_of(st.none(), st.integers(0, 4_000_000_000).map(float),
                  st.integers(0, 4_000_000_000_000_000).map(lambda us: us / 1e6))
applicability = st.builds(Applicability, epoch, epoch, st.lists(daily, max_size=3).map(tuple),
                          st.sampled_from(["UTC", "Europe/Zurich", "+01:00", "-05:30",
                                           "America/New_York"]))
identity = st.one_of(st.integers(0, 0xFFFFFF).map(lambda a: f"icao:{a:06X}"),
                     st.from_regex(r"rid:[A-Z0-9]{4,20}", fullmatch=True))
zones = st.builds(
    Zone,
    id=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=1, max_size=10),
    name=st.text(max_size=20),
    restriction=st.sampled_from(list(Restriction)),
    volumes=st.lists(volumes(), min_size=1, max_size=3).map(tuple),
    applicability=st.lists(applicability, max_size=2).map(tuple),
    exempt=st.frozensets(identity, max_size=3),
    authority=st.text(max_size=10),
    reason=st.lists(st.text(max_size=10), max_size=3).map(tuple),
    message=st.text(max_size=20),
    extra=st.dictionaries(st.text(max_size=5), st.one_of(st.integers(-10, 10), st.text(max_size=5)),
                          max_size=2),
).filter(lambda z: not check_zone(z))


@settings(max_examples=200, deadline=None)
@given(st.lists(zones, max_size=4, unique_by=lambda z: z.id))
def test_generated_zones_round_trip(generated: list[Zone]) -> None:
    text = json.dumps(to_geojson(generated), allow_nan=False)
    again, problems = parse_geojson(json.loads(text), file=None)
    assert problems == []
    assert again == generated
    assert [z.extra for z in again] == [z.extra for z in generated]
