"""skyfence's own zone file: GeoJSON (RFC 7946) with the properties below.

The file is a FeatureCollection, ``{"type": "FeatureCollection", "features": [...]}``
(other top-level members are ignored). Each Feature is one volume of a zone::

    {"type": "Feature",
     "geometry": {"type": "Polygon",
                  "coordinates": [[[8.54, 47.37], [8.56, 47.37], [8.55, 47.38], [8.54, 47.37]]]},
     "properties": {"id": "ZRH-1", "name": "Zurich centre", "restriction": "prohibited",
                    "upper_limit": 120, "upper_reference": "AGL"}}

**geometry** — positions are [longitude, latitude] in WGS84 degrees (a third number,
a height, is ignored):

- ``Polygon``: one volume; the outer ring, then holes, each ring closed (its last
  point repeats its first) and not crossing itself;
- ``MultiPolygon``: one volume per polygon, all with the feature's limits;
- ``Point`` with ``properties.radius_m``: a circle of that radius in metres.

**properties** of the zone (repeated on every feature of a zone, and they must agree):

- ``id`` (string, required): the zone's identifier. Features sharing an ``id`` are one
  zone with several volumes, in file order.
- ``name`` (string, default "").
- ``restriction`` (required): ``prohibited`` | ``authorisation_required`` |
  ``conditional`` | ``no_restriction``; the ED-269/ED-318 codes ``PROHIBITED``,
  ``REQ_AUTHORISATION``, ``REQ_AUTHORIZATION``, ``CONDITIONAL``, ``NO_RESTRICTION`` are
  accepted too.
- ``applicability``: absent (or null, or []) the zone is permanent; otherwise a list of
  periods, the zone applying whenever one of them does::

      {"start": "2025-06-01T00:00:00Z", "end": null, "timezone": "Europe/Zurich",
       "schedule": [{"days": ["MON", "TUE", "WED", "THU", "FRI"],
                     "start": "08:00", "end": "18:00"}]}

  ``start``/``end``: ISO 8601 date-times, null or absent for an open end; one without
  an offset is local time in ``timezone``. ``timezone``: an IANA name
  ("Europe/Zurich"), "UTC" (the default) or a fixed offset ("+01:00"), the zone of the
  schedule's times. ``schedule`` (absent: all day between start and end): daily
  periods with ``days`` (MON TUE WED THU FRI SAT SUN, or ["ANY"]), ``start`` and
  ``end`` local times ``hh:mm[:ss[.ffffff]]`` (defaults 00:00 and 24:00); an ``end``
  at or before ``start`` runs over midnight into the next day.
- ``exempt``: identities the zone does not apply to, as tracks carry them:
  ``icao:4840D6`` (six upper-case hex digits), ``rid:MFG1A0123456789``.
- ``authority`` (string), ``reason`` (a string or a list of strings), ``message``
  (string, shown with alerts).
- ``extra`` (object): anything else to keep with the zone (``Zone.extra``), written
  back as it is.

**properties** of the volume (may differ between a zone's features):

- ``lower_limit``: number, default 0; null: no floor.
- ``lower_reference``: ``AGL`` (above the ground) | ``AMSL`` (above mean sea level) |
  ``WGS84`` (above the ellipsoid); default AGL.
- ``upper_limit``: number; null or absent: no ceiling.
- ``upper_reference``: as ``lower_reference``; default AGL.
- ``unit``: ``m`` | ``ft``, default m: the unit of ``lower_limit`` and ``upper_limit``.
- ``radius_m``: a Point's radius, always metres.

Any other property name is refused, so that a misspelt ``upper_limit`` cannot quietly
mean "no ceiling"; keep your own data under ``extra``.

:func:`to_geojson` writes exactly this form: one Polygon or Point feature per volume,
limits in metres (``unit`` "m") with their references, ``upper_limit`` null for no
ceiling, ``start``/``end`` in UTC with ``Z`` to the microsecond, schedules with
``["ANY"]`` for every day. ``parse_geojson(to_geojson(zones))`` gives the same zones
(``source`` aside, which names the file read).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
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
    Restriction,
    Volume,
    Zone,
    ZoneError,
    check_zone,
    time_zone,
)

_RESTRICTIONS = {
    **{r.value: r for r in Restriction},
    "PROHIBITED": Restriction.PROHIBITED,
    "REQ_AUTHORISATION": Restriction.AUTHORISATION_REQUIRED,
    "REQ_AUTHORIZATION": Restriction.AUTHORISATION_REQUIRED,
    "CONDITIONAL": Restriction.CONDITIONAL,
    "NO_RESTRICTION": Restriction.NO_RESTRICTION,
}

_ZONE_KEYS = ("id", "name", "restriction", "applicability", "exempt", "authority", "reason",
              "message", "extra")
_VOLUME_KEYS = ("lower_limit", "lower_reference", "upper_limit", "upper_reference", "unit",
                "radius_m")
_PERIOD_KEYS = ("start", "end", "timezone", "schedule")
_DAILY_KEYS = ("days", "start", "end")

_IDENTITY = re.compile(r"[a-z][a-z0-9_]*:\S+")


def parse_geojson(doc: Any, *, file: str | None) -> tuple[list[Zone], list[ZoneError]]:
    """Zones of a skyfence GeoJSON document (parsed JSON) and every problem found.
    ``file`` names the source in problems and in ``Zone.source``."""
    fix = "a zone file is {\"type\": \"FeatureCollection\", \"features\": [...]}"
    if not isinstance(doc, dict):
        return [], [ZoneError(f"the document is {F.show(doc, 30)}, not an object",
                              file=file, fix=fix)]
    if doc.get("type") != "FeatureCollection":
        kind = doc.get("type")
        return [], [ZoneError(
            "the document has no type" if kind is None else
            f"type is {F.show(kind, 30)}, not 'FeatureCollection'", field="type", file=file,
            fix="wrap the feature: {\"type\": \"FeatureCollection\", \"features\": [ "
                "<the feature> ]}" if kind == "Feature" else fix)]
    features = doc.get("features")
    if not isinstance(features, list):
        return [], [ZoneError(f"features is {F.show(features, 30)}, not a list",
                              field="features", file=file, fix=fix)]

    # Each feature read on its own, then grouped by id in order of first appearance.
    groups: dict[str, list[tuple[int, _Head, list[Volume]]]] = {}
    failed: dict[str, list[ZoneError]] = {}
    problems: list[ZoneError] = []
    for i, feature in enumerate(features):
        found = Problems()
        ident, head, vols = _feature(feature, i, found)
        if ident is None:
            problems.extend(found.errors(zone=None, file=file))
            continue
        groups.setdefault(ident, [])
        if found.found or head is None:
            failed.setdefault(ident, []).extend(found.errors(zone=ident, file=file))
            continue
        groups[ident].append((i, head, vols))

    zones: list[Zone] = []
    for ident, parts in groups.items():
        if ident in failed:
            problems.extend(failed[ident])
            continue
        first_i, first, _ = parts[0]
        differs = [(i, first.differing(head)) for i, head, _ in parts[1:] if head != first]
        if differs:
            problems.extend(ZoneError(
                f"this feature shares its id with features[{first_i}] but its "
                f"{', '.join(names)} differ{'s' if len(names) == 1 else ''}",
                zone=ident, field=F.path("features", i, "properties"), file=file,
                fix="give every feature of a zone the same zone properties (name, "
                    "restriction, applicability, exempt, authority, reason, message, extra), "
                    "or give it another id") for i, names in differs)
            continue
        zone = Zone(id=ident, name=first.name, restriction=first.restriction,
                    volumes=tuple(v for _, _, vols in parts for v in vols),
                    applicability=first.applicability, exempt=first.exempt,
                    authority=first.authority, reason=first.reason, message=first.message,
                    source=f"{file} (geojson)" if file else "", extra=dict(first.extra))
        checked = check_zone(zone, file=file)
        problems.extend(checked)
        if not checked:
            zones.append(zone)
    return zones, problems


@dataclass(frozen=True, slots=True)
class _Head:
    """A feature's zone-level values, which every feature of a zone must repeat."""

    name: str
    restriction: Restriction
    applicability: tuple[Applicability, ...]
    exempt: frozenset[str]
    authority: str
    reason: tuple[str, ...]
    message: str
    extra: dict[str, object]

    def differing(self, other: _Head) -> list[str]:
        return [f.name for f in fields(self)
                if getattr(self, f.name) != getattr(other, f.name)]


def _feature(feature: Any, i: int, found: Problems
             ) -> tuple[str | None, _Head | None, list[Volume]]:
    """The feature's zone id, its zone-level values (None if any is bad) and volumes."""
    where = F.path("features", i)
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        found.found.append(Bad(where, f"{F.show(feature, 40)} is not a GeoJSON Feature",
                               "give {\"type\": \"Feature\", \"geometry\": {...}, "
                               "\"properties\": {...}}"))
        return None, None, []
    pw = F.path(where, "properties")
    props = found.run(F.mapping, feature.get("properties"), pw)
    if props is None:
        return None, None, []
    ident = None
    if props.get("id") is None:
        found.found.append(Bad(F.path(pw, "id"), "the feature has no id",
                               "give properties.id: the identifier of the zone it belongs to"))
    else:
        ident = found.run(F.text, props["id"], F.path(pw, "id"), empty=False)
    for key in props:
        if key not in _ZONE_KEYS and key not in _VOLUME_KEYS:
            found.found.append(Bad(F.path(pw, key), f"unknown property {key!r}",
                                   f"use the documented names ({', '.join(_ZONE_KEYS)}, "
                                   f"{', '.join(_VOLUME_KEYS)}); keep your own data under "
                                   "'extra'"))
    if ident is None:
        return None, None, []
    name = found.run(_optional_text, props.get("name"), F.path(pw, "name"))
    restriction = found.run(_restriction, props.get("restriction"), F.path(pw, "restriction"))
    applicability = found.run(_applicability, props.get("applicability"),
                              F.path(pw, "applicability"))
    exempt = found.run(_exempt, props.get("exempt"), F.path(pw, "exempt"))
    authority = found.run(_optional_text, props.get("authority"), F.path(pw, "authority"))
    reason = found.run(_reason, props.get("reason"), F.path(pw, "reason"))
    message = found.run(_optional_text, props.get("message"), F.path(pw, "message"))
    extra = found.run(_extra, props.get("extra"), F.path(pw, "extra"))
    volumes = found.run(_volumes, feature.get("geometry"), props, where) or []
    if (name is None or restriction is None or applicability is None or exempt is None
            or authority is None or reason is None or message is None or extra is None):
        return ident, None, volumes
    return ident, _Head(name, restriction, applicability, exempt, authority, reason, message,
                        extra), volumes


def _optional_text(value: object, where: str) -> str:
    return "" if value is None else F.text(value, where)


def _restriction(value: object, where: str) -> Restriction:
    if value is None:
        raise Bad(where, "the zone has no restriction",
                  "give restriction: prohibited, authorisation_required, conditional or "
                  "no_restriction")
    if not isinstance(value, str) or value not in _RESTRICTIONS:
        raise Bad(where, f"{F.show(value)} is not a restriction",
                  "use prohibited, authorisation_required, conditional or no_restriction "
                  "(or an ED code such as REQ_AUTHORISATION)")
    return _RESTRICTIONS[value]


def _reason(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    listed = [value] if isinstance(value, str) else F.items(value, where)
    return tuple(F.text(r, F.path(where, k)) for k, r in enumerate(listed))


def _extra(value: object, where: str) -> dict[str, object]:
    return {} if value is None else dict(F.mapping(value, where))


def _exempt(value: object, where: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    out = set()
    for k, ident in enumerate(F.items(value, where)):
        w = F.path(where, k)
        ident = F.text(ident, w)
        scheme, _, key = ident.partition(":")
        if not _IDENTITY.fullmatch(ident) or (
                scheme == "icao" and not re.fullmatch(r"[0-9A-F]{6}", key)):
            raise Bad(w, f"{F.show(ident)} is not an identity",
                      "give scheme:value as tracks carry it: icao:4840D6 (6 upper-case hex "
                      "digits), rid:MFG1A0123456789")
        out.add(ident)
    return frozenset(out)


def _applicability(value: object, where: str) -> tuple[Applicability, ...]:
    if value is None:
        return ()
    out = []
    for k, period in enumerate(F.items(value, where)):
        pw = F.path(where, k)
        period = F.mapping(period, pw)
        _unknown(period, _PERIOD_KEYS, pw)
        tz = F.check_time_zone(period.get("timezone", "UTC"), F.path(pw, "timezone"))
        local = time_zone(tz)
        start_t = end_t = None
        if period.get("start") is not None:
            start_t = F.date_time(period["start"], F.path(pw, "start"), local=local)
        if period.get("end") is not None:
            end_t = F.date_time(period["end"], F.path(pw, "end"), local=local)
        daily = []
        for j, d in enumerate(F.items(period.get("schedule") or [], F.path(pw, "schedule"))):
            dw = F.path(pw, "schedule", j)
            d = F.mapping(d, dw)
            _unknown(d, _DAILY_KEYS, dw)
            if d.get("days") is None:
                raise Bad(F.path(dw, "days"), "the daily period has no days",
                          "give days: a list of MON … SUN, or [\"ANY\"]")
            start_s = 0.0 if d.get("start") is None else F.time_of_day(
                d["start"], F.path(dw, "start"), offset="forbidden")[0]
            end_s = DAY_S if d.get("end") is None else F.time_of_day(
                d["end"], F.path(dw, "end"), offset="forbidden")[0]
            daily.append(DailyPeriod(days=F.days(d["days"], F.path(dw, "days")),
                                     start_s=start_s, end_s=end_s))
        out.append(Applicability(start_t=start_t, end_t=end_t, daily=tuple(daily),
                                 timezone=tz))
    return tuple(out)


def _unknown(obj: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    for key in obj:
        if key not in known:
            raise Bad(F.path(where, key), f"unknown member {key!r}",
                      f"use {', '.join(known)}")


def _volumes(geometry: Any, props: dict[str, Any], where: str) -> list[Volume]:
    pw = F.path(where, "properties")
    gw = F.path(where, "geometry")
    geometry = F.mapping(geometry, gw)
    unit = props.get("unit", "m")
    if unit not in ("m", "ft"):
        raise Bad(F.path(pw, "unit"), f"{F.show(unit)} is not a unit", "use m or ft")
    lower = _limit(props, "lower", unit, pw)
    upper = _limit(props, "upper", unit, pw)
    kind = geometry.get("type")
    coords = geometry.get("coordinates")
    cw = F.path(gw, "coordinates")
    if kind != "Point" and "radius_m" in props:
        raise Bad(F.path(pw, "radius_m"), f"radius_m is for a Point, not a {F.show(kind)}",
                  "remove radius_m, or make the geometry a Point at the circle's centre")
    if kind == "Polygon":
        return [Volume(F.polygon(coords, cw), lower, upper)]
    if kind == "MultiPolygon":
        return [Volume(F.polygon(p, F.path(cw, k)), lower, upper)
                for k, p in enumerate(F.items(coords, cw))]
    if kind == "Point":
        if props.get("radius_m") is None:
            raise Bad(F.path(pw, "radius_m"), "a Point zone has no radius_m",
                      "give radius_m: the circle's radius in metres")
        lon, lat = F.position(coords, cw)
        radius_m = F.number(props["radius_m"], F.path(pw, "radius_m"))
        return [Volume(Circle(lon_deg=lon, lat_deg=lat, radius_m=radius_m), lower, upper)]
    raise Bad(F.path(gw, "type"), f"{F.show(kind)} is not a zone geometry",
              "give a Polygon, a MultiPolygon, or a Point with properties.radius_m")


def _limit(props: dict[str, Any], side: str, unit: str, where: str) -> Limit:
    ref = props.get(f"{side}_reference", "AGL")
    if ref not in ("AGL", "AMSL", "WGS84"):
        raise Bad(F.path(where, f"{side}_reference"), f"{F.show(ref)} is not a height "
                  "reference", "use AGL (above the ground), AMSL (above mean sea level) or "
                  "WGS84 (above the ellipsoid)")
    key = f"{side}_limit"
    if side == "lower" and key not in props:
        value = 0.0
    elif props.get(key) is None:
        value = -math.inf if side == "lower" else math.inf
    else:
        value = F.length_m(F.number(props[key], F.path(where, key)), unit)
    return Limit(value, HeightReference(ref))


# -- writing -------------------------------------------------------------------------

def to_geojson(zones: Any) -> dict[str, Any]:
    """The zones as a skyfence GeoJSON FeatureCollection (a dict ready for json.dump):
    one feature per volume, values in metres. A zone without volumes has no place in
    GeoJSON and raises a ZoneError."""
    features = []
    for zone in zones:
        if not zone.volumes:
            raise ZoneError("the zone has no volume to write", zone=zone.id,
                            field="volumes", fix="give it at least one shape with limits")
        head = _zone_properties(zone)
        for v in zone.volumes:
            props = dict(head)
            props.update(_limit_properties(v))
            if isinstance(v.shape, Circle):
                geometry: dict[str, Any] = {"type": "Point",
                                            "coordinates": [v.shape.lon_deg, v.shape.lat_deg]}
                props["radius_m"] = v.shape.radius_m
            else:
                geometry = {"type": "Polygon",
                            "coordinates": [[[x, y] for x, y in ring] for ring in v.shape.rings]}
            features.append({"type": "Feature", "geometry": geometry, "properties": props})
    return {"type": "FeatureCollection", "features": features}


def _zone_properties(zone: Zone) -> dict[str, Any]:
    props: dict[str, Any] = {"id": zone.id, "name": zone.name,
                             "restriction": zone.restriction.value}
    if zone.applicability:
        props["applicability"] = [_period(a) for a in zone.applicability]
    if zone.exempt:
        props["exempt"] = sorted(zone.exempt)
    if zone.authority:
        props["authority"] = zone.authority
    if zone.reason:
        props["reason"] = list(zone.reason)
    if zone.message:
        props["message"] = zone.message
    if zone.extra:
        props["extra"] = dict(zone.extra)
    return props


def _limit_properties(v: Volume) -> dict[str, Any]:
    return {
        "lower_limit": None if v.lower.height_m == -math.inf else v.lower.height_m,
        "lower_reference": v.lower.reference.value,
        "upper_limit": None if v.upper.height_m == math.inf else v.upper.height_m,
        "upper_reference": v.upper.reference.value,
        "unit": "m",
    }


def _period(a: Applicability) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if a.start_t is not None:
        out["start"] = F.iso(a.start_t)
    if a.end_t is not None:
        out["end"] = F.iso(a.end_t)
    out["timezone"] = a.timezone
    if a.daily:
        out["schedule"] = [{"days": F.day_names(p.days), "start": F.clock(p.start_s),
                            "end": F.clock(p.end_s)} for p in a.daily]
    return out
