"""ED-318: the official examples and the Swiss sample, the schema errors and the mapping."""

from __future__ import annotations

import copy
import json
import math
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from skyfence.zones.ed318 import parse_ed318, validator
from skyfence.zones.model import (
    Circle,
    HeightReference,
    Limit,
    Polygon,
    Restriction,
    ZoneError,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "zones"
EXAMPLES = DATA / "ed318" / "examples"
AGL = HeightReference.AGL


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def t(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def fields_of(problems: list[ZoneError]) -> list[str | None]:
    return [p.field for p in problems]


def circle_doc() -> dict[str, Any]:
    return load(EXAMPLES / "Example_GeoZone_Circle.json")  # type: ignore[no-any-return]


def polygon_feature(ident: str, **layer: Any) -> dict[str, Any]:
    feature: dict[str, Any] = copy.deepcopy(circle_doc()["features"][0])
    feature["properties"]["identifier"] = ident
    feature["geometry"] = {
        "type": "Polygon",
        "coordinates": [[[8.0, 47.0], [8.01, 47.0], [8.01, 47.01], [8.0, 47.01], [8.0, 47.0]]],
        "layer": {"upper": 120, "upperReference": "AGL", "lower": 0, "lowerReference": "AGL",
                  **layer}}
    return feature


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def test_the_swiss_sample() -> None:
    zones, problems = parse_ed318(load(DATA / "interuss_cis_source_sample_ed318.json"),
                                  file="ch.json")
    assert problems == []
    assert [z.id for z in zones] == ["LSZB003", "BLns058", "LSTB002"]
    bern = zones[0]
    assert bern.name == "LSZB Bern-Belp 2"
    assert zones[1].name == "Protected natural object Langmatt"  # the en-GB text
    assert {z.restriction for z in zones} == {Restriction.AUTHORISATION_REQUIRED}
    [v] = bern.volumes
    assert (v.lower, v.upper) == (Limit(60.0, AGL), Limit(99999.0, AGL))
    assert isinstance(v.shape, Polygon) and len(v.shape.rings[0]) == 28
    assert v.shape.rings[0][0] == (7.4355068, 46.9402526)
    assert bern.authority == "Skyguide"
    assert bern.reason == ("AIR_TRAFFIC",)
    assert bern.applicability == ()
    assert bern.source == "ch.json (ed318)"
    assert bern.extra["extendedProperties"] == {
        "addInfo": "Exemption permits may be applied for at the competent authority."}
    assert bern.extra["country"] == "CHE"
    assert "weighing more than 250 g" in str(bern.extra["restrictionConditions"])


def test_the_collection_example_and_its_schedule() -> None:
    zones, problems = parse_ed318(load(EXAMPLES / "Example_Collection.json"), file=None)
    assert problems == []
    layered, circle = zones
    assert (layered.id, circle.id) == ("NFZ6547", "ABC1234")
    assert layered.restriction is Restriction.AUTHORISATION_REQUIRED
    assert circle.restriction is Restriction.PROHIBITED
    assert [(v.lower.height_m, v.upper.height_m) for v in layered.volumes] == [(50, 150), (0, 50)]
    [a] = layered.applicability
    assert (a.start_t, a.end_t, a.timezone) == (t("2018-12-31T15:59:59+00:00"),
                                               t("2019-12-31T15:59:59+00:00"), "UTC")
    assert [(sorted(p.days), p.start_s, p.end_s) for p in a.daily] == [
        (list(range(7)), 16 * 3600, 17 * 3600), ([6], 10 * 3600, 12 * 3600)]
    assert layered.in_force(t("2019-06-03T16:30:00+00:00"))  # any day 16–17 UTC
    assert not layered.in_force(t("2019-06-03T15:30:00+00:00"))
    assert layered.in_force(t("2019-06-02T11:00:00+00:00"))  # a Sunday 10–12
    assert not layered.in_force(t("2019-06-03T11:00:00+00:00"))  # a Monday
    assert not layered.in_force(t("2020-06-03T16:30:00+00:00"))  # after the window
    other = layered.extra["otherReasonInfo"]
    assert isinstance(other, list) and other[0]["text"] == "Flying Whales - part 2"


def test_the_two_layer_example_is_one_zone_with_two_volumes() -> None:
    [z], problems = parse_ed318(load(EXAMPLES / "Example_GeoZone_2_Layers.json"), file=None)
    assert problems == []
    upper, lower = z.volumes
    assert (upper.lower, upper.upper) == (Limit(50.0, AGL), Limit(150.0, AGL))
    assert (lower.lower, lower.upper) == (Limit(0.0, AGL), Limit(50.0, AGL))
    assert isinstance(lower.shape, Polygon) and len(lower.shape.rings[0]) == 4
    assert z.name == "LFPG-2" and z.reason == ("AIR_TRAFFIC", "OTHER")


def test_the_circle_example() -> None:
    [z], problems = parse_ed318(circle_doc(), file=None)
    assert problems == []
    [v] = z.volumes
    assert v.shape == Circle(lon_deg=2.636866, lat_deg=50.122901, radius_m=3500.0)
    assert (v.lower, v.upper) == (Limit(50.0, AGL), Limit(150.0, AGL))
    assert z.authority == "LFPG-UASZoneManager"


def test_extended_properties_are_kept() -> None:
    [z], problems = parse_ed318(load(EXAMPLES / "Example_GeoZone_with_extension.json"),
                                file=None)
    assert problems == []
    assert z.extra["extendedProperties"] == {"airspaceColour": "red"}


def test_the_invalid_example_is_rejected_with_what_is_wrong() -> None:
    zones, problems = parse_ed318(load(EXAMPLES / "InvalidExample_GeoZone_2_Layers.json"),
                                  file="bad.json")
    assert zones == []
    assert fields_of(problems) == ["metadata.validFrom", "features[0].properties.name[0].lang",
                                   "features[0].properties.type"]
    valid_from, lang, kind = problems
    assert valid_from.zone is None and "is not a string" in valid_from.problem
    assert "rejects the whole file" in str(valid_from.fix)
    assert lang.zone == kind.zone == "NFZ6547"
    assert "'lang' is missing" in lang.problem
    assert "'REQ_AUTHORISATION' is not an ED-318 zone type" in kind.problem
    assert "REQ_AUTHORIZATION" in str(kind.fix)
    assert str(kind).startswith("bad.json, zone 'NFZ6547', field 'features[0].properties.type'")


def test_the_partial_examples_fit_into_a_collection() -> None:
    feature = load(EXAMPLES / "PartialExample_featureGeoJSON.json")
    [z], problems = parse_ed318(collection(feature), file=None)
    assert problems == [] and z.id == "NFZ6547" and len(z.volumes) == 2

    shell = polygon_feature("X")
    shell["properties"] = load(EXAMPLES / "PartialExample_GeoZoneProperties.json")
    shell["properties"]["limitedApplicability"] = [
        load(EXAMPLES / "PartialExample_TimePeriod.json")]
    shell["properties"]["zoneAuthority"] = [load(EXAMPLES / "PartialExample_ZoneAuthority.json")]
    [z], problems = parse_ed318(collection(shell), file=None)
    assert problems == []
    assert z.id == "NFZ6547" and z.authority == " Civil Aviation Authority"
    [a] = z.applicability
    assert a.start_t == t("2023-10-29T00:00:00+00:00") and len(a.daily) == 2


def test_a_fragment_alone_is_not_a_collection() -> None:
    zones, problems = parse_ed318(load(EXAMPLES / "PartialExample_TimePeriod.json"), file=None)
    assert zones == [] and {"type", "features"} <= set(fields_of(problems))


def test_one_bad_feature_does_not_stop_the_others() -> None:
    bad = polygon_feature("BAD1", upperReference="SFC")
    doc = collection(polygon_feature("GOOD1"), bad, polygon_feature("GOOD2"))
    zones, problems = parse_ed318(doc, file=None)
    assert [z.id for z in zones] == ["GOOD1", "GOOD2"]
    [p] = problems
    assert (p.zone, p.field) == ("BAD1", "features[1].geometry.layer.upperReference")
    assert "'SFC' is not one of AGL, AMSL, WGS84" in p.problem


def test_a_metadata_error_rejects_the_file_but_lists_every_problem() -> None:
    doc = collection(polygon_feature("GOOD1"), polygon_feature("BAD1", uom="yards"))
    doc["metadata"] = {"validTo": "next tuesday"}
    zones, problems = parse_ed318(doc, file=None)
    assert zones == []
    assert fields_of(problems) == ["metadata.validTo", "features[1].geometry.layer.uom"]
    assert "is not a valid date-time" in problems[0].problem


def test_feet_are_converted_once() -> None:
    [z], problems = parse_ed318(collection(polygon_feature("FT", upper=400, lower=100,
                                                           uom="ft")), file=None)
    assert problems == []
    assert z.volumes[0].upper.height_m == pytest.approx(121.92)
    assert z.volumes[0].lower.height_m == pytest.approx(30.48)


def test_missing_limits_are_the_ground_and_no_ceiling() -> None:
    f = polygon_feature("OPEN")
    f["geometry"]["layer"] = {}
    g = polygon_feature("NOLAYER")
    del g["geometry"]["layer"]
    zones, problems = parse_ed318(collection(f, g), file=None)
    assert problems == []
    for z in zones:
        assert (z.volumes[0].lower, z.volumes[0].upper) == (Limit(0.0, AGL), Limit(math.inf, AGL))


def test_a_limit_without_its_reference_is_refused() -> None:
    f = polygon_feature("NOREF")
    del f["geometry"]["layer"]["upperReference"]
    [], [p] = parse_ed318(collection(f), file=None)
    assert p.field == "features[0].geometry.layer.upperReference"


def test_multipolygon_gives_one_volume_per_polygon() -> None:
    f = polygon_feature("MULTI")
    ring = f["geometry"]["coordinates"]
    shifted = [[[x + 1, y] for x, y in ring[0]]]
    f["geometry"] = {"type": "MultiPolygon", "coordinates": [ring, shifted],
                     "layer": {"upper": 300, "upperReference": "AMSL"}}
    [z], problems = parse_ed318(collection(f), file=None)
    assert problems == [] and len(z.volumes) == 2
    assert z.volumes[1].upper == Limit(300.0, HeightReference.AMSL)
    assert z.volumes[1].lower == Limit(0.0, AGL)


def test_uspace_reads_as_conditional() -> None:
    f = polygon_feature("USP1")
    f["properties"]["type"] = "USPACE"
    [z], _ = parse_ed318(collection(f), file=None)
    assert z.restriction is Restriction.CONDITIONAL and z.extra["type"] == "USPACE"


def test_offsets_give_the_period_its_time_zone() -> None:
    f = polygon_feature("TZ1")
    f["properties"]["limitedApplicability"] = [{"schedule": [
        {"day": ["MON", "TUE"], "startTime": "08:00:00+01:00", "endTime": "18:00:00+01:00"}]}]
    [z], problems = parse_ed318(collection(f), file=None)
    assert problems == []
    [a] = z.applicability
    assert a.timezone == "+01:00" and a.daily[0].start_s == 8 * 3600
    assert z.in_force(t("2025-06-02T07:30:00+00:00"))  # Monday 08:30 at +01:00
    assert not z.in_force(t("2025-06-02T06:30:00+00:00"))


def test_schedule_problems_are_named() -> None:
    cases = [
        ({"day": ["MON"], "startTime": "08:00:00+01:00", "endTime": "18:00:00Z"},
         "limitedApplicability[0].schedule", "different time zones"),
        ({"day": ["MON"], "startEvent": "SR", "endTime": "18:00:00Z"},
         "limitedApplicability[0].schedule[0].startEvent", "not supported yet"),
        ({"day": ["MON"], "startTime": "8:00", "endTime": "18:00:00Z"},
         "limitedApplicability[0].schedule[0].startTime", "is not a valid time"),
        ({"day": ["FUNDAY"]}, "limitedApplicability[0].schedule[0].day[0]",
         "is not one of MON"),
    ]
    for daily, field, text in cases:
        f = polygon_feature("S1")
        f["properties"]["limitedApplicability"] = [{"schedule": [daily]}]
        [], [p] = parse_ed318(collection(f), file=None)
        assert p.field == f"features[0].properties.{field}", daily
        assert text in p.problem, (daily, p.problem)


def test_a_window_ending_before_it_starts() -> None:
    f = polygon_feature("W1")
    f["properties"]["limitedApplicability"] = [{"startDateTime": "2025-02-01T00:00:00Z",
                                                "endDateTime": "2025-01-01T00:00:00Z"}]
    [], [p] = parse_ed318(collection(f), file=None)
    assert p.zone == "W1" and "ends (2025-01-01T00:00:00Z) before it starts" in p.problem


def test_shapes_without_area_and_unknown_geometry_types() -> None:
    line = polygon_feature("L1")
    line["geometry"] = {"type": "LineString", "coordinates": [[8, 47], [9, 47]]}
    circle = polygon_feature("C1")
    circle["geometry"] = {"type": "Circle", "coordinates": [8, 47]}
    point = polygon_feature("P1")
    point["geometry"] = {"type": "Point", "coordinates": [8, 47]}
    _, problems = parse_ed318(collection(line, circle, point), file=None)
    assert fields_of(problems) == ["features[0].geometry.type", "features[1].geometry",
                                   "features[2].geometry.extent"]
    assert "has no area" in problems[0].problem
    assert "'Circle' is not allowed" in problems[1].problem
    assert "MultiPolygon" in str(problems[1].fix)
    assert "extent" in problems[2].problem


def test_geometry_errors_from_check_zone() -> None:
    open_ring = polygon_feature("OPEN1")
    open_ring["geometry"]["coordinates"][0][-1] = [8.0, 47.005]
    bow = polygon_feature("BOW1")
    bow["geometry"]["coordinates"] = [[[8.0, 47.0], [8.01, 47.01], [8.01, 47.0], [8.0, 47.01],
                                       [8.0, 47.0]]]
    inverted = polygon_feature("INV1", lower=200, upper=100)
    zones, problems = parse_ed318(collection(open_ring, bow, inverted), file=None)
    assert zones == []
    assert [p.zone for p in problems] == ["OPEN1", "BOW1", "INV1"]
    assert "does not close" in problems[0].problem
    assert "Self-intersection" in problems[1].problem
    assert "is not below the upper" in problems[2].problem


def test_unknown_properties_and_long_identifiers() -> None:
    f = polygon_feature("LONGIDENTIFIER")
    f["properties"]["colour"] = "red"
    [], problems = parse_ed318(collection(f), file=None)
    assert fields_of(problems) == ["features[0].properties.colour",
                                   "features[0].properties.identifier"]
    assert "extendedProperties" in str(problems[0].fix)


def test_not_an_object_and_null_members() -> None:
    [], problems = parse_ed318([1, 2], file=None)
    assert problems and all("whole file" in str(p.fix) for p in problems)
    f = polygon_feature("N1")
    f["geometry"] = None
    g = polygon_feature("N2")
    g["properties"] = None
    [], problems = parse_ed318(collection(f, g), file=None)
    assert fields_of(problems) == ["features[0].geometry", "features[1].properties"]


def test_the_schema_ships_with_the_package_and_checks_formats() -> None:
    folder = resources.files("skyfence.zones") / "schema" / "ed318"
    names = sorted(p.name for p in folder.iterdir())
    assert "LICENSE" in names and "README.md" in names
    assert len([n for n in names if n.startswith("Schema_")]) == 8
    checker = validator().format_checker
    assert checker.conforms("2018-12-31T15:59:59Z", "date-time")
    assert not checker.conforms("2018-12-31", "date-time")
    assert checker.conforms("16:00:00Z", "time")
    assert not checker.conforms("16:00:00", "time")
