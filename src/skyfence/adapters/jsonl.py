"""JSON Lines: skyfence's generic detection format, for any sensor that speaks nothing
else.

One JSON object per line (UTF-8, ``\\n``-terminated), naming a sensor of the node's
sensor list and giving that sensor's measurement, with units in the field names:

- ``t``: Unix seconds (number) or ISO 8601 with an offset (``2026-11-27T14:00:00.25Z``);
- ``sensor``: the sensor's id;
- by the sensor's kind:

  ============  ==========================================================
  radar         ``range_m``, ``azimuth_deg`` | ``azimuth_rad``, ``elevation_deg`` |
                ``elevation_rad``
  radar2d       ``range_m``, ``azimuth_deg`` | ``azimuth_rad``
  bearing       ``azimuth_*``, and ``elevation_*`` for a 2-angle sensor
  position      ``east_m``, ``north_m``, ``up_m`` (the node's ENU frame) or
                ``lat_deg``, ``lon_deg``, ``height_m`` (WGS84 ellipsoid)
  cooperative   as position, plus ``identity`` (``icao:4840D6``, ``rid:…``),
                and ``category`` (ADS-B emitter category or Remote ID UA type)
  ============  ==========================================================

- optional 1σ noise overriding the sensor's: ``std_range_m``, ``std_azimuth_deg`` |
  ``_rad``, ``std_elevation_deg`` | ``_rad``; for positions ``std_h_m``, ``std_v_m``
  (a cooperative sensor without a stated noise needs them on every line).

Azimuths are clockwise from true north. A line that breaks a rule is rejected with
its line number, offset, field and the fix; the lines around it are kept.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from skyfence.adapters.base import Counters, Message, Rejected
from skyfence.scenario import Scenario
from skyfence.types import Detections

#: Lines longer than this are rejected unread (a peer sending one endless line).
MAX_LINE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class JsonDetection:
    """One accepted line: the sensor's index, its measurement ``z`` (3,) in the sensor's
    native frame (SI, radians; unused components 0) and its noise variances (3,)."""

    t: float
    sensor: int
    sensor_id: str
    z: tuple[float, float, float]
    var: tuple[float, float, float]
    identity: str = ""
    category: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"t": self.t, "sensor": self.sensor_id, "z": list(self.z),
                "std": [math.sqrt(v) for v in self.var], "identity": self.identity,
                "category": self.category}


class _Bad(Exception):
    """A field's problem, a signal inside the reader: never seen outside."""

    def __init__(self, field: str, problem: str, fix: str) -> None:
        super().__init__(f"field {field!r}: {problem} — {fix}")


class JsonlDecoder:
    """A StreamDecoder of JSON Lines detections for the sensors of ``scenario``."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self._index = scenario.sensor_index()
        self.counters = Counters()
        self._buf = b""
        self._offset = 0  # stream offset of self._buf[0]
        self._line = 1
        self._skipping = False  # inside an over-long line, until its end

    def feed(self, data: bytes) -> list[Message | Rejected]:
        self.counters.bytes_in += len(data)
        buf = self._buf + data if self._buf else data
        out: list[Message | Rejected] = []
        pos = 0  # scan by index: slicing the buffer per line would copy it per line
        while True:
            end = buf.find(b"\n", pos)
            if end < 0:
                break
            raw = buf[pos:end]
            start, line = self._offset + pos, self._line
            self._line += 1
            pos = end + 1
            if self._skipping:
                self._skipping = False
                continue
            if raw.strip():
                out.append(self._decode(raw, start, line))
        self._offset += pos
        rest = buf[pos:]
        if len(rest) > MAX_LINE_BYTES and not self._skipping:
            out.append(self._reject(self._offset, f"line {self._line}: longer than "
                                    f"{MAX_LINE_BYTES} bytes", rest))
            self._skipping = True
        if self._skipping:
            self._offset += len(rest)
            rest = b""
        self._buf = rest
        return out

    def close(self) -> list[Message | Rejected]:
        out: list[Message | Rejected] = []
        if self._buf.strip() and not self._skipping:
            out.append(self._decode(self._buf, self._offset, self._line))
        self._buf = b""
        return out

    def _reject(self, offset: int, reason: str, raw: bytes) -> Rejected:
        self.counters.reject(reason.split(": ", 1)[-1])
        return Rejected(offset=offset, reason=reason, data=raw[:64])

    def _decode(self, raw: bytes, offset: int, line: int) -> Message | Rejected:
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            return self._reject(offset, f"line {line}: not JSON ({err})", raw)
        if not isinstance(obj, dict):
            return self._reject(offset, f"line {line}: not a JSON object", raw)
        try:
            det = self._detection(obj)
        except _Bad as err:
            return self._reject(offset, f"line {line}: {err}", raw)
        self.counters.accepted += 1
        return det

    def _detection(self, obj: dict[str, Any]) -> JsonDetection:
        t = _time(obj.get("t"))
        sid = obj.get("sensor")
        if not isinstance(sid, str) or sid not in self._index:
            raise _Bad("sensor", f"{sid!r} is not one of this node's sensors",
                       f"use one of {', '.join(sorted(self._index))}")
        k = self._index[sid]
        spec = self.scenario.sensors[k]
        noise = list(spec.noise_std)
        identity, category = "", ""
        if spec.kind in ("radar", "radar2d", "bearing"):
            names = {"radar": ("range_m", "azimuth", "elevation"),
                     "radar2d": ("range_m", "azimuth")}.get(
                spec.kind, ("azimuth", "elevation")[:spec.bearing_dim])
            z = [_number(obj, n) if n.endswith("_m") else _angle(obj, n) for n in names]
            for j, n in enumerate(names):
                std = (_optional(obj, f"std_{n}") if n.endswith("_m")
                       else _optional_angle(obj, f"std_{n}"))
                if std is not None:
                    noise[j] = std
            if names[0] == "range_m" and z[0] <= 0.0:
                raise _Bad("range_m", f"{z[0]:g} is not a positive range", "give metres > 0")
        else:
            z = self._position(obj)
            sh, sv = _optional(obj, "std_h_m"), _optional(obj, "std_v_m")
            if sh is not None:
                noise[0] = noise[1] = sh
            if sv is not None:
                noise[2] = sv
            if spec.kind == "cooperative":
                identity = obj.get("identity", "")
                if not isinstance(identity, str) or ":" not in identity:
                    raise _Bad("identity", f"{identity!r} is not an identity",
                                "give scheme:value, e.g. icao:4840D6 or rid:MFG1A0123456789")
                cat = obj.get("category", "")
                category = str(cat) if isinstance(cat, str | int) else ""
        dim = spec.dim
        var = [float(noise[j]) ** 2 if j < dim else 1.0 for j in range(3)]
        if any(not math.isfinite(v) or v <= 0.0 for v in var[:dim]):
            raise _Bad("std", "no usable noise for this measurement",
                       "give std_* fields (the sensor states none)")
        zz = [*z, 0.0, 0.0, 0.0][:3]
        return JsonDetection(t=t, sensor=k, sensor_id=sid, z=(zz[0], zz[1], zz[2]),
                             var=(var[0], var[1], var[2]), identity=identity,
                             category=category)

    def _position(self, obj: dict[str, Any]) -> list[float]:
        if "lat_deg" in obj or "lon_deg" in obj:
            lat, lon = _number(obj, "lat_deg"), _number(obj, "lon_deg")
            if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 360.0):
                raise _Bad("lat_deg", f"({lat:g}, {lon:g}) is not a latitude, longitude",
                           "give degrees, latitude in −90…90")
            h = _number(obj, "height_m")
            enu = self.scenario.origin.geodetic_to_enu(lat, lon, h)
            return [float(enu[0]), float(enu[1]), float(enu[2])]
        return [_number(obj, n) for n in ("east_m", "north_m", "up_m")]


def _time(v: Any) -> float:
    if isinstance(v, bool):
        raise _Bad("t", "true/false is not a time", "give Unix seconds or ISO 8601")
    if isinstance(v, int | float):
        if not math.isfinite(v):
            raise _Bad("t", f"{v} is not a time", "give Unix seconds")
        return float(v)
    if isinstance(v, str):
        try:
            dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise _Bad("t", f"{v!r} is not ISO 8601", "e.g. 2026-11-27T14:00:00.25Z") from None
        if dt.tzinfo is None:
            raise _Bad("t", f"{v!r} has no time zone", "end it with Z (UTC) or an offset")
        return dt.timestamp()
    raise _Bad("t", "missing or not a time", "give Unix seconds or ISO 8601")


def _number(obj: dict[str, Any], name: str) -> float:
    v = obj.get(name)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise _Bad(name, "missing or not a finite number" if v is None else f"{v!r} is not a "
                   "finite number", f"give {name} as a number")
    return float(v)


def _optional(obj: dict[str, Any], name: str) -> float | None:
    return _number(obj, name) if name in obj else None


def _angle(obj: dict[str, Any], stem: str) -> float:
    deg, rad = f"{stem}_deg", f"{stem}_rad"
    if (deg in obj) == (rad in obj):
        raise _Bad(deg, "give the angle once", f"give either {deg} or {rad}")
    return math.radians(_number(obj, deg)) if deg in obj else _number(obj, rad)


def _optional_angle(obj: dict[str, Any], stem: str) -> float | None:
    if f"{stem}_deg" in obj or f"{stem}_rad" in obj:
        return _angle(obj, stem)
    return None


def jsonl_detections(messages: Sequence[JsonDetection]) -> Detections:
    """Accepted lines as one Detections batch (in the given order)."""
    n = len(messages)
    if n == 0:
        return Detections.empty()
    var = np.array([m.var for m in messages], dtype=np.float64)
    R = np.zeros((n, 3, 3))
    R[:, [0, 1, 2], [0, 1, 2]] = var
    return Detections(
        t=np.array([m.t for m in messages], dtype=np.float64),
        sensor=np.array([m.sensor for m in messages], dtype=np.int32),
        z=np.array([m.z for m in messages], dtype=np.float64), R=R,
        identity=np.array([m.identity for m in messages], dtype=np.str_),
        category=np.array([m.category for m in messages], dtype=np.str_))
