"""The zone model: check_zone's problems, and when a schedule is in force."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from skyfence.zones.model import (
    DAY_S,
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
    time_zone,
)

AGL = HeightReference.AGL
SQUARE = Polygon(rings=(((8.0, 47.0), (8.01, 47.0), (8.01, 47.01), (8.0, 47.01), (8.0, 47.0)),))


def t(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def zone(**kw: object) -> Zone:
    base: dict[str, object] = {
        "id": "Z1", "name": "test", "restriction": Restriction.PROHIBITED,
        "volumes": (Volume(SQUARE, Limit(0.0, AGL), Limit(120.0, AGL)),)}
    base.update(kw)
    return Zone(**base)  # type: ignore[arg-type]


def fields_of(problems: list[ZoneError]) -> list[str | None]:
    return [p.field for p in problems]


def test_a_sound_zone_has_no_problem() -> None:
    assert check_zone(zone()) == []
    circle = Volume(Circle(8.5, 47.4, 500.0), Limit(0.0, AGL), Limit(math.inf, AGL))
    assert check_zone(zone(volumes=(circle,))) == []


def test_an_unclosed_ring_is_named() -> None:
    ring = (*SQUARE.rings[0][:-1], (8.0, 47.001))
    [p] = check_zone(zone(volumes=(Volume(Polygon((ring,)), Limit(0.0, AGL),
                                          Limit(120.0, AGL)),)), file="z.json")
    assert "does not close" in str(p) and "z.json" in str(p) and "zone 'Z1'" in str(p)
    assert "repeat the first point" in str(p)


def test_a_bow_tie_is_not_a_valid_polygon() -> None:
    bow = ((8.0, 47.0), (8.01, 47.01), (8.01, 47.0), (8.0, 47.01), (8.0, 47.0))
    [p] = check_zone(zone(volumes=(Volume(Polygon((bow,)), Limit(0.0, AGL),
                                          Limit(120.0, AGL)),)))
    assert "not valid" in p.problem and "Self-intersection" in p.problem
    assert "self-intersection" in (p.fix or "")


def test_lower_above_upper_and_a_backward_window() -> None:
    bad = zone(volumes=(Volume(SQUARE, Limit(150.0, AGL), Limit(120.0, AGL)),),
               applicability=(Applicability(start_t=t("2025-06-02T00:00:00+00:00"),
                                            end_t=t("2025-06-01T00:00:00+00:00")),))
    problems = check_zone(bad)
    assert fields_of(problems) == ["geometry.lower", "applicability[0].end"]
    assert "150 m AGL" in problems[0].problem
    assert "ends (2025-06-01T00:00:00Z) before it starts" in problems[1].problem


def test_limits_in_different_references_are_not_compared() -> None:
    v = Volume(SQUARE, Limit(500.0, HeightReference.AMSL), Limit(120.0, AGL))
    assert check_zone(zone(volumes=(v,))) == []


def test_schedule_problems() -> None:
    a = Applicability(daily=(DailyPeriod(frozenset(), 0.0, 3600.0),
                             DailyPeriod(frozenset({0}), 3600.0, 3600.0),
                             DailyPeriod(frozenset({0}), -1.0, 3600.0)),
                      timezone="Mars/Olympus")
    got = fields_of(check_zone(zone(applicability=(a,))))
    assert got == ["applicability[0].timezone", "applicability[0].schedule[0].day",
                   "applicability[0].schedule[1]", "applicability[0].schedule[2].startTime"]


def test_circle_problems() -> None:
    v = Volume(Circle(8.5, 97.0, -5.0), Limit(0.0, AGL), Limit(100.0, AGL))
    problems = check_zone(zone(volumes=(v,)))
    assert len(problems) == 2
    assert "radius -5 m is not positive" in problems[0].problem
    assert "not a longitude, latitude pair" in problems[1].problem


def test_no_volume_and_no_id() -> None:
    assert fields_of(check_zone(zone(id="", volumes=()))) == ["id", "geometry"]


def test_time_zone_names() -> None:
    assert time_zone("UTC") is UTC
    assert time_zone("+01:00").utcoffset(None).total_seconds() == 3600  # type: ignore[union-attr]
    assert time_zone("-0530").utcoffset(None).total_seconds() == -19800  # type: ignore[union-attr]
    with pytest.raises(ZoneError, match="unknown time zone"):
        time_zone("Europe/Atlantis")


def test_a_period_over_midnight_belongs_to_the_day_it_starts() -> None:
    # Friday 22:00 to Saturday 02:00 UTC.
    a = Applicability(daily=(DailyPeriod(frozenset({4}), 22 * 3600.0, 2 * 3600.0),))
    assert a.active(t("2025-06-06T23:00:00+00:00"))  # Friday night
    assert a.active(t("2025-06-07T01:59:00+00:00"))  # early Saturday
    assert not a.active(t("2025-06-07T02:00:00+00:00"))
    assert not a.active(t("2025-06-06T21:59:00+00:00"))
    assert not a.active(t("2025-06-07T23:00:00+00:00"))  # Saturday night is not Friday's
    assert not a.active(t("2025-06-06T01:00:00+00:00"))  # nor is early Friday
    assert a.changes_after(t("2025-06-06T12:00:00+00:00")) == t("2025-06-06T22:00:00+00:00")
    assert a.changes_after(t("2025-06-06T23:00:00+00:00")) == t("2025-06-07T02:00:00+00:00")


def test_whole_days_and_the_end_of_day() -> None:
    a = Applicability(daily=(DailyPeriod(frozenset({5, 6}), 0.0, DAY_S),))
    assert a.active(t("2025-06-07T00:00:00+00:00")) and a.active(t("2025-06-08T23:59:59+00:00"))
    assert not a.active(t("2025-06-09T00:00:00+00:00"))


def test_local_times_follow_summer_time_in_zurich() -> None:
    # 08:00–18:00 Zurich time every day; summer time began on 2025-03-30 at 02:00.
    a = Applicability(daily=(DailyPeriod(frozenset(range(7)), 8 * 3600.0, 18 * 3600.0),),
                      timezone="Europe/Zurich")
    assert a.active(t("2025-03-29T07:30:00+00:00"))  # 08:30 CET
    assert not a.active(t("2025-03-29T06:30:00+00:00"))  # 07:30 CET
    assert a.active(t("2025-03-30T06:30:00+00:00"))  # 08:30 CEST
    assert not a.active(t("2025-03-30T05:30:00+00:00"))  # 07:30 CEST
    assert a.changes_after(t("2025-03-29T18:00:00+00:00")) == t("2025-03-30T06:00:00+00:00")
    assert a.changes_after(t("2025-03-30T06:00:00+00:00")) == t("2025-03-30T16:00:00+00:00")
    # and back to winter time on 2025-10-26
    assert a.changes_after(t("2025-10-25T16:00:00+00:00")) == t("2025-10-26T07:00:00+00:00")


def test_changes_after_takes_the_window_and_the_schedule() -> None:
    start, end = t("2025-06-01T00:00:00+00:00"), t("2025-06-30T00:00:00+00:00")
    a = Applicability(start_t=start, end_t=end,
                      daily=(DailyPeriod(frozenset({0}), 10 * 3600.0, 11 * 3600.0),))
    assert a.changes_after(start - 10) == start
    assert a.changes_after(start) == t("2025-06-02T10:00:00+00:00")  # the first Monday
    assert a.changes_after(t("2025-06-29T12:00:00+00:00")) == end
    assert not a.active(t("2025-06-30T10:30:00+00:00"))  # a Monday, but after the end
    z = zone(applicability=(a,))
    assert z.changes_after(start) == t("2025-06-02T10:00:00+00:00")
    assert zone().changes_after(start) == math.inf
    assert zone().in_force(start)
    assert Applicability(start_t=start).changes_after(start + 1) == math.inf
