"""The picture as GeoJSON (RFC 7946): tracks, swarm groups and zones, for map tools.

Three FeatureCollections, each a dict ready for ``json.dump`` (:func:`encode` writes
the bytes):

- :func:`tracks_geojson`: one ``Point`` per shown track, ``[lon, lat, hae]`` (degrees,
  metres above the WGS84 ellipsoid, as RFC 7946 §3.1.1 has it), with properties
  ``id``, ``class``, ``class_p``, ``identity`` (null: none), ``flags`` (list of names),
  ``group`` (null: none), ``speed_mps`` (horizontal), ``course_deg`` (true, at the
  track), ``height_m`` (above the deployment origin's height: above ground on flat
  terrain), ``status`` (confirmed, coasting) and ``t`` (ISO 8601 UTC, ``Z``);
- :func:`groups_geojson`: one ``Polygon`` per swarm group: the convex hull of its
  members, or, when they are fewer than three or in a line, a circle of its extent
  about the centroid (a polygon whose edges touch that circle); properties ``id``,
  ``count``, ``class`` (the members' most common), ``members``, ``extent_m``,
  ``speed_mps``, ``course_deg``, ``velocity_enu_mps``, ``t``;
- :func:`zones_geojson`: the zones as :func:`skyfence.zones.geojson.to_geojson` writes
  them (the file ``skyfence zones`` reads back).

Coordinates keep full float precision. Polygons follow the right-hand rule (exterior
rings counter-clockwise) and are closed. Geometries are not cut at the antimeridian:
a deployment's picture is a few tens of kilometres across.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import ConvexHull, QhullError

from skyfence.classify import CLASSES
from skyfence.errors import InputError
from skyfence.geo import Origin
from skyfence.picture import Frame
from skyfence.types import TrackFlag
from skyfence.zones.geojson import to_geojson
from skyfence.zones.model import Zone

__all__ = ["encode", "groups_geojson", "tracks_geojson", "zones_geojson"]

_STATUS: Final = ("tentative", "confirmed", "coasting")
_FLAG_NAMES: Final = [[str(f.name).lower() for f in TrackFlag if v & f]
                      for v in range(2 ** len(TrackFlag))]
F64 = NDArray[np.float64]


def _iso(t: float) -> str:
    """Epoch seconds as ISO 8601 UTC to the millisecond."""
    ms = round(t * 1000.0)
    s, m = divmod(ms, 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(s))}.{m:03d}Z"


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _motion(origin: Origin, enu: F64, vel: F64) -> tuple[F64, F64, F64, F64, F64]:
    """Latitude, longitude, ellipsoidal height, horizontal speed and course (degrees
    true at the point) of ENU positions and velocities (k, 3)."""
    # A non-finite velocity gives a NaN course and speed, which callers leave out.
    with np.errstate(invalid="ignore", over="ignore"):
        lat, lon, hae = origin.enu_to_geodetic(enu)
        v = origin.enu_velocity_to_ecef(vel)
        la, lo = np.radians(lat), np.radians(lon)
        east = -np.sin(lo) * v[:, 0] + np.cos(lo) * v[:, 1]
        north = (-np.sin(la) * np.cos(lo) * v[:, 0] - np.sin(la) * np.sin(lo) * v[:, 1]
                 + np.cos(la) * v[:, 2])
        course = np.degrees(np.arctan2(east, north)) % 360.0
        return lat, lon, hae, np.hypot(east, north), np.where(course >= 360.0, 0.0, course)


def tracks_geojson(frame: Frame, origin: Origin) -> dict[str, Any]:
    """The shown tracks as Point features (tracks with a non-finite position are left
    out)."""
    tr = frame.tracks
    ok = np.isfinite(tr.x[:, :3]).all(axis=1)
    rows = np.flatnonzero(ok)
    x = tr.x[rows]
    lat, lon, hae, speed, course = _motion(origin, x[:, :3], x[:, 3:6])
    height = hae - origin.alt_m
    t = _iso(frame.t)
    names = frame.class_names()[rows].tolist()
    class_p = frame.class_p()[rows].tolist()
    features = []
    for (ident, identity, name, p, flags, group, status, la, lo, h, hm, sp, co) in zip(
            tr.id[rows].tolist(), tr.identity[rows].tolist(), names, class_p,
            tr.flags[rows].tolist(), frame.group[rows].tolist(), tr.status[rows].tolist(),
            lat.tolist(), lon.tolist(), hae.tolist(), height.tolist(), speed.tolist(),
            course.tolist(), strict=True):
        features.append({
            "type": "Feature",
            "id": f"track-{ident}",
            "geometry": {"type": "Point", "coordinates": [lo, la, h]},
            "properties": {
                "id": ident, "class": name, "class_p": _finite(p),
                "identity": identity or None, "flags": list(_FLAG_NAMES[flags]),
                "group": group if group >= 0 else None, "speed_mps": _finite(sp),
                "course_deg": _finite(co), "height_m": hm, "status": _STATUS[status],
                "t": t,
            },
        })
    return {"type": "FeatureCollection", "features": features}


def groups_geojson(frame: Frame, origin: Origin, *,
                   outline: Literal["hull", "circle"] = "hull", circle_points: int = 36,
                   min_radius_m: float = 10.0) -> dict[str, Any]:
    """The swarm groups as Polygon features: the convex hull of the members
    (``outline="hull"``; members fewer than three or in a line get the circle), or a
    polygon of ``circle_points`` vertices holding the circle whose radius is the
    group's extent (at least ``min_radius_m``) about its centroid."""
    if outline not in ("hull", "circle"):
        raise InputError(f"outline {outline!r} is unknown", field="outline",
                         fix="use hull or circle")
    if isinstance(circle_points, bool) or not isinstance(circle_points, int) \
            or circle_points < 3:
        raise InputError(f"circle_points {circle_points!r} is not an integer ≥ 3",
                         field="circle_points", fix="give e.g. 36")
    if not (math.isfinite(min_radius_m) and min_radius_m > 0):
        raise InputError(f"min_radius_m {min_radius_m!r} is not a positive length",
                         field="min_radius_m", fix="give e.g. 10.0")
    g = frame.groups
    if len(g) == 0:
        return {"type": "FeatureCollection", "features": []}
    tr = frame.tracks
    _, _, _, speed, course = _motion(origin, g.centroid, g.velocity)
    t = _iso(frame.t)
    features = []
    for k in range(len(g)):
        gid = int(g.id[k])
        centroid = g.centroid[k]
        if not np.isfinite(centroid).all():
            continue
        members = frame.group == gid
        pos = tr.x[members, :3]
        pos = pos[np.isfinite(pos).all(axis=1)]
        corners = _hull(pos) if outline == "hull" else None
        if corners is not None:
            # The members themselves are the corners, each at its own height.
            lat, lon, _ = origin.enu_to_geodetic(pos[corners])
        else:
            radius = float(g.extent_m[k]) if math.isfinite(g.extent_m[k]) else 0.0
            ring = _circle(centroid, max(radius, min_radius_m), circle_points)
            up = np.full((ring.shape[0], 1), centroid[2])
            lat, lon, _ = origin.enu_to_geodetic(np.hstack([ring, up]))
        coords = [[lo, la] for lo, la in zip(lon.tolist(), lat.tolist(), strict=True)]
        coords[-1] = coords[0]  # closed exactly, whatever the rounding
        labels = frame.classes.label[members].astype(np.intp)
        name = CLASSES[int(np.bincount(labels, minlength=len(CLASSES)).argmax())] \
            if labels.size else "unknown"
        features.append({
            "type": "Feature",
            "id": f"group-{gid}",
            "geometry": {"type": "Polygon", "coordinates": [coords]},
            "properties": {
                "id": gid, "count": int(g.count[k]), "class": name,
                "members": g.member_ids[g.member_start[k]:g.member_start[k + 1]].tolist(),
                "extent_m": _finite(float(g.extent_m[k])),
                "speed_mps": _finite(float(speed[k])), "course_deg": _finite(float(course[k])),
                "velocity_enu_mps": [_finite(v) for v in g.velocity[k].tolist()],
                "t": t,
            },
        })
    return {"type": "FeatureCollection", "features": features}


def _hull(pos: F64) -> NDArray[np.intp] | None:
    """Rows of ``pos`` (n, 3) ENU m at the corners of their convex hull in the east-north
    plane, counter-clockwise, the first repeated last; None when the hull has less than
    a square metre (fewer than three members, or all in a line)."""
    if pos.shape[0] < 3:
        return None
    try:
        hull = ConvexHull(pos[:, :2])
    except QhullError:
        return None
    if hull.volume < 1.0:  # in 2-D, its area (m²)
        return None
    corners = np.asarray(hull.vertices, dtype=np.intp)  # counter-clockwise in 2-D
    return np.append(corners, corners[0])


def _circle(centroid: F64, radius_m: float, n: int) -> F64:
    """A regular n-gon about the centroid in the ENU plane that holds the circle of
    ``radius_m`` (its edges touch it), counter-clockwise and closed, (n + 1, 2) m."""
    a = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    r = radius_m / math.cos(math.pi / n)
    ring = np.column_stack([centroid[0] + r * np.cos(a), centroid[1] + r * np.sin(a)])
    return np.vstack([ring, ring[:1]])


def zones_geojson(zones: Iterable[Zone]) -> dict[str, Any]:
    """The zones as skyfence's zone GeoJSON (see :mod:`skyfence.zones.geojson`)."""
    return to_geojson(zones)


def encode(collection: dict[str, Any]) -> bytes:
    """A FeatureCollection as compact UTF-8 JSON; floats at full precision. NaN and
    infinity are refused (JSON has neither)."""
    return json.dumps(collection, separators=(",", ":"), allow_nan=False,
                      ensure_ascii=False).encode()
