"""ED-269: the InterUSS sample, and the variations real files have."""

from __future__ import annotations

import copy
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from skyfence.zones.ed269 import parse_ed269
from skyfence.zones.model import (
    Circle,
    HeightReference,
    Limit,
    Polygon,
    Restriction,
    ZoneError,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "zones"
AGL = HeightReference.AGL
AMSL = HeightReference.AMSL


def t(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def sample() -> dict[str, Any]:
    return json.loads((DATA / "interuss_cis_source_sample_ed269.json").read_text())  # type: ignore[no-any-return]


def zone_item(ident: str = "Z1", **geometry: Any) -> dict[str, Any]:
    item: dict[str, Any] = copy.deepcopy(sample()["UASZoneList"][0])
    item["identifier"] = ident
    item["geometry"][0].update(geometry)
    return item


def doc(*items: dict[str, Any], key: str = "UASZoneList") -> dict[str, Any]:
    return {key: list(items)}


def fields_of(problems: list[ZoneError]) -> list[str | None]:
    return [p.field for p in problems]


def test_the_interuss_sample() -> None:
    [z], problems = parse_ed269(sample(), file="cis.json")
    assert problems == []
    assert (z.id, z.name) == ("LSXX", "LSXX City Sample")
    assert z.restriction is Restriction.AUTHORISATION_REQUIRED
    [v] = z.volumes
    assert v.lower == Limit(0.0, AGL)  # "0" as a string
    assert v.upper == Limit(math.inf, AGL)  # upperLimit: null
    assert isinstance(v.shape, Polygon)
    assert v.shape.rings[0][0] == (6.166485701899006, 46.217024450605436)  # lon first
    assert z.applicability == ()  # permanent YES with a placeholder dailyPeriod
    assert z.in_force(0.0)
    assert z.reason == ("AIR_TRAFFIC",) and z.message == "MSG01"
    assert z.authority == "LSXX City Sample"
    assert z.source == "cis.json (ed269)"
    assert z.extra["country"] == "CHE" and z.extra["restrictionConditions"] == "RST02"


def test_features_instead_of_uaszonelist_and_the_z_spelling() -> None:
    item = zone_item()
    item["restriction"] = "REQ_AUTHORIZATION"
    [z], problems = parse_ed269(doc(item, key="features"), file=None)
    assert problems == [] and z.restriction is Restriction.AUTHORISATION_REQUIRED


def test_feet_and_numbers_as_strings() -> None:
    item = zone_item(uomDimensions="FT", lowerLimit="100", upperLimit=" 400.5 ",
                     lowerVerticalReference="AMSL", upperVerticalReference="AMSL")
    [z], problems = parse_ed269(doc(item), file=None)
    assert problems == []
    assert z.volumes[0].lower == Limit(pytest.approx(30.48), AMSL)  # type: ignore[arg-type]
    assert z.volumes[0].upper.height_m == pytest.approx(400.5 * 0.3048)


def test_a_null_lower_limit_is_the_ground() -> None:
    [z], _ = parse_ed269(doc(zone_item(lowerLimit=None, upperLimit=120,
                                       lowerVerticalReference="AMSL")), file=None)
    assert z.volumes[0].lower == Limit(0.0, AGL)
    assert z.volumes[0].upper == Limit(120.0, AGL)


def test_circles_are_longitude_first_and_take_the_unit() -> None:
    item = zone_item(uomDimensions="FT", horizontalProjection={
        "type": "Circle", "center": [8.5492, 47.4582], "radius": "1000"})
    [z], problems = parse_ed269(doc(item), file=None)
    assert problems == []
    assert z.volumes[0].shape == Circle(lon_deg=8.5492, lat_deg=47.4582,
                                        radius_m=pytest.approx(304.8))  # type: ignore[arg-type]


def test_a_swapped_centre_is_refused_when_it_shows() -> None:
    item = zone_item(horizontalProjection={"type": "Circle", "center": [-33.9, 151.2],
                                           "radius": 500})
    [], [p] = parse_ed269(doc(item), file=None)
    assert p.field == "UASZoneList[0].geometry[0].horizontalProjection.center"
    assert "looks like [latitude, longitude]" in p.problem


def test_strings_that_are_not_numbers() -> None:
    [], [p] = parse_ed269(doc(zone_item(upperLimit="120m")), file="z.json")
    assert p.field == "UASZoneList[0].geometry[0].upperLimit"
    assert p.zone == "Z1" and "'120m' is not a number" in p.problem
    assert str(p).startswith("z.json, zone 'Z1', field 'UASZoneList[0].geometry[0].upperLimit'")


def test_every_problem_of_a_zone_is_listed() -> None:
    item = zone_item(lowerLimit="low", lowerVerticalReference="SFC", uomDimensions="yd",
                     upperLimit=100)
    item["restriction"] = "FORBIDDEN"
    [], problems = parse_ed269(doc(item), file=None)
    assert fields_of(problems) == ["UASZoneList[0].restriction",
                                   "UASZoneList[0].geometry[0].lowerLimit"]
    item = zone_item(uomDimensions="yd", upperLimit=100)
    [], [p] = parse_ed269(doc(item), file=None)
    assert p.field == "UASZoneList[0].geometry[0].uomDimensions" and "M" in str(p.fix)
    item = zone_item(lowerLimit=10, lowerVerticalReference="SFC", upperLimit=100)
    [], [p] = parse_ed269(doc(item), file=None)
    assert p.field == "UASZoneList[0].geometry[0].lowerVerticalReference"
    assert "'SFC' is not a vertical reference" in p.problem


def test_a_unit_is_needed_only_when_a_limit_is_given() -> None:
    item = zone_item(upperLimit=100)
    del item["geometry"][0]["uomDimensions"]
    [], [p] = parse_ed269(doc(item), file=None)
    assert p.field == "UASZoneList[0].geometry[0].uomDimensions"
    item = zone_item()
    del item["geometry"][0]["uomDimensions"]
    [_], problems = parse_ed269(doc(item), file=None)
    assert problems == []


def test_one_bad_zone_does_not_stop_the_others() -> None:
    bad = zone_item("BAD", lowerLimit="200", upperLimit="100")
    zones, problems = parse_ed269(doc(zone_item("A"), bad, zone_item("B")), file=None)
    assert [z.id for z in zones] == ["A", "B"]
    [p] = problems
    assert p.zone == "BAD" and "is not below the upper limit" in p.problem


def test_geometry_problems() -> None:
    open_ring = zone_item("OPEN")
    open_ring["geometry"][0]["horizontalProjection"]["coordinates"][0].pop()
    bow = zone_item("BOW", horizontalProjection={"type": "Polygon", "coordinates": [[
        [8.0, 47.0], [8.01, 47.01], [8.01, 47.0], [8.0, 47.01], [8.0, 47.0]]]})
    unknown = zone_item("UNK", horizontalProjection={"type": "Ellipse"})
    empty = zone_item("EMPTY")
    empty["geometry"] = []
    _, problems = parse_ed269(doc(open_ring, bow, unknown, empty), file=None)
    assert [p.zone for p in problems] == ["OPEN", "BOW", "UNK", "EMPTY"]
    assert "does not close" in problems[0].problem
    assert "Self-intersection" in problems[1].problem
    assert problems[2].field == "UASZoneList[2].geometry[0].horizontalProjection.type"
    assert "has no geometry" in problems[3].problem


def schedule_item(period: dict[str, Any]) -> dict[str, Any]:
    item = zone_item("S1")
    item["applicability"] = [period]
    return item


def test_a_schedule_with_permanent_no() -> None:
    period = {"permanent": "NO", "startDateTime": "2025-06-01T00:00:00Z",
              "endDateTime": "2025-07-01T00:00:00Z",
              "schedule": [{"day": ["SAT", "SUN"], "startTime": "08:00:00.00Z",
                            "endTime": "20:00:00.00Z"}]}
    [z], problems = parse_ed269(doc(schedule_item(period)), file=None)
    assert problems == []
    [a] = z.applicability
    assert a.timezone == "UTC" and sorted(a.daily[0].days) == [5, 6]
    assert (a.daily[0].start_s, a.daily[0].end_s) == (8 * 3600, 20 * 3600)
    assert z.in_force(t("2025-06-07T12:00:00+00:00"))  # Saturday
    assert not z.in_force(t("2025-06-09T12:00:00+00:00"))  # Monday
    assert not z.in_force(t("2025-07-05T12:00:00+00:00"))  # after the window


def test_daily_periods_under_dailyperiod_with_an_offset() -> None:
    period = {"permanent": "NO", "dailyPeriod": [{"day": ["ANY"], "startTime": "22:00+01:00",
                                                  "endTime": "06:00+01:00"}]}
    [z], problems = parse_ed269(doc(schedule_item(period)), file=None)
    assert problems == []
    [a] = z.applicability
    assert a.timezone == "+01:00"
    assert z.in_force(t("2025-06-02T22:30:00+00:00"))  # 23:30 at +01:00
    assert not z.in_force(t("2025-06-02T12:00:00+00:00"))


def test_placeholders_are_every_day_only_when_permanent() -> None:
    placeholder: dict[str, Any] = {"day": [], "startTime": None, "endTime": None}
    [z], problems = parse_ed269(doc(schedule_item(
        {"permanent": "YES", "dailyPeriod": [placeholder]})), file=None)
    assert problems == [] and z.applicability == ()
    [], problems = parse_ed269(doc(schedule_item(
        {"permanent": "NO", "dailyPeriod": [placeholder]})), file=None)
    assert fields_of(problems) == ["UASZoneList[0].applicability[0].dailyPeriod[0].day"]
    assert "permanent" in str(problems[0].fix)


def test_permanent_yes_that_a_schedule_would_limit_is_a_contradiction() -> None:
    period = {"permanent": "YES", "schedule": [{"day": ["MON"], "startTime": "08:00:00Z",
                                                "endTime": "18:00:00Z"}]}
    [], [p] = parse_ed269(doc(schedule_item(period)), file=None)
    assert p.field == "UASZoneList[0].applicability[0].permanent"
    assert "permanent is YES" in p.problem


def test_permanent_yes_between_dates() -> None:
    period = {"permanent": "YES", "startDateTime": "2025-06-01T00:00:00",
              "endDateTime": "2025-06-02T00:00:00Z"}
    [z], problems = parse_ed269(doc(schedule_item(period)), file=None)
    assert problems == []
    [a] = z.applicability
    assert a.start_t == t("2025-06-01T00:00:00+00:00") and a.daily == ()  # no offset: UTC


def test_applicability_problems() -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"permanent": "NO"}, "applicability[0].permanent", "neither dates nor daily"),
        ({"permanent": "MAYBE"}, "applicability[0].permanent", "is not YES or NO"),
        ({"permanent": "NO", "startDateTime": "2025-02-01T00:00:00Z",
          "endDateTime": "2025-01-01T00:00:00Z"}, "applicability[0].end", "before it starts"),
        ({"permanent": "NO", "startDateTime": "yesterday"},
         "applicability[0].startDateTime", "is not a date-time"),
        ({"permanent": "NO", "schedule": [{"day": ["MON"], "startTime": "08:00Z",
                                           "endTime": None}]},
         "applicability[0].schedule[0].endTime", "has no endTime"),
        ({"permanent": "NO", "schedule": [{"day": ["MON"], "startTime": "08:00Z",
                                           "endTime": "18:00+02:00"}]},
         "applicability[0]", "different time zones"),
        ({"permanent": "NO", "schedule": [{"day": ["MON"], "startTime": "25:00",
                                           "endTime": "18:00"}]},
         "applicability[0].schedule[0].startTime", "is not a time of day"),
    ]
    for period, field, text in cases:
        [], [p] = parse_ed269(doc(schedule_item(period)), file=None)
        assert p.field in (f"UASZoneList[0].{field}", field), (period, p.field)
        assert text in p.problem, (period, p.problem)


def test_the_document_shape() -> None:
    assert "not an object" in parse_ed269([], file=None)[1][0].problem
    assert parse_ed269({"UASZoneList": {}}, file=None)[1][0].field == "UASZoneList"
    [], [p] = parse_ed269(doc(["not a zone"]), file=None)  # type: ignore[arg-type]
    assert p.field == "UASZoneList[0]" and p.zone is None
    item = zone_item()
    del item["identifier"]
    [], problems = parse_ed269(doc(item), file=None)
    assert fields_of(problems) == ["UASZoneList[0].identifier"]
