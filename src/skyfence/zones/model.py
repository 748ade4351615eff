"""Airspace zones: the one model every importer produces and the monitor checks.

A zone is one or more volumes (a horizontal shape with a lower and an upper limit),
a restriction, when it applies, and who is exempt. Shapes are in WGS84 degrees
(longitude first, as GeoJSON); limits are metres with their vertical reference.
Times are float seconds since the Unix epoch (UTC); daily periods are local times in
the applicability's time zone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import shapely

from skyfence.errors import InputError

FT_M = 0.3048
DAY_S = 86_400.0
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


class Restriction(StrEnum):
    PROHIBITED = "prohibited"
    AUTHORISATION_REQUIRED = "authorisation_required"
    CONDITIONAL = "conditional"
    NO_RESTRICTION = "no_restriction"


class HeightReference(StrEnum):
    AGL = "AGL"  # above the ground (or water) under the point
    AMSL = "AMSL"  # above mean sea level (the EGM96 geoid)
    WGS84 = "WGS84"  # above the WGS84 ellipsoid


class ZoneError(InputError):
    """A problem with one zone: the file, the zone's identifier, the field and the fix."""

    def __init__(self, problem: str, *, zone: str | None = None, field: str | None = None,
                 file: str | None = None, fix: str | None = None) -> None:
        self.zone = zone
        super().__init__(problem, file=file, field=field, fix=fix)

    def _render(self) -> str:
        where = []
        if self.file is not None:
            where.append(self.file)
        if self.zone is not None:
            where.append(f"zone {self.zone!r}")
        if self.field is not None:
            where.append(f"field {self.field!r}")
        text = ", ".join(where)
        text = f"{text}: {self.problem}" if text else self.problem
        return f"{text} — {self.fix}" if self.fix else text


@dataclass(frozen=True, slots=True)
class Limit:
    """A height limit: metres above ``reference``; ±inf for none (no floor, no ceiling)."""

    height_m: float
    reference: HeightReference


@dataclass(frozen=True, slots=True)
class Polygon:
    """Rings of (lon_deg, lat_deg) points, each closed (last point = first): the outer
    ring, then holes."""

    rings: tuple[tuple[tuple[float, float], ...], ...]


@dataclass(frozen=True, slots=True)
class Circle:
    lon_deg: float
    lat_deg: float
    radius_m: float


Shape = Polygon | Circle


@dataclass(frozen=True, slots=True)
class Volume:
    shape: Shape
    lower: Limit
    upper: Limit


@dataclass(frozen=True, slots=True)
class DailyPeriod:
    """Days of the week (0 = Monday … 6 = Sunday) and a local time span, seconds after
    midnight. ``end_s <= start_s`` runs over midnight into the next day; 0 to 86,400
    is the whole day."""

    days: frozenset[int]
    start_s: float
    end_s: float

    def covers(self, weekday: int, second: float) -> bool:
        if self.start_s < self.end_s:
            return weekday in self.days and self.start_s <= second < self.end_s
        return ((weekday in self.days and second >= self.start_s)
                or ((weekday - 1) % 7 in self.days and second < self.end_s))


@dataclass(frozen=True, slots=True)
class Applicability:
    """When a zone applies: from ``start_t`` (None: always was) until ``end_t`` (None:
    for ever), and within that only in the daily periods if there are any.

    ``timezone``: an IANA name ("Europe/Zurich"), "UTC", or a fixed offset ("+01:00"),
    the zone the daily periods' times are local to.
    """

    start_t: float | None = None
    end_t: float | None = None
    daily: tuple[DailyPeriod, ...] = ()
    timezone: str = "UTC"

    def active(self, t: float) -> bool:
        if self.start_t is not None and t < self.start_t:
            return False
        if self.end_t is not None and t >= self.end_t:
            return False
        if not self.daily:
            return True
        local = datetime.fromtimestamp(t, tz=time_zone(self.timezone))
        second = (local.hour * 3600 + local.minute * 60 + local.second
                  + local.microsecond * 1e-6)
        return any(p.covers(local.weekday(), second) for p in self.daily)

    def changes_after(self, t: float) -> float:
        """The first time after ``t`` at which :meth:`active` may change (inf: never)."""
        times = [x for x in (self.start_t, self.end_t) if x is not None and x > t]
        if self.daily:
            tz = time_zone(self.timezone)
            today = datetime.fromtimestamp(t, tz=tz).date()
            for d in range(-1, 9):  # every period starts or ends within a week and a day
                day = today + timedelta(days=d)
                for p in self.daily:
                    if day.weekday() not in p.days:
                        continue
                    end_day = day if p.start_s < p.end_s else day + timedelta(days=1)
                    for on, second in ((day, p.start_s), (end_day, p.end_s)):
                        x = _local_epoch(on, second, tz)
                        if x > t:
                            times.append(x)
        return min(times, default=math.inf)


def _local_epoch(day: date, second: float, tz: tzinfo) -> float:
    midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
    return (midnight + timedelta(seconds=second)).timestamp()


@lru_cache(maxsize=256)
def time_zone(name: str) -> tzinfo:
    """A tzinfo for an IANA name, "UTC"/"Z", or a fixed offset "+hh:mm"."""
    if name in ("UTC", "Z"):
        return UTC
    if name[:1] in "+-" and len(name) in (3, 5, 6):
        digits = name[1:].replace(":", "")
        if digits.isdigit() and len(digits) in (2, 4):
            minutes = int(digits[:2]) * 60 + (int(digits[2:]) if len(digits) == 4 else 0)
            return timezone(timedelta(minutes=minutes if name[0] == "+" else -minutes))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ZoneError(f"unknown time zone {name!r}", field="timezone",
                        fix="give an IANA name such as 'Europe/Zurich', 'UTC' or an offset "
                            "such as '+01:00'") from err


@dataclass(frozen=True, slots=True)
class Zone:
    """One zone. ``applicability`` empty: permanent. ``exempt``: identities (as tracks
    carry them: ``icao:4840D6``, ``rid:MFG1A0123456789``) the zone does not apply to."""

    id: str
    name: str
    restriction: Restriction
    volumes: tuple[Volume, ...]
    applicability: tuple[Applicability, ...] = ()
    exempt: frozenset[str] = frozenset()
    authority: str = ""
    reason: tuple[str, ...] = ()
    message: str = ""
    #: Where it came from: the file and the format, for the operator.
    source: str = ""
    #: Fields of the source format the model has no place for, kept for export.
    extra: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    def in_force(self, t: float) -> bool:
        return not self.applicability or any(a.active(t) for a in self.applicability)

    def changes_after(self, t: float) -> float:
        """The first time after ``t`` at which :meth:`in_force` may change (inf: never)."""
        return min((a.changes_after(t) for a in self.applicability), default=math.inf)


def check_zone(zone: Zone, *, file: str | None = None) -> list[ZoneError]:
    """Every problem with a zone's values (empty: it is sound)."""
    out: list[ZoneError] = []

    def bad(problem: str, where: str, fix: str) -> None:
        out.append(ZoneError(problem, zone=zone.id, field=where, file=file, fix=fix))

    if not zone.id:
        bad("the zone has no identifier", "id", "give every zone a unique identifier")
    if not zone.volumes:
        bad("the zone has no volume", "geometry", "give it at least one shape with limits")
    for k, v in enumerate(zone.volumes):
        where = f"volume {k}" if len(zone.volumes) > 1 else "geometry"
        out.extend(_check_shape(zone.id, v.shape, where, file))
        lo, hi = v.lower, v.upper
        for name, lim in (("lower", lo), ("upper", hi)):
            if math.isnan(lim.height_m):
                bad(f"the {name} limit is not a number", f"{where}.{name}",
                    "give a number of metres or feet")
        if lo.reference == hi.reference and not lo.height_m < hi.height_m:
            bad(f"the lower limit ({lo.height_m:g} m {lo.reference}) is not below the upper "
                f"limit ({hi.height_m:g} m {hi.reference})", f"{where}.lower",
                "swap the limits or correct one of them")
    for k, a in enumerate(zone.applicability):
        where = f"applicability[{k}]"
        if a.start_t is not None and a.end_t is not None and not a.start_t < a.end_t:
            bad(f"the time window ends ({_iso(a.end_t)}) before it starts ({_iso(a.start_t)})",
                f"{where}.end", "correct the start or the end")
        try:
            time_zone(a.timezone)
        except ZoneError as err:
            bad(err.problem, f"{where}.timezone", err.fix or "")
        for j, p in enumerate(a.daily):
            if not p.days or not p.days <= set(range(7)):
                bad("a daily period has no valid days", f"{where}.schedule[{j}].day",
                    f"list days among {', '.join(WEEKDAYS)} or ANY")
            for name, s in (("startTime", p.start_s), ("endTime", p.end_s)):
                if not 0.0 <= s <= DAY_S:
                    bad(f"{s:g} s is not a time of day", f"{where}.schedule[{j}].{name}",
                        "give hh:mm or hh:mm:ss")
            if p.start_s == p.end_s:
                bad("a daily period starts and ends at the same time",
                    f"{where}.schedule[{j}]", "give different start and end times")
    return out


def _check_shape(zone: str, shape: Shape, where: str, file: str | None) -> list[ZoneError]:
    out: list[ZoneError] = []

    def bad(problem: str, fix: str) -> None:
        out.append(ZoneError(problem, zone=zone, field=where, file=file, fix=fix))

    if isinstance(shape, Circle):
        if not (math.isfinite(shape.radius_m) and shape.radius_m > 0.0):
            bad(f"the circle's radius {shape.radius_m:g} m is not positive",
                "give a radius in metres greater than zero")
        if not (-90.0 <= shape.lat_deg <= 90.0 and -180.0 <= shape.lon_deg <= 360.0):
            bad(f"the centre ({shape.lon_deg:g}, {shape.lat_deg:g}) is not a longitude, "
                "latitude pair in degrees", "give [longitude, latitude] in degrees")
        return out
    if not shape.rings:
        bad("the polygon has no ring", "give an outer ring of at least 4 points")
        return out
    for r, ring in enumerate(shape.rings):
        name = "outer ring" if r == 0 else f"hole {r}"
        if any(not (-180.0 <= x <= 360.0 and -90.0 <= y <= 90.0) for x, y in ring):
            bad(f"the {name} has a point that is not a longitude, latitude pair in degrees",
                "give [longitude, latitude] pairs in degrees, longitude first")
            return out
        if len(ring) < 4:
            bad(f"the {name} has {len(ring)} points; a closed ring needs at least 4",
                "give at least three corners and repeat the first point at the end")
            return out
        if ring[0] != ring[-1]:
            bad(f"the {name} does not close: it starts at {list(ring[0])} and ends at "
                f"{list(ring[-1])}", "repeat the first point as the last")
            return out
    poly = shapely.Polygon(shape.rings[0], shape.rings[1:])
    if not poly.is_valid:
        bad(f"the polygon is not valid: {shapely.is_valid_reason(poly)}",
            "remove the self-intersection (a ring that crosses itself or a hole outside "
            "the outer ring)")
    elif poly.area == 0.0:
        bad("the polygon has no area", "give at least three distinct corners")
    return out


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat().replace("+00:00", "Z")
