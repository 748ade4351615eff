"""Field-level release: how much of each field a partner may have.

Which data a partner receives is decided by the release lists
(``skyfence.node.partners``); a :class:`FieldPolicy` decides how precisely, for
everything that partner receives from a node — picture, stream, history, alerts,
outputs and federation:

- ``round_m``: positions snapped to a grid of that size — latitude and longitude
  cells of ``round_m`` on the ground, heights to multiples of ``round_m`` — and the
  grid's variance, ``round_m²/12``, added to each position variance, so that a
  receiver weighs them for what they are. A group's centroid is snapped alike and
  its extent given to the nearest multiple of ``round_m``; distances in an alert's
  reason (``"… 230 m from its edge"``) and the classifier's height evidence too.
- ``round_mps``: velocity components (ENU, or ECEF in a federation message) to
  multiples of ``round_mps``, ``round_mps²/12`` added to their variances; speeds in
  reasons alike.
- ``identity = false``: no identity (``icao:…`` / ``rid:…``): the track field is
  empty, and an identity named in an alert's reason is replaced by "a cooperative
  report" (CoT callsigns and remarks, GeoJSON properties come from the same field).
  Flags stay: ``dark``, ``cooperative_only`` and ``spoof_suspect`` say *that* a
  track broadcasts an identity, or does not, never *which*.

The grid is fixed on the earth: the longitude step is taken at the snapped
latitude, so that a snapped position says nothing finer than its cell. Everything
here is a function of what it is given alone, vectorised over rows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from skyfence.alerts import AlertEvent
from skyfence.errors import InputError
from skyfence.geo import Origin, ecef_to_geodetic, geodetic_to_ecef
from skyfence.picture import Frame
from skyfence.types import F64

#: The sphere the grid's cells are measured on (m).
EARTH_RADIUS_M = 6_371_000.0
#: Largest grid accepted (m, m/s).
MAX_ROUND = 100_000.0
#: What an identity in an alert's reason becomes.
NO_IDENTITY = "a cooperative report"

_IDENTITY = re.compile(r"\b(?:icao|rid):[^\s;,()]+", re.IGNORECASE)
_METRES = re.compile(r"(-?\d+(?:\.\d+)?) m(?![/\w])")
_SPEED = re.compile(r"(-?\d+(?:\.\d+)?) m/s\b")


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldPolicy:
    """What of each track a partner receives: positions snapped to ``round_m`` (0: as
    they are), velocities to ``round_mps`` (0: as they are), identities or not."""

    round_m: float = 0.0
    identity: bool = True
    round_mps: float = 0.0

    def __post_init__(self) -> None:
        for key in ("round_m", "round_mps"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int | float) \
                    or not (math.isfinite(v) and 0.0 <= v <= MAX_ROUND):
                raise InputError(f"{key} {v!r} is not a grid size", field=key,
                                 fix=f"give 0 (as they are) to {MAX_ROUND:.0f}")
        if not isinstance(self.identity, bool):
            raise InputError(f"identity {self.identity!r} is not true or false",
                             field="identity", fix="give true or false")

    @property
    def full(self) -> bool:
        """Everything as it is (the policy changes nothing)."""
        return self.round_m == 0 and self.round_mps == 0 and self.identity


FULL = FieldPolicy()


def snap_geodetic(lat_deg: F64, lon_deg: F64, h_m: F64, size_m: float
                  ) -> tuple[F64, F64, F64]:
    """Positions (degrees, metres) to the nearest point of a grid of ``size_m``."""
    dlat = math.degrees(size_m / EARTH_RADIUS_M)
    lat = np.round(np.asarray(lat_deg, dtype=np.float64) / dlat) * dlat
    # The longitude step at the snapped latitude: at the track's own, the step would
    # give the latitude away to whoever divides the longitude by it.
    dlon = dlat / np.maximum(np.cos(np.radians(lat)), 1e-3)
    lon = np.round(np.asarray(lon_deg, dtype=np.float64) / dlon) * dlon
    h = np.round(np.asarray(h_m, dtype=np.float64) / size_m) * size_m
    return lat, lon, h


def snap_ecef(pos: F64, P: F64, size_m: float) -> tuple[F64, F64]:
    """ECEF positions (n, 3) to the nearest grid point of ``size_m`` (see
    :func:`snap_geodetic`), the grid's variance added to the position block of ``P``
    (n, ≥3, ≥3)."""
    lat, lon, h = ecef_to_geodetic(pos)
    return geodetic_to_ecef(*snap_geodetic(lat, lon, h, size_m)), _inflate(P, 0, size_m)


def _inflate(P: F64, first: int, size: float) -> F64:
    """``P`` with a grid's variance, size²/12, added to the 3 axes from ``first``.
    (Isotropic: the same in any frame.)"""
    P = P.copy()
    axes = [first, first + 1, first + 2]
    P[:, axes, axes] += size**2 / 12.0
    return P


def _grid(v: F64, size: float) -> F64:
    return np.round(v / size) * size if size > 0 else v


def release_ecef(pos: F64, vel: F64, P: F64, policy: FieldPolicy
                 ) -> tuple[F64, F64, F64]:
    """ECEF states as ``policy`` releases them: positions (n, 3) m, velocities (n, 3)
    m/s, covariances (n, 6, 6)."""
    if policy.round_m > 0:
        pos, P = snap_ecef(pos, P, policy.round_m)
    if policy.round_mps > 0:
        vel, P = _grid(vel, policy.round_mps), _inflate(P, 3, policy.round_mps)
    return pos, vel, P


def release_frame(frame: Frame, origin: Origin, policy: FieldPolicy) -> Frame:
    """``frame`` (ENU at ``origin``) as ``policy`` releases it: track states and
    covariances, identities, the classifier's kinematic evidence (its words), and the
    groups' centroids, extents and velocities. The frame itself when the policy is
    full."""
    if policy.full:
        return frame
    tr, g, cl = frame.tracks, frame.groups, frame.classes
    x, P, centroid, gvel = tr.x.copy(), tr.P, g.centroid.copy(), g.velocity.copy()
    extent, height = g.extent_m, cl.height_agl_m
    speed, top, climb = cl.speed_mps, cl.max_speed_mps, cl.vertical_rate_mps
    if policy.round_m > 0:
        size = policy.round_m
        both = np.vstack([x[:, :3], centroid])
        snapped = origin.geodetic_to_enu(*snap_geodetic(*origin.enu_to_geodetic(both), size))
        x[:, :3], centroid = snapped[:len(tr)], snapped[len(tr):]
        P = _inflate(P, 0, size)
        extent, height = _grid(extent, size), _grid(height, size)
    if policy.round_mps > 0:
        step = policy.round_mps
        x[:, 3:6], gvel = _grid(x[:, 3:6], step), _grid(gvel, step)
        P = _inflate(P, 3, step)
        speed, top, climb = _grid(speed, step), _grid(top, step), _grid(climb, step)
    identity = tr.identity if policy.identity else np.zeros_like(tr.identity)
    return replace(
        frame, tracks=replace(tr, x=x, P=P, identity=identity),
        groups=replace(g, centroid=centroid, extent_m=extent, velocity=gvel),
        classes=replace(cl, height_agl_m=height, speed_mps=speed, max_speed_mps=top,
                        vertical_rate_mps=climb))


def release_reason(text: str, policy: FieldPolicy) -> str:
    """An alert's words as ``policy`` releases them: identities named, distances and
    speeds given to the grid."""
    if not policy.identity:
        text = _IDENTITY.sub(NO_IDENTITY, text)
    if policy.round_m > 0:
        size = policy.round_m
        text = _METRES.sub(lambda m: f"{round(float(m[1]) / size) * size:.0f} m", text)
    if policy.round_mps > 0:
        step = policy.round_mps
        text = _SPEED.sub(lambda m: f"{round(float(m[1]) / step) * step:g} m/s", text)
    return text


def _places(lat: Sequence[float | None], lon: Sequence[float | None],
            h: Sequence[float | None], policy: FieldPolicy
            ) -> tuple[list[float | None], list[float | None], list[float | None]]:
    """Optional positions (None: no position) snapped, as Python numbers."""
    cols = [np.array([np.nan if v is None else v for v in c], dtype=np.float64)
            for c in (lat, lon, h)]
    known = np.isfinite(cols[0]) & np.isfinite(cols[1]) & np.isfinite(cols[2])
    if policy.round_m > 0 and known.any():
        snapped = snap_geodetic(cols[0][known], cols[1][known], cols[2][known],
                                policy.round_m)
        for c, s in zip(cols, snapped, strict=True):
            c[known] = s
    out = []
    for c, given in zip(cols, (lat, lon, h), strict=True):
        values = c.astype(object)
        values[np.array([v is None for v in given], dtype=bool)] = None
        out.append(values.tolist())
    return out[0], out[1], out[2]


def release_events(events: Sequence[AlertEvent], policy: FieldPolicy) -> list[AlertEvent]:
    """Alert events as ``policy`` releases them: positions and reasons."""
    if policy.full or not events:
        return list(events)
    lat, lon, h = _places([e.lat_deg for e in events], [e.lon_deg for e in events],
                          [e.height_m for e in events], policy)
    return [replace(e, lat_deg=la, lon_deg=lo, height_m=hm,
                    reason=release_reason(e.reason, policy))
            for e, la, lo, hm in zip(events, lat, lon, h, strict=True)]


def release_alert_rows(rows: Sequence[Mapping[str, Any]], policy: FieldPolicy
                       ) -> list[dict[str, Any]]:
    """Alert rows (active, stored, or events as JSON: ``lat_deg``, ``lon_deg``,
    ``height_m``, ``reason``) as ``policy`` releases them."""
    if policy.full or not rows:
        return [dict(r) for r in rows]
    lat, lon, h = _places([r.get("lat_deg") for r in rows], [r.get("lon_deg") for r in rows],
                          [r.get("height_m") for r in rows], policy)
    out = []
    for r, la, lo, hm in zip(rows, lat, lon, h, strict=True):
        row = dict(r)
        row.update((k, v) for k, v in (("lat_deg", la), ("lon_deg", lo), ("height_m", hm))
                   if k in r)
        if isinstance(r.get("reason"), str):
            row["reason"] = release_reason(r["reason"], policy)
        out.append(row)
    return out


def release_points(rows: Sequence[Mapping[str, Any]], policy: FieldPolicy
                   ) -> list[dict[str, Any]]:
    """Track history points (``lat_deg``, ``lon_deg``, ``height_m``, ``v_east_mps``,
    ``v_north_mps``, ``v_up_mps``, ``identity``) as ``policy`` releases them."""
    if policy.full or not rows:
        return [dict(r) for r in rows]
    out = [dict(r) for r in rows]
    if policy.round_m > 0:
        lat, lon, h = snap_geodetic(np.array([r["lat_deg"] for r in rows], dtype=np.float64),
                                    np.array([r["lon_deg"] for r in rows], dtype=np.float64),
                                    np.array([r["height_m"] for r in rows], dtype=np.float64),
                                    policy.round_m)
        for r, la, lo, hm in zip(out, lat.tolist(), lon.tolist(), h.tolist(), strict=True):
            r.update(lat_deg=la, lon_deg=lo, height_m=hm)
    if policy.round_mps > 0:
        keys = ("v_east_mps", "v_north_mps", "v_up_mps")
        v = _grid(np.array([[r[k] for k in keys] for r in rows], dtype=np.float64),
                  policy.round_mps)
        for r, row in zip(out, v.tolist(), strict=True):
            r.update(zip(keys, row, strict=True))
    if not policy.identity:
        for r in out:
            r["identity"] = ""
    return out


def release_trail(points: Sequence[tuple[float, float, float]], policy: FieldPolicy
                  ) -> list[tuple[float, float, float]]:
    """A trail's (t, lon_deg, lat_deg) points as ``policy`` releases positions."""
    if policy.round_m <= 0 or not points:
        return list(points)
    a = np.asarray(points, dtype=np.float64)
    lat, lon, _ = snap_geodetic(a[:, 2], a[:, 1], np.zeros(len(a)), policy.round_m)
    return list(zip(a[:, 0].tolist(), lon.tolist(), lat.tolist(), strict=True))
