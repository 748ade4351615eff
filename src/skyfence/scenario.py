"""Scenario directories: ``scenario.json``, ``detections.csv``, ``truth.csv``; and ``tracks.csv``.

This file format is a contract other tools rely on (see the README). Readers
validate everything and raise :class:`~skyfence.errors.InputError` naming the
file, line and field; they ignore unknown fields in ``scenario.json`` and keep
them so that a scenario round-trips.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from skyfence.errors import InputError
from skyfence.geo import Origin
from skyfence.types import (
    F64,
    GROUPS_CSV_SCHEMA,
    TRACKS_CSV_SCHEMA,
    TRUTH_CSV_SCHEMA,
    Detections,
    PartnerTracks,
)

SENSOR_KINDS = ("position", "radar", "radar2d", "bearing", "cooperative", "track")
POSITION_COLUMNS = ("east_m", "north_m", "up_m")
RADAR_COLUMNS = ("range_m", "azimuth_rad", "elevation_rad")
#: Columns only cooperative reports fill: who the target says it is, the accuracy it
#: reports (1σ, horizontal and vertical) and its ADS-B emitter category or Remote ID UA type.
COOPERATIVE_COLUMNS = ("identity", "std_h_m", "std_v_m", "category")
DETECTION_COLUMNS = ("t", "sensor", *POSITION_COLUMNS, *RADAR_COLUMNS)
DETECTION_COLUMNS_COOPERATIVE = (*DETECTION_COLUMNS, *COOPERATIVE_COLUMNS)
#: Columns only partner tracks fill: the velocity, the 6×6 covariance of (east, north,
#: up, v_east, v_north, v_up) as its 21 upper-triangle entries row by row, separated by
#: spaces, and the partner's track id. (Position and identity use the columns above.)
TRACK_COLUMNS = ("v_east_mps", "v_north_mps", "v_up_mps", "cov", "partner_track")
_TRIU = np.triu_indices(6)
#: What a bearing sensor is; ``rf`` (a direction finder on a drone's radio link) is
#: evidence for classification.
BEARING_MODALITIES = ("rf", "eo", "ir", "acoustic")
#: ``identity`` is ``scheme:value``; these schemes have a checked value format.
IDENTITY_SCHEMES = ("icao", "rid")


@dataclass(frozen=True, slots=True)
class Region:
    """The surveillance volume, ENU metres: (lo, hi) on each axis."""

    east_m: tuple[float, float]
    north_m: tuple[float, float]
    up_m: tuple[float, float]

    @property
    def volume_m3(self) -> float:
        return (
            (self.east_m[1] - self.east_m[0])
            * (self.north_m[1] - self.north_m[0])
            * (self.up_m[1] - self.up_m[0])
        )

    def to_json(self) -> dict[str, list[float]]:
        return {"east_m": list(self.east_m), "north_m": list(self.north_m), "up_m": list(self.up_m)}


@dataclass(frozen=True, slots=True)
class SensorSpec:
    """One sensor of a scenario.

    ``noise_std`` holds the 1σ noise of each measured component, in the order of
    ``columns``, padded with zeros to three: (east_m, north_m, up_m) for a
    position or cooperative sensor, (range_m, azimuth_rad, elevation_rad) for a
    radar, (range_m, azimuth_rad) for a 2-D radar, (azimuth_rad[, elevation_rad])
    for a bearing sensor. A cooperative sensor's default noise may be NaN: its
    rows then must carry their own accuracy.
    """

    id: str
    kind: str
    position_enu_m: tuple[float, float, float]
    pd: float
    noise_std: tuple[float, float, float]
    clutter_per_scan: float = 0.0
    max_range_m: float = math.inf
    min_elevation_rad: float = -math.pi / 2
    scan_period_s: float | None = None
    #: Bearing sensors: how many angles (1 azimuth, 2 azimuth and elevation) and what
    #: kind of sensor (one of ``BEARING_MODALITIES``).
    bearing_dim: int = 0
    modality: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        """Number of measured components."""
        return {"radar2d": 2, "bearing": self.bearing_dim}.get(self.kind, 3)

    @property
    def columns(self) -> tuple[str, ...]:
        """``detections.csv`` columns of a measurement, in ``z`` order."""
        if self.kind in ("position", "cooperative", "track"):
            return POSITION_COLUMNS
        if self.kind == "bearing":
            return RADAR_COLUMNS[1:1 + self.bearing_dim]
        return RADAR_COLUMNS[:self.dim]

    @property
    def R(self) -> F64:
        """(3, 3) noise covariance; unused components have unit variance."""
        var = np.ones(3)
        var[:self.dim] = np.asarray(self.noise_std[:self.dim], dtype=np.float64) ** 2
        return np.diag(var)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        out.update(
            {
                "id": self.id,
                "kind": self.kind,
                "position_enu_m": list(self.position_enu_m),
                "pd": self.pd,
            }
        )
        if self.kind in ("position", "cooperative", "track"):
            if not math.isnan(self.noise_std[0]):
                out["noise_std_m"] = list(self.noise_std)
        else:
            out["noise_std"] = dict(zip(self.columns, self.noise_std, strict=False))
        if self.modality is not None:
            out["modality"] = self.modality
        if self.clutter_per_scan:
            out["clutter_per_scan"] = self.clutter_per_scan
        if math.isfinite(self.max_range_m):
            out["max_range_m"] = self.max_range_m
        if self.min_elevation_rad > -math.pi / 2:
            out["min_elevation_rad"] = self.min_elevation_rad
        if self.scan_period_s is not None:
            out["scan_period_s"] = self.scan_period_s
        return out


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    origin: Origin
    sensors: tuple[SensorSpec, ...]
    region: Region | None = None
    scan_period_s: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def sensor_index(self) -> dict[str, int]:
        return {s.id: i for i, s in enumerate(self.sensors)}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        out["name"] = self.name
        out["origin"] = {
            "lat_deg": self.origin.lat_deg,
            "lon_deg": self.origin.lon_deg,
            "alt_m": self.origin.alt_m,
        }
        out["sensors"] = [s.to_json() for s in self.sensors]
        if self.region is not None:
            out["region"] = self.region.to_json()
        if self.scan_period_s is not None:
            out["scan_period_s"] = self.scan_period_s
        return out


# --------------------------------------------------------------------------- scenario.json


class _JsonReader:
    """Typed access to a parsed JSON document with errors that name the field path."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, path: str, problem: str, fix: str) -> InputError:
        return InputError(problem, file=self.file, field=path, fix=fix)

    def obj(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected an object, got {type(value).__name__}", "see README")
        return value

    def get(self, obj: Mapping[str, Any], key: str, path: str) -> Any:
        if key not in obj:
            raise self.fail(f"{path}{key}", "missing", "add it (see the scenario format in README)")
        return obj[key]

    def number(self, value: Any, path: str, *, positive: bool = False, lo: float | None = None,
               hi: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, f"expected a number, got {value!r}", "write a plain JSON number")
        v = float(value)
        if not math.isfinite(v):
            raise self.fail(path, f"{value!r} is not finite", "give a finite number")
        if positive and v <= 0:
            raise self.fail(path, f"{v} must be > 0", "give a positive value")
        if lo is not None and v < lo:
            raise self.fail(path, f"{v} is below {lo}", f"give a value in [{lo}, {hi}]")
        if hi is not None and v > hi:
            raise self.fail(path, f"{v} is above {hi}", f"give a value in [{lo}, {hi}]")
        return v

    def vec3(self, value: Any, path: str, *, positive: bool = False) -> tuple[float, float, float]:
        if not isinstance(value, list) or len(value) != 3:
            raise self.fail(path, f"expected a list of 3 numbers, got {value!r}", "write [e, n, u]")
        a, b, c = (self.number(v, f"{path}[{i}]", positive=positive) for i, v in enumerate(value))
        return (a, b, c)

    def interval(self, value: Any, path: str) -> tuple[float, float]:
        if not isinstance(value, list) or len(value) != 2:
            raise self.fail(path, f"expected [lo, hi], got {value!r}", "write two numbers")
        lo, hi = self.number(value[0], f"{path}[0]"), self.number(value[1], f"{path}[1]")
        if hi <= lo:
            raise self.fail(path, f"hi {hi} is not above lo {lo}", "swap or widen the bounds")
        return (lo, hi)


def parse_scenario(doc: Any, *, file: str = "scenario.json") -> Scenario:
    """Validate a parsed ``scenario.json`` document."""
    r = _JsonReader(file)
    top = r.obj(doc, "(top level)")
    name = r.get(top, "name", "")
    if not isinstance(name, str):
        raise r.fail("name", f"expected a string, got {name!r}", "give the scenario a name")
    o = r.obj(r.get(top, "origin", ""), "origin")
    origin = Origin(
        lat_deg=r.number(r.get(o, "lat_deg", "origin."), "origin.lat_deg", lo=-90, hi=90),
        lon_deg=r.number(r.get(o, "lon_deg", "origin."), "origin.lon_deg", lo=-180, hi=180),
        alt_m=r.number(r.get(o, "alt_m", "origin."), "origin.alt_m"),
    )
    sensors_doc = r.get(top, "sensors", "")
    if not isinstance(sensors_doc, list) or not sensors_doc:
        raise r.fail("sensors", "expected a non-empty list of sensors", "describe each sensor")
    sensors = []
    seen: set[str] = set()
    for i, s_doc in enumerate(sensors_doc):
        path = f"sensors[{i}]"
        s = r.obj(s_doc, path)
        sid = r.get(s, "id", f"{path}.")
        if not isinstance(sid, str) or not sid:
            raise r.fail(f"{path}.id", f"expected a non-empty string, got {sid!r}", "name it")
        if sid in seen:
            raise r.fail(f"{path}.id", f"duplicate sensor id {sid!r}",
                         "give each sensor its own id")
        seen.add(sid)
        kind = r.get(s, "kind", f"{path}.")
        if kind not in SENSOR_KINDS:
            raise r.fail(f"{path}.kind", f"unknown kind {kind!r}", f"use one of {SENSOR_KINDS}")
        pos = r.vec3(r.get(s, "position_enu_m", f"{path}."), f"{path}.position_enu_m")
        pd = r.number(r.get(s, "pd", f"{path}."), f"{path}.pd", lo=0.0, hi=1.0)
        bearing_dim, modality = 0, None
        known = {"noise_std_m", "noise_std", "modality"}
        if kind == "position" or (kind == "cooperative" and "noise_std_m" in s):
            noise = r.vec3(r.get(s, "noise_std_m", f"{path}."), f"{path}.noise_std_m",
                           positive=True)
        elif kind in ("cooperative", "track"):
            noise = (math.nan, math.nan, math.nan)  # each row gives its accuracy
        else:
            nd = r.obj(r.get(s, "noise_std", f"{path}."), f"{path}.noise_std")
            names: tuple[str, ...]
            if kind == "bearing":
                names = RADAR_COLUMNS[1:3] if "elevation_rad" in nd else RADAR_COLUMNS[1:2]
                bearing_dim = len(names)
                modality = s.get("modality")
                if modality not in BEARING_MODALITIES:
                    raise r.fail(f"{path}.modality", f"{modality!r} is not a bearing modality",
                                 f"say what the sensor is: one of {BEARING_MODALITIES}")
            else:
                names = RADAR_COLUMNS if kind == "radar" else RADAR_COLUMNS[:2]
            values = [r.number(r.get(nd, k, f"{path}.noise_std."), f"{path}.noise_std.{k}",
                               positive=True) for k in names]
            angles = [v for k, v in zip(names, values, strict=True) if k != "range_m"]
            if max(angles) > 0.5:
                raise r.fail(
                    f"{path}.noise_std",
                    f"angle noise {max(angles)} rad is over 28°",
                    "angle noise is in radians: convert degrees with math.radians",
                )
            padded = (*values, 0.0, 0.0)
            noise = (padded[0], padded[1], padded[2])
        clutter = r.number(s.get("clutter_per_scan", 0.0), f"{path}.clutter_per_scan", lo=0.0)
        max_range = (
            r.number(s["max_range_m"], f"{path}.max_range_m", positive=True)
            if "max_range_m" in s else math.inf
        )
        min_el = (
            r.number(s["min_elevation_rad"], f"{path}.min_elevation_rad",
                     lo=-math.pi / 2, hi=math.pi / 2)
            if "min_elevation_rad" in s else -math.pi / 2
        )
        period = (
            r.number(s["scan_period_s"], f"{path}.scan_period_s", positive=True)
            if "scan_period_s" in s else None
        )
        known |= {"id", "kind", "position_enu_m", "pd", "clutter_per_scan", "max_range_m",
                  "min_elevation_rad", "scan_period_s"}
        sensors.append(
            SensorSpec(
                id=sid, kind=kind, position_enu_m=pos, pd=pd, noise_std=noise,
                clutter_per_scan=clutter, max_range_m=max_range, min_elevation_rad=min_el,
                scan_period_s=period, bearing_dim=bearing_dim, modality=modality,
                extra={k: v for k, v in s.items() if k not in known},
            )
        )
    region = None
    if "region" in top:
        rg = r.obj(top["region"], "region")
        region = Region(
            east_m=r.interval(r.get(rg, "east_m", "region."), "region.east_m"),
            north_m=r.interval(r.get(rg, "north_m", "region."), "region.north_m"),
            up_m=r.interval(r.get(rg, "up_m", "region."), "region.up_m"),
        )
    period = (
        r.number(top["scan_period_s"], "scan_period_s", positive=True)
        if "scan_period_s" in top else None
    )
    extra = {k: v for k, v in top.items()
             if k not in {"name", "origin", "sensors", "region", "scan_period_s"}}
    return Scenario(name=name, origin=origin, sensors=tuple(sensors), region=region,
                    scan_period_s=period, extra=extra)


def read_scenario(directory: str | Path) -> Scenario:
    path = Path(directory) / "scenario.json"
    if not path.is_file():
        raise InputError("not found", file=str(path),
                         fix="give a scenario directory holding scenario.json")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", file=str(path), line=exc.lineno,
                         fix="fix the JSON syntax") from None
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", file=str(path), fix="save it as UTF-8") from None
    return parse_scenario(doc, file=str(path))


def write_scenario(directory: str | Path, scenario: Scenario) -> None:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / "scenario.json").write_text(json.dumps(scenario.to_json(), indent=2) + "\n",
                                     encoding="utf-8")


# --------------------------------------------------------------------------- CSV helpers


def _read_table(path: Path) -> tuple[list[str], NDArray[np.str_]]:
    """Header and cells (rows, columns) of a simple comma-separated file (no quoting)."""
    if not path.is_file():
        raise InputError("not found", file=str(path), fix="check the path")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", file=str(path), fix="save it as UTF-8") from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise InputError("empty file, no header", file=str(path), line=1,
                         fix="the first line names the columns")
    header = [h.strip() for h in lines[0].split(",")]
    body = lines[1:]
    # Blank trailing lines are harmless; blank lines in the middle are not data.
    while body and not body[-1].strip():
        body.pop()
    width = len(header)
    # One split over the whole body; the row-by-row check runs only when the count is off.
    cells = ",".join(body).split(",") if body else []
    if len(cells) != width * len(body):
        for i, line in enumerate(body):
            if line.count(",") + 1 != width:
                raise InputError(
                    f"{line.count(',') + 1} fields where the header has {width}", file=str(path),
                    line=i + 2, fix=f"every line needs exactly the columns {','.join(header)}",
                )
    return header, np.array(cells, dtype=str).reshape(len(body), width)


def _numeric_column(path: Path, header: list[str], rows: NDArray[np.str_], name: str,
                    *, allow_empty: bool = False) -> F64:
    raw = np.char.strip(rows[:, header.index(name)])
    empty = raw == ""
    if empty.any() and not allow_empty:
        line = int(np.argmax(empty)) + 2
        raise InputError("empty value", file=str(path), line=line, field=name,
                         fix="give a number")
    try:
        values = np.where(empty, "nan", raw).astype(np.float64)
    except ValueError:
        for i, s in enumerate(raw):
            try:
                float(s or "nan")
            except ValueError:
                raise InputError(f"{str(s)!r} is not a number", file=str(path), line=i + 2,
                                 field=name, fix="write a plain decimal number") from None
        raise
    bad = ~np.isfinite(values) & ~empty
    if bad.any():
        line = int(np.argmax(bad)) + 2
        raise InputError(f"{str(raw[line - 2])!r} is not a finite number", file=str(path),
                         line=line, field=name, fix="remove the row or give a real value")
    return values


def _check_header(path: Path, header: list[str], required: Sequence[str],
                  allowed: Sequence[str]) -> None:
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", file=str(path), line=1,
                         fix=f"the header needs {','.join(required)}")
    extra = [c for c in header if c not in allowed]
    if extra:
        raise InputError(f"unknown column(s) {', '.join(extra)}", file=str(path), line=1,
                         fix=f"columns allowed here: {','.join(allowed)}")
    dup = {c for c in header if header.count(c) > 1}
    if dup:
        raise InputError(f"duplicate column(s) {', '.join(sorted(dup))}", file=str(path),
                         line=1, fix="name each column once")


def _check_sorted(path: Path, t: F64) -> None:
    back = np.flatnonzero(np.diff(t) < 0)
    if back.size:
        i = int(back[0]) + 1
        raise InputError(
            f"time {t[i]!r} is earlier than the line before ({t[i - 1]!r})", file=str(path),
            line=i + 2, field="t", fix="sort the file by t (e.g. sort -t, -k1,1g)",
        )


# --------------------------------------------------------------------------- detections.csv


def read_detections(directory: str | Path, scenario: Scenario) -> Detections:
    """All detections of a scenario directory, in file order (sorted by ``t``)."""
    path = Path(directory) / "detections.csv"
    header, rows = _read_table(path)
    kinds = {s.kind for s in scenario.sensors}
    cooperative = bool(kinds & {"cooperative", "track"})
    required = ["t", "sensor"]
    for s in scenario.sensors:
        required += [c for c in s.columns if c not in required]
    if "cooperative" in kinds:
        required.append("identity")
    if "track" in kinds:
        required += [c for c in TRACK_COLUMNS if c not in required]
    _check_header(path, header, required, detection_columns(scenario))
    n = len(rows)
    t = _numeric_column(path, header, rows, "t")
    _check_sorted(path, t)
    sensor = _sensor_column(path, header, rows, scenario)
    values = {c: _numeric_column(path, header, rows, c, allow_empty=True)
              for c in (*POSITION_COLUMNS, *RADAR_COLUMNS) if c in header}
    z = np.zeros((n, 3))
    R = np.stack([s.R for s in scenario.sensors])[sensor] if n else np.empty((0, 3, 3))
    for i, spec in enumerate(scenario.sensors):  # over sensors, a handful
        mine = sensor == i
        if not mine.any():
            continue
        for j, c in enumerate(spec.columns):
            missing = mine & np.isnan(values[c])
            if missing.any():
                line = int(np.argmax(missing)) + 2
                raise InputError(f"empty for {spec.kind} sensor {spec.id!r}", file=str(path),
                                 line=line, field=c,
                                 fix=f"a {spec.kind} detection needs {','.join(spec.columns)}")
            z[mine, j] = values[c][mine]
            if c in RADAR_COLUMNS:
                _check_angle_values(path, c, values[c], mine)
    identity = category = np.full(n, "", dtype=np.str_)
    reported = None
    if cooperative:
        kind_of = np.array([s.kind for s in scenario.sensors])[sensor] if n \
            else np.empty(0, dtype=str)
        is_coop, is_track = kind_of == "cooperative", kind_of == "track"
        identity = _identity_column(path, header, rows, is_coop, is_track)
        if "category" in header:
            category = np.where(is_coop, np.char.strip(rows[:, header.index("category")]), "")
        _cooperative_accuracy(path, header, rows, scenario, sensor, is_coop, R)
        if "track" in kinds:
            reported = _partner_tracks(path, header, rows, is_track, z)
            R[is_track] = reported.P[is_track, :3, :3]
    return Detections(t=t, sensor=sensor, z=z, R=R, identity=identity, category=category,
                      reported=reported)


def detection_columns(scenario: Scenario) -> tuple[str, ...]:
    """The columns of ``detections.csv`` for the scenario's sensor kinds."""
    kinds = {s.kind for s in scenario.sensors}
    columns: tuple[str, ...] = DETECTION_COLUMNS
    if kinds & {"cooperative", "track"}:
        columns = DETECTION_COLUMNS_COOPERATIVE
    if "track" in kinds:
        columns = (*columns, *TRACK_COLUMNS)
    return columns


def _partner_tracks(path: Path, header: list[str], rows: NDArray[np.str_],
                    is_track: NDArray[np.bool_], z: F64) -> PartnerTracks:
    """State, covariance and reference of partner-track rows (zeros elsewhere)."""
    n = len(rows)
    out = PartnerTracks.zeros(n)
    out.x[:, :3] = z
    for j, c in enumerate(TRACK_COLUMNS[:3]):
        v = _numeric_column(path, header, rows, c, allow_empty=True)
        missing = is_track & np.isnan(v)
        if missing.any():
            line = int(np.argmax(missing)) + 2
            raise InputError("empty for a partner track", file=str(path), line=line, field=c,
                             fix="a partner track needs its velocity")
        out.x[is_track, 3 + j] = v[is_track]
    cells = np.char.strip(rows[is_track, header.index("cov")])
    where = np.flatnonzero(is_track)
    parts = np.char.split(cells)
    counts = np.array([len(p) for p in parts.tolist()], dtype=np.intp)
    if np.any(counts != 21):
        k = int(np.argmax(counts != 21))
        raise InputError(f"{int(counts[k])} numbers where the covariance needs 21",
                         file=str(path), line=int(where[k]) + 2, field="cov",
                         fix="give the 21 upper-triangle entries of the 6×6 covariance of "
                             "(east, north, up, v_east, v_north, v_up), row by row, "
                             "separated by spaces")
    try:
        flat = np.array(" ".join(cells.tolist()).split(), dtype=np.float64).reshape(-1, 21)
    except ValueError:
        for k, p in enumerate(parts.tolist()):
            try:
                np.array(p, dtype=np.float64)
            except ValueError:
                raise InputError(f"{' '.join(p)!r} holds something that is not a number",
                                 file=str(path), line=int(where[k]) + 2, field="cov",
                                 fix="write plain decimal numbers") from None
        raise
    P = np.zeros((flat.shape[0], 6, 6))
    P[:, _TRIU[0], _TRIU[1]] = flat
    P = np.triu(P) + np.swapaxes(np.triu(P, 1), 1, 2)
    finite = np.isfinite(flat).all(axis=1)
    spd = np.zeros(flat.shape[0], dtype=bool)
    spd[finite] = np.linalg.eigvalsh(P[finite]).min(axis=1) > 0
    if not spd.all():
        k = int(np.argmax(~spd))
        raise InputError("the covariance is not positive definite", file=str(path),
                         line=int(where[k]) + 2, field="cov",
                         fix="send the partner's covariance as is (symmetric, positive "
                             "variances, correlations within ±1)")
    out.P[is_track] = P
    ref = np.char.strip(rows[:, header.index("partner_track")])
    missing_ref = is_track & (ref == "")
    if missing_ref.any():
        line = int(np.argmax(missing_ref)) + 2
        raise InputError("empty for a partner track", file=str(path), line=line,
                         field="partner_track", fix="give the partner's track id")
    return PartnerTracks(x=out.x, P=out.P, ref=np.where(is_track, ref, ""))


def _sensor_column(path: Path, header: list[str], rows: NDArray[np.str_],
                   scenario: Scenario) -> NDArray[np.int32]:
    index = scenario.sensor_index()
    names = np.char.strip(rows[:, header.index("sensor")])
    uniq, inverse = np.unique(names, return_inverse=True)
    lookup = np.empty(len(uniq), dtype=np.int32)
    for k, name in enumerate(uniq):
        if name not in index:
            line = int(np.argmax(names == name)) + 2
            raise InputError(f"unknown sensor {str(name)!r}", file=str(path), line=line,
                             field="sensor",
                             fix=f"use an id from scenario.json: {', '.join(index)}")
        lookup[k] = index[name]
    return lookup[inverse].astype(np.int32) if len(rows) else np.empty(0, dtype=np.int32)


def _check_angle_values(path: Path, column: str, v: F64, rows: NDArray[np.bool_]) -> None:
    checks = {
        "range_m": (v < 0, "a negative range", "ranges are metres from the sensor, ≥ 0"),
        "azimuth_rad": (np.abs(v) > 2 * math.pi, "an azimuth beyond ±2π",
                        "azimuth is in radians (this looks like degrees: convert with "
                        "math.radians)"),
        "elevation_rad": (np.abs(v) > math.pi / 2 + 1e-9, "an elevation beyond ±π/2",
                          "elevation is in radians up from the horizontal (degrees? convert "
                          "with math.radians)"),
    }
    bad, problem, fix = checks[column]
    bad = bad & rows
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"{v[i]!r} is {problem}", file=str(path), line=i + 2, field=column,
                         fix=fix)


def _identity_column(path: Path, header: list[str], rows: NDArray[np.str_],
                     is_coop: NDArray[np.bool_], is_track: NDArray[np.bool_]
                     ) -> NDArray[np.str_]:
    """Identities of cooperative rows (required) and partner-track rows (optional)."""
    raw = (np.char.strip(rows[:, header.index("identity")]) if "identity" in header
           else np.full(len(rows), "", dtype=np.str_))
    carries = is_coop | (is_track & (raw != ""))
    ident = np.where(carries, raw, "")
    for value in np.unique(ident[carries]):  # over distinct identities, not rows
        scheme, _, key = str(value).partition(":")
        problem = None
        if not value:
            problem = "empty for a cooperative sensor"
        elif not key or not scheme.isidentifier() or not scheme.islower() or " " in key:
            problem = f"{str(value)!r} is not scheme:value"
        elif scheme == "icao" and (len(key) != 6 or any(ch not in "0123456789ABCDEF"
                                                         for ch in key)):
            problem = f"{str(value)!r} is not a 24-bit ICAO address"
        if problem:
            line = int(np.argmax(carries & (ident == value))) + 2
            raise InputError(problem, file=str(path), line=line, field="identity",
                             fix="a cooperative report names its target: icao:4840D6 "
                                 "(6 upper-case hex digits), rid:<Remote ID serial>, …")
    return ident


def _cooperative_accuracy(path: Path, header: list[str], rows: NDArray[np.str_],
                          scenario: Scenario, sensor: NDArray[np.int32],
                          is_coop: NDArray[np.bool_], R: F64) -> None:
    """Fill ``R`` (in place) of cooperative rows from their reported 1σ accuracy."""
    for name, axes in (("std_h_m", (0, 1)), ("std_v_m", (2,))):
        std = (_numeric_column(path, header, rows, name, allow_empty=True)
               if name in header else np.full(len(rows), np.nan))
        bad = is_coop & (std <= 0)
        if bad.any():
            line = int(np.argmax(bad)) + 2
            raise InputError(f"{std[line - 2]!r} is not a positive accuracy", file=str(path),
                             line=line, field=name, fix="give the reported 1σ error in metres")
        given = is_coop & ~np.isnan(std)
        for a in axes:
            R[given, a, a] = std[given] ** 2
        unknown = is_coop & np.isnan(R[:, axes[0], axes[0]])
        if unknown.any():
            line = int(np.argmax(unknown)) + 2
            spec = scenario.sensors[int(sensor[line - 2])]
            raise InputError(
                f"no accuracy for cooperative sensor {spec.id!r}", file=str(path), line=line,
                field=name, fix=f"fill {name} or give the sensor a noise_std_m in scenario.json")


def write_detections(directory: str | Path, scenario: Scenario, det: Detections) -> None:
    """Write ``detections.csv``; ``det`` must be sorted by time.

    The cooperative columns are written only when the scenario has a cooperative
    sensor, so that files of other scenarios keep their shape.
    """
    columns = detection_columns(scenario)
    n = len(det)
    # Every cell of every row as an object, and which cells each row fills.
    cells = np.empty((n, len(columns)), dtype=object)
    used = np.zeros((n, len(columns)), dtype=bool)
    cells[:, 0], cells[:, 1] = det.t.tolist(), np.array([s.id for s in scenario.sensors],
                                                        dtype=object)[det.sensor]
    used[:, :2] = True
    at = {c: k for k, c in enumerate(columns)}
    formats = []
    for i, spec in enumerate(scenario.sensors):  # over sensors, a handful
        mine = det.sensor == i
        fmt = ["%r", "%s"] + [""] * (len(columns) - 2)
        for j, c in enumerate(spec.columns):
            cells[mine, at[c]] = det.z[mine, j].tolist()
            used[mine, at[c]] = True
            fmt[at[c]] = "%r"  # the shortest text that reads back to the same float
        if spec.kind == "cooperative":
            cells[mine, at["identity"]] = det.identity[mine].tolist()
            cells[mine, at["std_h_m"]] = np.sqrt(det.R[mine, 0, 0]).tolist()
            cells[mine, at["std_v_m"]] = np.sqrt(det.R[mine, 2, 2]).tolist()
            cells[mine, at["category"]] = det.category[mine].tolist()
            used[mine, at["identity"]:at["category"] + 1] = True
            fmt[at["identity"]:at["category"] + 1] = ["%s", "%r", "%r", "%s"]
        if spec.kind == "track" and det.reported is not None:
            rep = det.reported
            cells[mine, at["identity"]] = det.identity[mine].tolist()
            for j, c in enumerate(TRACK_COLUMNS[:3]):
                cells[mine, at[c]] = rep.x[mine, 3 + j].tolist()
            upper = rep.P[mine][:, _TRIU[0], _TRIU[1]]
            cells[mine, at["cov"]] = [" ".join(map(repr, r)) for r in upper.tolist()]
            cells[mine, at["partner_track"]] = rep.ref[mine].tolist()
            for c in ("identity", *TRACK_COLUMNS):
                used[mine, at[c]] = True
                fmt[at[c]] = "%r" if c.endswith("_mps") else "%s"
        formats.append(",".join(fmt) + "\n")
    row_formats: list[str] = np.array(formats, dtype=object)[det.sensor].tolist()
    text = "".join(row_formats) % tuple(cells[used].tolist())
    Path(directory, "detections.csv").write_text(",".join(columns) + "\n" + text,
                                                 encoding="utf-8")


# --------------------------------------------------------------------------- truth.csv, tracks.csv


@dataclass(frozen=True, slots=True)
class StateTable:
    """Rows of ``truth.csv`` or ``tracks.csv``: time, object id, ENU state (n, 6)."""

    t: F64
    id: NDArray[np.int64]
    x: F64

    def __len__(self) -> int:
        return int(self.t.shape[0])


def _read_state_table(path: Path, id_column: str, allowed: Sequence[str]) -> StateTable:
    header, rows = _read_table(path)
    state_cols = ("east_m", "north_m", "up_m", "v_east_mps", "v_north_mps", "v_up_mps")
    required = ("t", id_column, *state_cols)
    _check_header(path, header, required, allowed)
    t = _numeric_column(path, header, rows, "t")
    _check_sorted(path, t)
    ids = _numeric_column(path, header, rows, id_column)
    if np.any(ids != np.round(ids)):
        line = int(np.argmax(ids != np.round(ids))) + 2
        raise InputError("not an integer", file=str(path), line=line, field=id_column,
                         fix="ids are whole numbers")
    x = np.stack([_numeric_column(path, header, rows, c) for c in state_cols], axis=1) \
        if len(rows) else np.empty((0, 6))
    return StateTable(t=t, id=ids.astype(np.int64), x=x)


def read_truth(directory: str | Path) -> StateTable | None:
    path = Path(directory) / "truth.csv"
    if not path.exists():
        return None
    return _read_state_table(path, "target", TRUTH_CSV_SCHEMA.names)


def read_tracks_csv(path: str | Path) -> StateTable:
    return _read_state_table(Path(path), "track", TRACKS_CSV_SCHEMA.names)


_STATE_ROW = "%.6f,%d,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f"


def _format_table(row_format: str, columns: Sequence[NDArray[Any]]) -> str:
    """Rows of text, one ``row_format % row`` per row, formatted in one pass.

    One ``%`` over the whole table instead of one per row: the file edges
    write hundreds of thousands of rows. Fixed decimals keep files diffable
    and byte-identical between runs.
    """
    n = len(columns[0])
    if n == 0:
        return ""
    flat = np.empty((n, len(columns)), dtype=object)
    for j, c in enumerate(columns):
        flat[:, j] = c.tolist()
    return ((row_format + "\n") * n) % tuple(flat.ravel().tolist())


def write_truth(directory: str | Path, table: StateTable) -> None:
    text = _format_table(_STATE_ROW, [table.t, table.id, *table.x.T])
    Path(directory, "truth.csv").write_text(",".join(TRUTH_CSV_SCHEMA.names) + "\n" + text,
                                            encoding="utf-8")


class TracksCsvWriter:
    """Streams ``tracks.csv`` rows as the tracker produces them, and ``groups.csv``
    beside it when given a path for it."""

    def __init__(self, path: str | Path, *, groups_path: str | Path | None = None) -> None:
        self._f = Path(path).open("w", encoding="utf-8")  # noqa: SIM115 (closed in close())
        self._f.write(",".join(TRACKS_CSV_SCHEMA.names) + "\n")
        self._g = None
        if groups_path is not None:
            self._g = Path(groups_path).open("w", encoding="utf-8")  # noqa: SIM115
            self._g.write(",".join(GROUPS_CSV_SCHEMA.names) + "\n")

    def write(self, t: float, ids: NDArray[np.int64], x: F64, status: Sequence[str],
              pos_std_m: F64, *, class_name: NDArray[np.str_] | None = None,
              class_p: F64 | None = None, identity: NDArray[np.str_] | None = None,
              flags: NDArray[np.str_] | None = None,
              group: NDArray[np.int64] | None = None) -> None:
        """One scan's rows; columns not given are left empty."""
        n = len(ids)
        blank = np.full(n, "", dtype=object)

        def text(v: NDArray[Any] | None) -> NDArray[Any]:
            return blank if v is None else np.asarray(v, dtype=object)

        prob = blank if class_p is None else np.char.mod("%.3f", class_p).astype(object)
        grp = blank if group is None else np.where(group >= 0, group.astype(str), "")
        self._f.write(_format_table(
            _STATE_ROW + ",%s,%.3f,%s,%s,%s,%s,%s",
            [np.full(n, t), ids, *x.T, np.asarray(status, dtype=object), pos_std_m,
             text(class_name), prob, text(identity), text(flags), np.asarray(grp, dtype=object)]))

    def write_groups(self, t: float, group: NDArray[np.int64], count: NDArray[np.int64],
                     centroid: F64, velocity: F64, extent_m: F64) -> None:
        if self._g is None:
            raise ValueError("this writer has no groups.csv")
        self._g.write(_format_table(
            "%.6f,%d,%d,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f",
            [np.full(len(group), t), group, count, *centroid.T, velocity[:, 0], velocity[:, 1],
             extent_m]))

    def close(self) -> None:
        self._f.close()
        if self._g is not None:
            self._g.close()

    def __enter__(self) -> TracksCsvWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
