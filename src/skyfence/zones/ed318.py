"""EUROCAE ED-318 geozones (a GeoJSON FeatureCollection with ED-318 properties and
LayeredGeoJSON ``layer`` members) read into :class:`~skyfence.zones.model.Zone`.

**Validation.** The whole document is validated against the official ED-318 JSON
Schema (draft-07), a copy of which ships in ``skyfence/zones/schema/ed318`` (MIT,
UASGeoZones/ED-318); its ``./Schema_*.json`` references resolve among the shipped
files, never over the network. Formats are checked where jsonschema can: ``email``,
and ``date-time`` and ``time`` by RFC 3339 rules that skyfence registers (jsonschema
needs optional packages for those); ``uri`` and ``duration`` are not checked.

**Policy on schema errors.** Every schema error becomes a :class:`ZoneError` naming
the feature's identifier (when it has one), the JSON path
(``features[0].properties.type``) and a fix, and all of them are listed:

- an error inside ``features[i]`` rejects that feature's zone; the other features
  still load (one bad zone must not hide the others);
- an error outside the features (the collection's ``type``, ``name``, ``bbox`` or
  ``metadata``) rejects the whole file, since the collection then is not ED-318 and
  its metadata (``validFrom``, ``validTo``) speaks for every zone; no zone is returned,
  but every feature is still validated so that all problems show at once.

A feature that passes the schema is then built and checked by
:func:`~skyfence.zones.model.check_zone`; one with problems is not returned either.

**Mapping.**

- ``identifier`` → ``Zone.id``; ``name`` (a list of ``{text, lang}``) → the English
  text (``en``, ``en-GB``, …) if there is one, else the first; likewise ``message``
  and each ``zoneAuthority``'s ``name`` (joined by "; " into ``Zone.authority``);
  ``reason`` codes → ``Zone.reason``.
- ``type``: PROHIBITED → prohibited, REQ_AUTHORIZATION → authorisation_required,
  CONDITIONAL → conditional, NO_RESTRICTION → no_restriction, and **USPACE →
  conditional**: a U-space airspace admits drones that fly with U-space services,
  which is flight under conditions; ``Zone.extra["type"]`` keeps "USPACE".
- Geometry: Polygon (one volume), MultiPolygon (one volume per polygon),
  GeometryCollection (one volume per member, each with its own ``layer``, else the
  collection's), Point with ``extent: {subType: Circle, radius}`` (radius in metres).
  LineString, MultiPoint and MultiLineString have no area and are refused.
- ``layer``: ``upper``/``lower`` with ``upperReference``/``lowerReference`` (AGL, AMSL,
  WGS84), ``uom`` m or ft (default m). No ``lower``: the ground (0 m AGL); no
  ``upper``: no ceiling (+inf). A value without its reference is refused.
- ``limitedApplicability`` → one :class:`Applicability` per period: ``startDateTime``,
  ``endDateTime``, and ``schedule`` of ``{day, startTime, endTime}`` (no ``startTime``:
  from midnight; no ``endTime``: to midnight). Times carry their offset: "16:00:00Z"
  is UTC, "08:00:00+01:00" gives the period the time zone "+01:00"; all times of one
  period must share one offset. ``startEvent``/``endEvent`` (sunrise, sunset, civil
  twilight) are not supported yet: such a zone is refused with a ZoneError saying so.
- Every other property (``country``, ``variant``, ``restrictionConditions``,
  ``region``, ``otherReasonInfo``, ``regulationExemption``, ``zoneAuthority``,
  ``dataSource``, ``extendedProperties``) is kept under its own name in
  ``Zone.extra``.

The collection's ``metadata`` (``validFrom``, ``validTo``) is validated but does not
limit the zones: an awareness picture keeps showing a zone rather than drop it because
a data set's validity lapsed.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from importlib import resources
from typing import Any

from skyfence.zones import _fields as F
from skyfence.zones._fields import Bad
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
)

#: A base URI the shipped schema files are registered under so that their relative
#: "./Schema_*.json" references resolve among themselves (.invalid never resolves).
_BASE = "https://skyfence.invalid/zones/schema/ed318/"

_TYPES = {
    "PROHIBITED": Restriction.PROHIBITED,
    "REQ_AUTHORIZATION": Restriction.AUTHORISATION_REQUIRED,
    "CONDITIONAL": Restriction.CONDITIONAL,
    "NO_RESTRICTION": Restriction.NO_RESTRICTION,
    "USPACE": Restriction.CONDITIONAL,
}

_MODELLED = frozenset({"identifier", "name", "type", "reason", "message",
                       "limitedApplicability"})

_AREA_TYPES = "Polygon, MultiPolygon, a GeometryCollection of those, or a Point with " \
              "extent {subType: Circle, radius}"


def parse_ed318(doc: Any, *, file: str | None) -> tuple[list[Zone], list[ZoneError]]:
    """Zones of an ED-318 document (parsed JSON) and every problem found, in file order.
    ``file`` names the source in problems and in ``Zone.source``."""
    file_level, per_feature = _schema_problems(doc, file)
    zones: list[Zone] = []
    problems: list[ZoneError] = list(file_level)
    features = doc.get("features") if isinstance(doc, dict) else None
    if isinstance(features, list):
        for i, feature in enumerate(features):
            if i in per_feature:
                problems.extend(per_feature[i])
                continue
            try:
                zone = _zone(feature, i, file)
            except Bad as bad:
                problems.append(bad.error(zone=_identifier(feature), file=file))
                continue
            found = check_zone(zone, file=file)
            problems.extend(found)
            if not found:
                zones.append(zone)
    return ([] if file_level else zones), problems


@lru_cache(maxsize=1)
def validator() -> Any:
    """The Draft-07 validator of a whole ED-318 collection, from the shipped schema."""
    from jsonschema import Draft7Validator, FormatChecker
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    folder = resources.files("skyfence.zones") / "schema" / "ed318"
    loaded = []
    for entry in folder.iterdir():
        if entry.name.startswith("Schema_") and entry.name.endswith(".json"):
            contents = json.loads(entry.read_text(encoding="utf-8"))
            loaded.append((_BASE + entry.name,
                           Resource.from_contents(contents, default_specification=DRAFT7)))
    registry: Registry[Any] = Registry().with_resources(loaded)
    checker = FormatChecker(formats=())
    checker.checkers = dict(Draft7Validator.FORMAT_CHECKER.checkers)
    checker.checks("date-time")(F.rfc3339_date_time)
    checker.checks("time")(F.rfc3339_time)
    return Draft7Validator({"$ref": _BASE + "Schema_GeoZones.json"}, registry=registry,
                           format_checker=checker)


# -- schema errors -------------------------------------------------------------------

def _schema_problems(doc: Any, file: str | None
                     ) -> tuple[list[ZoneError], dict[int, list[ZoneError]]]:
    """Schema errors outside the features, and those of each feature by index."""
    file_level: list[ZoneError] = []
    per_feature: dict[int, list[ZoneError]] = {}
    leaves = [leaf for err in validator().iter_errors(doc) for leaf in _leaves(err)]
    leaves.sort(key=lambda e: [str(p).zfill(9) for p in e.absolute_path])
    for leaf in leaves:
        where = list(leaf.absolute_path)
        problem, fix = _describe(leaf)
        name = _missing(leaf) or _unexpected(leaf)
        field = F.path(*where, *([name] if name else [])) or None
        if len(where) >= 2 and where[0] == "features" and isinstance(where[1], int):
            i = where[1]
            zone = _identifier(doc["features"][i])
            per_feature.setdefault(i, []).append(
                ZoneError(problem, zone=zone, field=field, file=file, fix=fix))
        else:
            file_level.append(ZoneError(
                problem, field=field, file=file,
                fix=f"{fix} (an error outside the features rejects the whole file)"))
    return file_level, per_feature


def _leaves(err: Any) -> list[Any]:
    """The errors that say what is wrong: a oneOf/anyOf error is replaced by the errors
    of the one alternative that fits the value's shape, when exactly one does."""
    if err.validator in ("oneOf", "anyOf") and err.context:
        here = list(err.absolute_path)
        fitting = [b for b in _branches(err).values()
                   if not any(_mismatch(c, here) for c in b)]
        if len(fitting) == 1:
            return [leaf for c in fitting[0] for leaf in _leaves(c)]
    return [err]


def _branches(err: Any) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {}
    for c in err.context:
        out.setdefault(c.relative_schema_path[0], []).append(c)
    return out


def _mismatch(err: Any, here: list[Any]) -> bool:
    """Whether ``err`` shows that its alternative is for another kind of value: another
    JSON type, another GeoJSON ``type``, or a nested choice none of whose alternatives
    fits."""
    at = list(err.absolute_path)
    if err.validator == "type" and at == here:
        return True
    if _discriminator(err, here):
        return True
    if err.validator in ("oneOf", "anyOf") and at == here and err.context:
        return all(any(_mismatch(c, here) for c in b) for b in _branches(err).values())
    return False


_GEOJSON_TYPES = frozenset({"Point", "LineString", "Polygon", "MultiPoint", "MultiLineString",
                            "MultiPolygon", "GeometryCollection", "Feature",
                            "FeatureCollection"})


def _discriminator(err: Any, here: list[Any]) -> bool:
    """An error on the GeoJSON ``type`` member of the value at ``here``."""
    return (err.validator == "enum" and list(err.absolute_path) == [*here, "type"]
            and isinstance(err.validator_value, list)
            and set(err.validator_value) <= _GEOJSON_TYPES)


def _descendants(err: Any) -> list[Any]:
    out = []
    for c in err.context or ():
        out.append(c)
        out.extend(_descendants(c))
    return out


_ARTICLE = {"string": "a string", "number": "a number", "integer": "an integer",
            "object": "an object", "array": "a list", "null": "null", "boolean": "true or false"}

_FORMAT_FIX = {
    "date-time": "give an RFC 3339 date-time string such as 2018-12-31T15:59:59Z",
    "time": "give an RFC 3339 time with its offset such as 16:00:00Z or 08:00:00+01:00",
    "email": "give an e-mail address",
}


def _kinds(value: object) -> str:
    names = [value] if isinstance(value, str) else list(value) if isinstance(value, list) else []
    return " or ".join(_ARTICLE.get(str(n), str(n)) for n in names)


def _describe(err: Any) -> tuple[str, str]:
    """A problem and a fix for one schema error."""
    v, value, rule = err.validator, err.instance, err.validator_value
    fmt = err.schema.get("format") if isinstance(err.schema, dict) else None
    if v == "type":
        fix = _FORMAT_FIX.get(str(fmt), f"give {_kinds(rule)}")
        return f"{F.show(value)} is not {_kinds(rule)}", fix
    if v == "enum":
        allowed = ", ".join(str(x) for x in rule)
        if value == "REQ_AUTHORISATION":
            return (f"{F.show(value)} is not an ED-318 zone type ({allowed})",
                    "ED-318 spells it REQ_AUTHORIZATION, with a z (REQ_AUTHORISATION is "
                    "the ED-269 spelling)")
        return f"{F.show(value)} is not one of {allowed}", f"use one of {allowed}"
    if v == "required":
        name = _missing(err) or "?"
        if name == "lang":
            return ("'lang' is missing from a text", "add \"lang\": a language tag of at "
                    "most 5 characters such as \"en-GB\", beside \"text\"")
        return f"{name!r} is missing", f"add {name!r} (ED-318 requires it here)"
    if v == "format":
        return (f"{F.show(value)} is not a valid {rule}",
                _FORMAT_FIX.get(str(rule), f"give a valid {rule}"))
    if v == "maxLength":
        return (f"{F.show(value)} is longer than {rule} characters",
                f"shorten it to at most {rule} characters")
    if v == "additionalProperties":
        unexpected = _unexpected(err)
        return (f"unknown property {unexpected!r}" if unexpected else err.message,
                "remove it, or keep it under extendedProperties")
    if v in ("oneOf", "anyOf"):
        here = list(err.absolute_path)
        types = sorted({str(x) for d in _descendants(err) if _discriminator(d, here)
                        for x in d.validator_value})
        if isinstance(value, dict) and types:
            return (f"geometry type {F.show(value.get('type'))} is not allowed here",
                    f"use one of {', '.join(types)}")
        kinds = sorted({str(k) for d in _descendants(err) if d.validator == "type"
                        and list(d.absolute_path) == here
                        for k in ([d.validator_value] if isinstance(d.validator_value, str)
                                  else d.validator_value)})
        if kinds:
            return f"{F.show(value)} is not {_kinds(kinds)}", f"give {_kinds(kinds)}"
    return err.message, "see the ED-318 schema (skyfence/zones/schema/ed318)"


def _missing(err: Any) -> str | None:
    """The member a ``required`` error is about."""
    if err.validator != "required":
        return None
    m = re.match(r"^'(.*)' is a required property$", err.message)
    return m[1] if m else None


def _unexpected(err: Any) -> str | None:
    """The one member an ``additionalProperties`` error is about, if it is one."""
    if err.validator != "additionalProperties" or not isinstance(err.instance, dict):
        return None
    known = err.schema.get("properties", {}) if isinstance(err.schema, dict) else {}
    extra = [k for k in err.instance if k not in known]
    return str(extra[0]) if len(extra) == 1 else None


def _identifier(feature: object) -> str | None:
    if isinstance(feature, dict):
        props = feature.get("properties")
        if isinstance(props, dict) and isinstance(props.get("identifier"), str):
            return str(props["identifier"])
    return None


# -- building zones ------------------------------------------------------------------

def _zone(feature: Any, i: int, file: str | None) -> Zone:
    where = F.path("features", i)
    feature = F.mapping(feature, where)
    props = feature.get("properties")
    if props is None:
        raise Bad(F.path(where, "properties"), "the feature has no properties",
                  "give the ED-318 properties: identifier, country, type, variant, "
                  "zoneAuthority, …")
    props = F.mapping(props, F.path(where, "properties"))
    pw = F.path(where, "properties")
    ident = F.text(props.get("identifier"), F.path(pw, "identifier"), empty=False)
    kind = props.get("type")
    if not isinstance(kind, str) or kind not in _TYPES:
        raise Bad(F.path(pw, "type"), f"{F.show(kind)} is not an ED-318 zone type",
                  f"use one of {', '.join(_TYPES)}")
    geometry = feature.get("geometry")
    if geometry is None:
        raise Bad(F.path(where, "geometry"), "the feature has no geometry",
                  f"give a {_AREA_TYPES}")
    volumes = _volumes(geometry, F.path(where, "geometry"), None)
    authorities = props.get("zoneAuthority") or []
    authority = "; ".join(t for t in (F.pick_text(a.get("name")) for a in authorities
                                      if isinstance(a, dict)) if t)
    reason = props.get("reason") or []
    extra: dict[str, object] = {k: v for k, v in props.items() if k not in _MODELLED}
    if kind == "USPACE":
        extra["type"] = "USPACE"
    return Zone(
        id=ident,
        name=F.pick_text(props.get("name")),
        restriction=_TYPES[kind],
        volumes=tuple(volumes),
        applicability=_applicability(props.get("limitedApplicability") or [],
                                     F.path(pw, "limitedApplicability")),
        authority=authority,
        reason=tuple(str(r) for r in F.items(reason, F.path(pw, "reason"))),
        message=F.pick_text(props.get("message")),
        source=f"{file} (ed318)" if file else "",
        extra=extra,
    )


def _volumes(geometry: Any, where: str, inherited: Any) -> list[Volume]:
    geometry = F.mapping(geometry, where)
    kind = geometry.get("type")
    layer = geometry.get("layer", inherited)
    if kind == "GeometryCollection":
        out = []
        for k, member in enumerate(F.items(geometry.get("geometries"),
                                           F.path(where, "geometries"))):
            if member is None:
                raise Bad(F.path(where, "geometries", k), "a member geometry is null",
                          f"give a {_AREA_TYPES}, or remove it")
            out.extend(_volumes(member, F.path(where, "geometries", k), layer))
        if not out:
            raise Bad(F.path(where, "geometries"), "the GeometryCollection is empty",
                      f"give at least one {_AREA_TYPES}")
        return out
    lower, upper = _layer(layer, F.path(where, "layer"))
    coords = geometry.get("coordinates")
    cw = F.path(where, "coordinates")
    if kind == "Polygon":
        return [Volume(F.polygon(coords, cw), lower, upper)]
    if kind == "MultiPolygon":
        return [Volume(F.polygon(p, F.path(cw, k)), lower, upper)
                for k, p in enumerate(F.items(coords, cw))]
    if kind == "Point":
        extent = geometry.get("extent")
        ew = F.path(where, "extent")
        if not isinstance(extent, dict) or extent.get("subType") != "Circle":
            raise Bad(ew, "a Point zone needs extent {subType: Circle, radius}",
                      "add \"extent\": {\"subType\": \"Circle\", \"radius\": <metres>}")
        lon, lat = F.position(coords, cw)
        radius_m = F.number(extent.get("radius"), F.path(ew, "radius"))
        return [Volume(Circle(lon_deg=lon, lat_deg=lat, radius_m=radius_m), lower, upper)]
    raise Bad(F.path(where, "type"), f"a {F.show(kind)} geometry has no area, so it "
              "cannot bound a zone", f"give a {_AREA_TYPES}")


def _layer(layer: Any, where: str) -> tuple[Limit, Limit]:
    ground = Limit(0.0, HeightReference.AGL)
    if layer is None:
        return ground, Limit(math.inf, HeightReference.AGL)
    layer = F.mapping(layer, where)
    unit = layer.get("uom", "m")
    if unit not in ("m", "ft"):
        raise Bad(F.path(where, "uom"), f"{F.show(unit)} is not a unit", "use m or ft")

    def reference(name: str, needed: bool) -> HeightReference:
        ref = layer.get(name)
        if ref is None and not needed:
            return HeightReference.AGL
        if ref is None:
            side = name.removesuffix("Reference")
            raise Bad(F.path(where, name), f"the {side} limit has no {name}",
                      f"give {name}: AGL, AMSL or WGS84")
        if ref not in ("AGL", "AMSL", "WGS84"):
            raise Bad(F.path(where, name), f"{F.show(ref)} is not a vertical reference",
                      "give AGL, AMSL or WGS84")
        return HeightReference(ref)

    lower = ground
    if layer.get("lower") is not None:
        value = F.number(layer["lower"], F.path(where, "lower"))
        lower = Limit(F.length_m(value, unit), reference("lowerReference", True))
    if layer.get("upper") is not None:
        value = F.number(layer["upper"], F.path(where, "upper"))
        upper = Limit(F.length_m(value, unit), reference("upperReference", True))
    else:
        upper = Limit(math.inf, reference("upperReference", False))
    return lower, upper


def _applicability(periods: Any, where: str) -> tuple[Applicability, ...]:
    out = []
    for k, period in enumerate(F.items(periods, where)):
        pw = F.path(where, k)
        period = F.mapping(period, pw)
        start_t = end_t = None
        if period.get("startDateTime") is not None:
            start_t = F.date_time(period["startDateTime"], F.path(pw, "startDateTime"),
                                  local=None)
        if period.get("endDateTime") is not None:
            end_t = F.date_time(period["endDateTime"], F.path(pw, "endDateTime"), local=None)
        daily = []
        offsets: list[tuple[str, str | None]] = []
        for j, day in enumerate(F.items(period.get("schedule") or [], F.path(pw, "schedule"))):
            dw = F.path(pw, "schedule", j)
            day = F.mapping(day, dw)
            for event in ("startEvent", "endEvent"):
                if event in day:
                    raise Bad(F.path(dw, event), f"daylight events ({event} "
                              f"{F.show(day[event])}: sunrise, sunset or civil twilight) are "
                              "not supported yet",
                              "give startTime and endTime as clock times such as 06:30:00Z, "
                              "or leave this zone out")
            start_s, end_s = 0.0, DAY_S
            if day.get("startTime") is not None:
                start_s, tz = F.time_of_day(day["startTime"], F.path(dw, "startTime"),
                                            offset="required")
                offsets.append((F.path("schedule", j, "startTime"), tz))
            if day.get("endTime") is not None:
                end_s, tz = F.time_of_day(day["endTime"], F.path(dw, "endTime"),
                                          offset="required")
                offsets.append((F.path("schedule", j, "endTime"), tz))
            daily.append(DailyPeriod(days=F.days(day.get("day"), F.path(dw, "day")),
                                     start_s=start_s, end_s=end_s))
        tz = F.one_time_zone(offsets, F.path(pw, "schedule"))
        out.append(Applicability(start_t=start_t, end_t=end_t, daily=tuple(daily),
                                 timezone=tz))
    return tuple(out)
