"""Field readers shared by the zone importers: JSON paths, numbers, times and days.

Each reader either returns a value or raises :class:`Bad`, which the importer turns
into a :class:`ZoneError` naming the zone and the field. Nothing here does I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, TypeVar

from skyfence.zones.model import DAY_S, FT_M, WEEKDAYS, Polygon, ZoneError, time_zone


class Bad(Exception):  # a signal inside the readers; callers get ZoneError
    """One field's problem: where (a JSON path), what, and the fix."""

    def __init__(self, where: str, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.where = where
        self.problem = problem
        self.fix = fix

    def error(self, *, zone: str | None, file: str | None) -> ZoneError:
        return ZoneError(self.problem, zone=zone, field=self.where, file=file, fix=self.fix)


T = TypeVar("T")


class Problems:
    """Collects :class:`Bad` from independent parts of one zone, so that one reading
    lists all of them instead of stopping at the first."""

    def __init__(self) -> None:
        self.found: list[Bad] = []

    def run(self, read: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        try:
            return read(*args, **kwargs)
        except Bad as bad:
            self.found.append(bad)
            return None

    def errors(self, *, zone: str | None, file: str | None) -> list[ZoneError]:
        return [b.error(zone=zone, file=file) for b in self.found]


def path(*parts: str | int) -> str:
    """``features``, 0, ``properties`` → ``features[0].properties``."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif p.startswith("["):
            out += p
        else:
            out += f".{p}" if out else p
    return out


def show(value: object, limit: int = 60) -> str:
    """A JSON value as an operator would recognise it, cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def number(value: object, where: str, *, strings: bool = False) -> float:
    """A finite float from a JSON number (or, if ``strings``, a numeric string)."""
    if isinstance(value, bool):
        raise Bad(where, f"{show(value)} is not a number", "give a number")
    if strings and isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise Bad(where, f"{show(value)} is not a number",
                      "give a number such as 120 or \"120\"") from None
    if not isinstance(value, int | float):
        raise Bad(where, f"{show(value)} is not a number", "give a number")
    try:
        x = float(value)
    except OverflowError:
        x = math.inf
    if not math.isfinite(x):
        raise Bad(where, f"{show(value)} is not a finite number", "give a finite number")
    return x


def length_m(value: float, unit: str) -> float:
    """Metres from a value in ``unit`` ("m" or "ft")."""
    return value * FT_M if unit == "ft" else value


def text(value: object, where: str, *, empty: bool = True) -> str:
    if not isinstance(value, str):
        raise Bad(where, f"{show(value)} is not a string", "give a string")
    if not empty and not value.strip():
        raise Bad(where, "the string is empty", "give a non-empty string")
    return value


def items(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise Bad(where, f"{show(value)} is not a list", "give a JSON array [...]")
    return value


def mapping(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Bad(where, f"{show(value)} is not an object", "give a JSON object {...}")
    return value


_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2})(\.\d+)?)?(?:(Z)|([+-]\d{2}):?(\d{2}))?",
                   re.IGNORECASE)


def time_of_day(value: object, where: str, *, offset: str) -> tuple[float, str | None]:
    """Seconds after midnight and the offset ("UTC", "+01:00") of ``hh:mm[:ss[.f]]``
    with an optional ``Z`` or ``±hh:mm``. ``offset``: "required", "optional" or
    "forbidden". 24:00 is the end of the day."""
    example = {"required": "16:00:00Z or 16:00:00+01:00", "optional": "16:00:00Z",
               "forbidden": "16:00"}[offset]
    if not isinstance(value, str):
        raise Bad(where, f"{show(value)} is not a time of day", f"give a time such as {example}")
    m = _TIME.fullmatch(value.strip())
    if m is None:
        raise Bad(where, f"{show(value)} is not a time of day", f"give a time such as {example}")
    h, mi = int(m[1]), int(m[2])
    s = float((m[3] or "0") + (m[4] or ""))
    if not (h < 24 and mi < 60 and s < 60) and not (h == 24 and mi == 0 and s == 0):
        raise Bad(where, f"{show(value)} is not a time of day",
                  "hours 00–23 (24:00 for the end of the day), minutes and seconds 00–59")
    tz: str | None = None
    if m[5]:
        tz = "UTC"
    elif m[6]:
        if int(m[6][1:]) > 23 or int(m[7]) > 59:
            raise Bad(where, f"{show(value)} has an impossible UTC offset",
                      "give an offset between -23:59 and +23:59")
        tz = "UTC" if int(m[6][1:]) == 0 and int(m[7]) == 0 else f"{m[6]}:{m[7]}"
    if tz is None and offset == "required":
        raise Bad(where, f"{show(value)} has no time zone",
                  "add Z for UTC or an offset such as +01:00 (16:00:00Z)")
    if tz is not None and offset == "forbidden":
        raise Bad(where, f"{show(value)} carries a time zone",
                  "give the local time alone (16:00) and the zone in 'timezone'")
    return h * 3600.0 + mi * 60.0 + s, tz


_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?"
                        r"(Z|[+-]\d{2}:?\d{2})?", re.IGNORECASE)


def date_time(value: object, where: str, *, local: tzinfo | None) -> float:
    """Epoch seconds (UTC) of an ISO 8601 date-time. One without an offset is taken in
    ``local``; with ``local`` None it must carry one."""
    fix = "give an ISO 8601 date-time such as 2025-06-01T08:00:00Z"
    if not isinstance(value, str) or not _DATE_TIME.fullmatch(value.strip()):
        raise Bad(where, f"{show(value)} is not a date-time", fix)
    try:
        dt = datetime.fromisoformat(value.strip().upper().replace("Z", "+00:00"))
    except ValueError:
        raise Bad(where, f"{show(value)} is not a valid date-time", fix) from None
    if dt.tzinfo is None:
        if local is None:
            raise Bad(where, f"{show(value)} has no time zone",
                      "add Z for UTC or an offset such as +01:00")
        dt = dt.replace(tzinfo=local)
    try:
        return dt.timestamp()
    except (OverflowError, ValueError):
        raise Bad(where, f"{show(value)} is out of range", fix) from None


def rfc3339_date_time(value: object) -> bool:
    """True for an RFC 3339 date-time (offset required), the schema's ``date-time``, and
    for anything not a string (the schema's ``type`` judges those)."""
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
                        value, flags=re.IGNORECASE):
        return False
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def rfc3339_time(value: object) -> bool:
    """True for an RFC 3339 full-time (``16:00:00Z``, ``08:30:00+01:00``) and for anything
    not a string."""
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", value,
                        flags=re.IGNORECASE):
        return False
    return rfc3339_date_time("1970-01-01T" + value)


def days(value: object, where: str) -> frozenset[int]:
    """Weekday numbers (0 = Monday) from a list of MON … SUN / ANY (or one name)."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list):
        raise Bad(where, f"{show(value)} is not a list of days",
                  f"give a list of {', '.join(WEEKDAYS)} or ANY")
    out: set[int] = set()
    for k, name in enumerate(names):
        day = name.strip().upper() if isinstance(name, str) else name
        if day == "ANY":
            out.update(range(7))
        elif day in WEEKDAYS:
            out.add(WEEKDAYS.index(day))
        else:
            raise Bad(path(where, k) if isinstance(value, list) else where,
                      f"{show(name)} is not a day of the week",
                      f"use {', '.join(WEEKDAYS)} or ANY")
    return frozenset(out)


def day_names(days_: Iterable[int]) -> list[str]:
    """The inverse of :func:`days`: ``["ANY"]`` for the whole week."""
    d = sorted(set(days_))
    return ["ANY"] if d == list(range(7)) else [WEEKDAYS[k] for k in d]


def clock(second: float) -> str:
    """``hh:mm``, ``hh:mm:ss`` or ``hh:mm:ss.ffffff`` of seconds after midnight."""
    whole = math.floor(second)
    h, rest = divmod(int(whole), 3600)
    m, s = divmod(rest, 60)
    frac = second - whole
    if frac:
        return f"{h:02d}:{m:02d}:{s + frac:09.6f}"
    return f"{h:02d}:{m:02d}:{s:02d}" if s else f"{h:02d}:{m:02d}"


def iso(t: float) -> str:
    """ISO 8601 UTC of epoch seconds, to the microsecond, ``Z`` for UTC."""
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=round(t * 1e6))
    return dt.isoformat().replace("+00:00", "Z")


def one_time_zone(found: Sequence[tuple[str, str | None]], where: str,
                  default: str = "UTC") -> str:
    """The one time zone of a period's times, given (field, offset or None) pairs; times
    without one follow the others (or ``default``)."""
    zones = {tz for _, tz in found if tz is not None}
    if len(zones) > 1:
        listed = ", ".join(f"{f} {tz}" for f, tz in found if tz is not None)
        raise Bad(where, f"the daily times use different time zones ({listed})",
                  "give every time of one period in the same offset (or all in Z)")
    return zones.pop() if zones else default


def check_time_zone(name: object, where: str) -> str:
    name = text(name, where, empty=False)
    try:
        time_zone(name)
    except ZoneError as err:
        raise Bad(where, err.problem, err.fix or "") from None
    return name


def pick_text(value: object) -> str:
    """The English text of a list of ``{text, lang}`` (``en``, ``en-GB``, …), else the
    first; a plain string as it is; "" for anything else."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        return ""
    texts = [v for v in value if isinstance(v, dict) and isinstance(v.get("text"), str)]
    for v in texts:
        lang = v.get("lang")
        if isinstance(lang, str) and lang.lower().split("-")[0] == "en":
            return str(v["text"])
    return str(texts[0]["text"]) if texts else ""


def whole_day(start_s: float, end_s: float) -> bool:
    return start_s == 0.0 and end_s == DAY_S


def position(value: Any, where: str) -> tuple[float, float]:
    """A GeoJSON position: (lon_deg, lat_deg)."""
    p = items(value, where)
    if len(p) < 2:
        raise Bad(where, f"{show(value)} is not a position",
                  "give [longitude, latitude] in degrees")
    return number(p[0], path(where, 0)), number(p[1], path(where, 1))


def polygon(value: Any, where: str) -> Polygon:
    """GeoJSON Polygon coordinates: rings of positions."""
    rings = []
    for r, ring in enumerate(items(value, where)):
        rw = path(where, r)
        rings.append(tuple(position(p, path(rw, k)) for k, p in enumerate(items(ring, rw))))
    return Polygon(rings=tuple(rings))
