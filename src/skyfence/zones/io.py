"""Reading a zone file: the format detected (or forced), the zones, and every problem.

Formats: ``geojson`` (skyfence's own, :mod:`skyfence.zones.geojson`), ``ed269``
(EUROCAE ED-269, :mod:`skyfence.zones.ed269`) and ``ed318`` (EUROCAE ED-318,
:mod:`skyfence.zones.ed318`). Detection, in this order:

- ED-269: a ``UASZoneList``, or ``features`` whose items have ``geometry`` as a list,
  or both ``restriction`` and ``applicability``;
- ED-318: a FeatureCollection whose features have ED-318 properties (``identifier``,
  or ``type`` with ``variant``) or geometries with a ``layer``;
- otherwise skyfence GeoJSON.

Problems never raise out of :func:`load_zones`: an unreadable file, invalid JSON or a
bad zone each come back as a :class:`ZoneError` in :attr:`ZoneLoad.problems`, next to
the zones that are good.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skyfence.zones.model import Zone, ZoneError

FORMATS = ("geojson", "ed269", "ed318")


@dataclass(frozen=True, slots=True)
class ZoneLoad:
    """What a zone file gave: the good zones, every problem (file order), and the format
    it was read as ("unknown" when it could not be read at all)."""

    zones: tuple[Zone, ...]
    problems: tuple[ZoneError, ...]
    format: str


def load_zones(path: str | os.PathLike[str], *, format: str | None = None) -> ZoneLoad:
    """Read a zone file. ``format``: "geojson", "ed269" or "ed318" to force one, None to
    detect it. Raises ZoneError only for an unknown ``format``."""
    _check_format(format)
    name = str(path)
    try:
        doc = read_json(Path(path))
    except ZoneError as err:
        return ZoneLoad(zones=(), problems=(err,), format=format or "unknown")
    return parse_zones(doc, file=name, format=format)


def load_zones_strict(path: str | os.PathLike[str], *, format: str | None = None
                      ) -> tuple[Zone, ...]:
    """The zones of a file that has no problem at all; else raises the first problem,
    saying how many others there are."""
    load = load_zones(path, format=format)
    if not load.problems:
        return load.zones
    first, more = load.problems[0], len(load.problems) - 1
    if not more:
        raise first
    raise ZoneError(f"{first.problem} (and {more} more problem{'s' if more > 1 else ''}; "
                    f"`skyfence zones check {path}` lists them all)",
                    zone=first.zone, field=first.field, file=first.file, fix=first.fix)


def parse_zones(doc: Any, *, file: str | None, format: str | None = None) -> ZoneLoad:
    """:func:`load_zones` on an already parsed JSON document (no I/O)."""
    _check_format(format)
    if not isinstance(doc, dict):
        return ZoneLoad(zones=(), problems=(ZoneError(
            f"the file holds a JSON {_json_kind(doc)}, not an object", file=file,
            fix="a zone file is a JSON object: a FeatureCollection (skyfence GeoJSON, "
                "ED-318) or an ED-269 object with a UASZoneList"),), format=format or "unknown")
    fmt = format or detect_format(doc)
    zones, problems = _parser(fmt)(doc, file=file)
    kept: list[Zone] = []
    seen: set[str] = set()
    for z in zones:
        if z.id in seen:
            problems.append(ZoneError(
                "another zone earlier in the file has this identifier; the first is kept "
                "and this one left out", zone=z.id, field="identifier", file=file,
                fix="give every zone a unique identifier"))
            continue
        seen.add(z.id)
        kept.append(z)
    return ZoneLoad(zones=tuple(kept), problems=tuple(problems), format=fmt)


def detect_format(doc: dict[str, Any]) -> str:
    """"ed269", "ed318" or "geojson" for a parsed zone file (see the module docstring)."""
    if "UASZoneList" in doc:
        return "ed269"
    features = doc.get("features")
    if not isinstance(features, list):
        return "geojson"
    items = [f for f in features if isinstance(f, dict)]
    if any(isinstance(f.get("geometry"), list) or ("restriction" in f and "applicability" in f)
           for f in items):
        return "ed269"
    if any(_looks_ed318(f) for f in items):
        return "ed318"
    return "geojson"


def _looks_ed318(feature: dict[str, Any]) -> bool:
    props = feature.get("properties")
    if isinstance(props, dict) and ("identifier" in props
                                    or ("type" in props and "variant" in props)):
        return True
    geometry = feature.get("geometry")
    if not isinstance(geometry, dict):
        return False
    members = geometry.get("geometries")
    return "layer" in geometry or (isinstance(members, list) and any(
        isinstance(g, dict) and "layer" in g for g in members))


def read_json(path: Path) -> Any:
    """The parsed JSON of a file; a ZoneError naming the file (and for bad JSON, the line
    and column) when it cannot be read."""
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ZoneError(f"cannot read the file: {err.strerror or err}", file=name,
                        fix="check the path and the file's permissions") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ZoneError(f"the file is not UTF-8 text (byte {err.start})", file=name,
                        fix="save it as UTF-8; zone files are JSON") from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as err:
        raise ZoneError(f"not valid JSON at line {err.lineno}, column {err.colno}: {err.msg}",
                        file=name, fix="correct the JSON there (a missing comma, quote or "
                        "bracket); a file cut short fails at its end") from None
    except _NonFinite as err:
        raise ZoneError(f"not valid JSON: {err}", file=name,
                        fix="give finite numbers; JSON has no NaN or Infinity") from None
    except (ValueError, RecursionError) as err:
        # Python's own limits: integers of over 4,300 digits, nesting deeper than the stack.
        raise ZoneError(f"not valid JSON: {err}", file=name,
                        fix="check that the file is the zone file you meant") from None


class _NonFinite(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _NonFinite(f"{name} is not a JSON number")


def _json_kind(value: object) -> str:
    kinds = ((list, "array"), (str, "string"), (bool, "boolean"), (int, "number"),
             (float, "number"))
    return next((k for t, k in kinds if isinstance(value, t)), "null")


def _check_format(format: str | None) -> None:
    if format is not None and format not in FORMATS:
        raise ZoneError(f"unknown zone file format {format!r}", field="format",
                        fix=f"use one of {', '.join(FORMATS)}, or none to detect it")


def _parser(fmt: str) -> Callable[..., tuple[list[Zone], list[ZoneError]]]:
    # Imported on use: ED-318 brings jsonschema, which the other formats do not need.
    if fmt == "ed269":
        from skyfence.zones.ed269 import parse_ed269
        return parse_ed269
    if fmt == "ed318":
        from skyfence.zones.ed318 import parse_ed318
        return parse_ed318
    from skyfence.zones.geojson import parse_geojson
    return parse_geojson
