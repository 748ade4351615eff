"""EUROCAE ED-269 UAS geographical zones, as real files have them, read into
:class:`~skyfence.zones.model.Zone`.

There is no official ED-269 JSON Schema to validate against, so every field is checked
here, and each problem is a :class:`ZoneError` naming the zone, the field as a JSON path
(``UASZoneList[0].geometry[0].lowerLimit``) and the fix. A zone with any problem is left
out; the others load; all problems of a zone are listed, not only its first.

What is tolerated, because published files do it:

- the zones under ``UASZoneList`` (as the InterUSS sample and national services
  publish them) or under ``features`` (as the ``uas-standards`` model names them);
- numbers given as strings ("0", "120.5"); a string that is not a number is refused;
- ``upperLimit: null``: no ceiling (+inf); ``lowerLimit: null``: the ground (0 m AGL);
- ``uomDimensions`` M or FT (any case), which applies to the limits and to a circle's
  radius; it may be left out only when nothing needs a unit (limits null or 0);
- vertical references AGL and AMSL, and WGS84 (ellipsoid) if a file uses it; a limit
  of null or 0 without its reference is the ground;
- ``restriction`` REQ_AUTHORISATION (the ED-269 spelling) and REQ_AUTHORIZATION;
- daily periods under ``schedule`` (the ED-269 name) or ``dailyPeriod`` (the InterUSS
  sample); a lone object where a list is expected.

**Circle centres are [longitude, latitude].** ED-269's ``horizontalProjection`` is a
GeoJSON geometry extended with a Circle type, and GeoJSON positions put longitude
first; the real sample's polygon does (Geneva, [6.17, 46.21]), and the InterUSS
geo-awareness test USS reads ``center`` as longitude, latitude (``# Lng / Lat``,
interuss/monitoring ``mock_uss/geoawareness/check.py``), converting its ``radius`` with
``uomDimensions``. The ``uas-standards`` model's comments say "lat, lng" for both
centres and polygon coordinates, which the real files contradict. A centre whose
second number cannot be a latitude while its first can is refused as swapped.

**Applicability** (a list of periods; none at all: permanent). Each period has
``permanent`` YES or NO, ``startDateTime``/``endDateTime`` (ISO 8601; without an offset,
UTC) and daily periods (``day`` list of MON … SUN or ANY, ``startTime``/``endTime``
``hh:mm[:ss[.f]]`` with ``Z`` or an offset; without one, UTC as ED-269 gives times).

- ``permanent: "YES"``: the zone applies at all times (between the dates, if given).
  Daily periods then may be placeholders: a null or empty ``day`` list means any day,
  a null time the whole day, as in the sample (``day: []``, times null). A daily period
  that would limit a permanent zone to some days or hours contradicts YES and is a
  problem.
- ``permanent: "NO"``: the dates and daily periods limit the zone; a daily period then
  needs its days and both times (null or empty is a problem), and a period with
  neither dates nor daily periods is a problem.
- ``permanent`` absent: as NO if the period gives dates or daily periods, else the
  zone is permanent.

All times of one period share one offset (the period's time zone); mixed offsets are
a problem. ``startEvent``/``endEvent`` daylight events are not supported.

Fields the model has no place for (``country``, ``type``, ``restrictionConditions``,
``region``, ``otherReasonInfo``, ``regulationExemption``, ``uSpaceClass``,
``zoneAuthority``, ``extendedProperties``, …) are kept under their names in
``Zone.extra``.
"""

from __future__ import annotations

import math
from datetime import UTC
from typing import Any

from skyfence.zones import _fields as F
from skyfence.zones._fields import Bad, Problems
from skyfence.zones.model import (
    DAY_S,
    Applicability,
    Circle,
    DailyPeriod,
    HeightReference,
    Limit,
    Polygon,
    Restriction,
    Shape,
    Volume,
    Zone,
    ZoneError,
    check_zone,
)

_RESTRICTIONS = {
    "PROHIBITED": Restriction.PROHIBITED,
    "REQ_AUTHORISATION": Restriction.AUTHORISATION_REQUIRED,
    "REQ_AUTHORIZATION": Restriction.AUTHORISATION_REQUIRED,
    "CONDITIONAL": Restriction.CONDITIONAL,
    "NO_RESTRICTION": Restriction.NO_RESTRICTION,
}

_MODELLED = frozenset({"identifier", "name", "restriction", "reason", "message",
                       "applicability", "geometry"})

_ALL_DAYS = frozenset(range(7))


def parse_ed269(doc: Any, *, file: str | None) -> tuple[list[Zone], list[ZoneError]]:
    """Zones of an ED-269 document (parsed JSON) and every problem found, in file order.
    ``file`` names the source in problems and in ``Zone.source``."""
    fix = "an ED-269 file is an object with a UASZoneList (or features) list of zones"
    if not isinstance(doc, dict):
        return [], [ZoneError(f"the document is {F.show(doc, 30)}, not an object",
                              file=file, fix=fix)]
    key = "UASZoneList" if "UASZoneList" in doc else "features"
    listed = doc.get(key)
    if not isinstance(listed, list):
        return [], [ZoneError(f"{key} is {F.show(listed, 30)}, not a list", field=key,
                              file=file, fix=fix)]
    zones: list[Zone] = []
    problems: list[ZoneError] = []
    for i, item in enumerate(listed):
        found = Problems()
        zone = _zone(item, F.path(key, i), file, found)
        ident = _identifier(item)
        if found.found or zone is None:
            problems.extend(found.errors(zone=ident, file=file))
            continue
        checked = check_zone(zone, file=file)
        problems.extend(checked)
        if not checked:
            zones.append(zone)
    return zones, problems


def _identifier(item: object) -> str | None:
    if isinstance(item, dict):
        ident = item.get("identifier")
        if isinstance(ident, str) and ident:
            return ident
        if isinstance(ident, int) and not isinstance(ident, bool):
            return str(ident)
    return None


def _zone(item: Any, where: str, file: str | None, found: Problems) -> Zone | None:
    item = found.run(F.mapping, item, where)
    if item is None:
        return None
    ident = _identifier(item)
    if ident is None:
        found.found.append(Bad(F.path(where, "identifier"),
                               f"{F.show(item.get('identifier'))} is not an identifier",
                               "give every zone a unique identifier (a string)"))
    restriction = found.run(_restriction, item.get("restriction"),
                            F.path(where, "restriction"))
    volumes = _volumes(item.get("geometry"), F.path(where, "geometry"), found)
    applicability = found.run(_applicability, item.get("applicability"),
                              F.path(where, "applicability"))
    authorities = item.get("zoneAuthority")
    if isinstance(authorities, dict):
        authorities = [authorities]
    authority = "; ".join(t for t in (F.pick_text(a.get("name")) for a in authorities or []
                                      if isinstance(a, dict)) if t)
    reason = found.run(_reason, item.get("reason"), F.path(where, "reason"))
    if found.found or ident is None or restriction is None or applicability is None \
            or reason is None:
        return None
    return Zone(
        id=ident,
        name=F.pick_text(item.get("name")),
        restriction=restriction,
        volumes=tuple(volumes),
        applicability=applicability,
        authority=authority,
        reason=reason,
        message=F.pick_text(item.get("message")),
        source=f"{file} (ed269)" if file else "",
        extra={k: v for k, v in item.items() if k not in _MODELLED},
    )


def _restriction(value: object, where: str) -> Restriction:
    code = value.strip().upper() if isinstance(value, str) else None
    if code not in _RESTRICTIONS:
        raise Bad(where, f"{F.show(value)} is not an ED-269 restriction",
                  "use PROHIBITED, REQ_AUTHORISATION, CONDITIONAL or NO_RESTRICTION")
    return _RESTRICTIONS[code]


def _reason(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    listed = [value] if isinstance(value, str) else F.items(value, where)
    return tuple(F.text(r, F.path(where, k)) for k, r in enumerate(listed))


def _as_list(value: object, where: str) -> list[Any]:
    """A list, a lone object as a list of one, null as empty."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    return F.items(value, where)


def _volumes(value: object, where: str, found: Problems) -> list[Volume]:
    listed = found.run(_as_list, value, where)
    if listed is None:
        return []
    if not listed:
        found.found.append(Bad(where, "the zone has no geometry",
                               "give at least one volume: horizontalProjection, limits, "
                               "references and uomDimensions"))
    out = []
    for j, g in enumerate(listed):
        v = found.run(_volume, g, F.path(where, j))
        if v is not None:
            out.append(v)
    return out


def _volume(g: Any, where: str) -> Volume:
    g = F.mapping(g, where)
    raw_lower, raw_upper = g.get("lowerLimit"), g.get("upperLimit")
    lower_m = None if raw_lower is None else F.number(raw_lower, F.path(where, "lowerLimit"),
                                                     strings=True)
    upper_m = None if raw_upper is None else F.number(raw_upper, F.path(where, "upperLimit"),
                                                     strings=True)
    hp = F.mapping(g.get("horizontalProjection"), F.path(where, "horizontalProjection"))
    kind = hp.get("type")
    kind = kind.strip().lower() if isinstance(kind, str) else kind
    needs_unit = bool(lower_m) or upper_m is not None or kind == "circle"
    unit = _unit(g.get("uomDimensions"), F.path(where, "uomDimensions"), needed=needs_unit)
    if lower_m is None or (lower_m == 0.0 and g.get("lowerVerticalReference") is None):
        lower = Limit(0.0, HeightReference.AGL)
    else:
        lower = Limit(F.length_m(lower_m, unit),
                      _reference(g.get("lowerVerticalReference"),
                                 F.path(where, "lowerVerticalReference")))
    if upper_m is None:
        ref = g.get("upperVerticalReference")
        upper = Limit(math.inf, HeightReference.AGL if ref is None else
                      _reference(ref, F.path(where, "upperVerticalReference")))
    else:
        upper = Limit(F.length_m(upper_m, unit),
                      _reference(g.get("upperVerticalReference"),
                                 F.path(where, "upperVerticalReference")))
    return Volume(_shape(hp, kind, unit, F.path(where, "horizontalProjection")), lower, upper)


def _unit(value: object, where: str, *, needed: bool) -> str:
    if value is None and not needed:
        return "m"
    code = value.strip().upper() if isinstance(value, str) else value
    if code not in ("M", "FT"):
        raise Bad(where, f"{F.show(value)} is not a unit of length",
                  "give uomDimensions M (metres) or FT (feet)")
    return "ft" if code == "FT" else "m"


def _reference(value: object, where: str) -> HeightReference:
    code = value.strip().upper() if isinstance(value, str) else value
    if code not in ("AGL", "AMSL", "WGS84"):
        raise Bad(where, f"{F.show(value)} is not a vertical reference",
                  "give AGL (above ground), AMSL (above mean sea level) or WGS84 "
                  "(above the ellipsoid)")
    return HeightReference(str(code))


def _position(value: object, where: str) -> tuple[float, float]:
    p = F.items(value, where)
    if len(p) < 2:
        raise Bad(where, f"{F.show(value)} is not a position",
                  "give [longitude, latitude] in degrees")
    return (F.number(p[0], F.path(where, 0), strings=True),
            F.number(p[1], F.path(where, 1), strings=True))


def _shape(hp: dict[str, Any], kind: object, unit: str, where: str) -> Shape:
    if kind == "polygon":
        cw = F.path(where, "coordinates")
        rings = []
        for r, ring in enumerate(F.items(hp.get("coordinates"), cw)):
            rw = F.path(cw, r)
            rings.append(tuple(_position(p, F.path(rw, k))
                               for k, p in enumerate(F.items(ring, rw))))
        return Polygon(rings=tuple(rings))
    if kind == "circle":
        cw = F.path(where, "center")
        lon, lat = _position(hp.get("center"), cw)
        if abs(lat) > 90.0 >= abs(lon):
            raise Bad(cw, f"[{lon:g}, {lat:g}] looks like [latitude, longitude]",
                      "ED-269 positions are [longitude, latitude], as in GeoJSON")
        radius = F.number(hp.get("radius"), F.path(where, "radius"), strings=True)
        return Circle(lon_deg=lon, lat_deg=lat, radius_m=F.length_m(radius, unit))
    raise Bad(F.path(where, "type"), f"{F.show(hp.get('type'))} is not a horizontal "
              "projection", "give type Polygon (with coordinates) or Circle (with center "
              "[longitude, latitude] and radius)")


def _applicability(value: object, where: str) -> tuple[Applicability, ...]:
    out = []
    for k, period in enumerate(_as_list(value, where)):
        a = _period(period, F.path(where, k))
        if a == Applicability():
            return ()  # one period that always applies makes the zone permanent
        out.append(a)
    return tuple(out)


def _period(period: Any, where: str) -> Applicability:
    period = F.mapping(period, where)
    raw = period.get("permanent")
    code = raw.strip().upper() if isinstance(raw, str) else raw
    permanent: bool | None
    if raw is None or isinstance(raw, bool):
        permanent = raw
    elif code in ("YES", "NO"):
        permanent = code == "YES"
    else:
        raise Bad(F.path(where, "permanent"), f"{F.show(raw)} is not YES or NO",
                  "give permanent \"YES\" or \"NO\"")
    start_t = end_t = None
    if period.get("startDateTime") is not None:
        start_t = F.date_time(period["startDateTime"], F.path(where, "startDateTime"),
                              local=UTC)
    if period.get("endDateTime") is not None:
        end_t = F.date_time(period["endDateTime"], F.path(where, "endDateTime"), local=UTC)
    daily: list[DailyPeriod] = []
    offsets: list[tuple[str, str | None]] = []
    for key in ("schedule", "dailyPeriod"):
        for j, d in enumerate(_as_list(period.get(key), F.path(where, key))):
            daily.append(_daily(d, F.path(where, key, j), permanent is True, offsets))
    tz = F.one_time_zone(offsets, where)
    if permanent is True:
        if any(d.days != _ALL_DAYS or not F.whole_day(d.start_s, d.end_s) for d in daily):
            raise Bad(F.path(where, "permanent"), "permanent is YES but a daily period "
                      "limits the zone to some days or hours",
                      "set permanent to \"NO\" to apply the daily periods, or remove them")
        return Applicability(start_t=start_t, end_t=end_t)
    if permanent is False and not daily and start_t is None and end_t is None:
        raise Bad(F.path(where, "permanent"), "permanent is NO but the period gives neither "
                  "dates nor daily periods", "give startDateTime/endDateTime or a schedule, "
                  "or set permanent to \"YES\"")
    return Applicability(start_t=start_t, end_t=end_t, daily=tuple(daily),
                         timezone=tz if daily else "UTC")


def _daily(d: Any, where: str, permanent: bool,
           offsets: list[tuple[str, str | None]]) -> DailyPeriod:
    d = F.mapping(d, where)
    for event in ("startEvent", "endEvent"):
        if d.get(event) is not None:
            raise Bad(F.path(where, event), "daylight events (sunrise, sunset, civil "
                      "twilight) are not supported yet",
                      "give startTime and endTime as clock times, or leave this zone out")
    only_if = "only with permanent \"YES\""
    raw_days = d.get("day")
    if raw_days is None or raw_days == []:
        if not permanent:
            raise Bad(F.path(where, "day"), "the daily period has no days",
                      f"list days (MON … SUN, or ANY); no days means every day {only_if}")
        days = _ALL_DAYS
    else:
        days = F.days(raw_days, F.path(where, "day"))
    bounds = []
    for name, default in (("startTime", 0.0), ("endTime", DAY_S)):
        raw = d.get(name)
        if raw is None:
            if not permanent:
                raise Bad(F.path(where, name), f"the daily period has no {name}",
                          f"give a time such as 08:00:00Z; no time means all day {only_if}")
            bounds.append(default)
            continue
        second, tz = F.time_of_day(raw, F.path(where, name), offset="optional")
        offsets.append((F.path(where.rsplit(".", 1)[-1], name), tz))
        bounds.append(second)
    return DailyPeriod(days=days, start_s=bounds[0], end_s=bounds[1])
