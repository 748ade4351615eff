"""Defended sites: a point with a radius and a ceiling above the ground, and the time
each track needs to reach one and its closest point of approach.

A sites file is GeoJSON: a FeatureCollection of Point features whose properties are
``id`` (required), ``name``, ``radius_m`` (required, > 0) and ``ceiling_m`` (the top
of the defended volume above the ground, default 500).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr

from skyfence.zones.model import ZoneError

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Site:
    id: str
    name: str
    lon_deg: float
    lat_deg: float
    radius_m: float
    ceiling_m: float = 500.0


@dataclass(frozen=True, slots=True)
class SiteHits:
    """(track, site) pairs of tracks inside a site or whose path comes within its radius
    inside the horizon. ``time_to_reach_s`` 0 inside, NaN when the mean path stays out;
    ``cpa_s``/``cpa_m``: time and horizontal distance of the closest approach within the
    horizon; ``probability``: of coming within the radius (inside: of being inside)."""

    track: I64
    site: I64
    inside: NDArray[np.bool_]
    time_to_reach_s: F64
    cpa_s: F64
    cpa_m: F64
    probability: F64

    def __len__(self) -> int:
        return int(self.track.shape[0])


def check_sites(sites: Sequence[Site], plane_xy: F64, velocity: F64, height_agl_m: F64,
                var_now: F64, var_horizon: F64, horizon_s: float, *, site_xy: F64,
                margin_m: float = 200.0, min_probability: float = 0.05) -> SiteHits:
    """Tracks (n) against sites (s), dense (sites are few).

    ``plane_xy`` (n, 2) and ``site_xy`` (s, 2): horizontal positions, m; ``velocity``
    (n, 2) m/s; ``height_agl_m`` (n,); ``var_now``, ``var_horizon`` (n,): variance of
    the horizontal position (one axis) now and predicted at the horizon, m².
    """
    n, s = plane_xy.shape[0], len(sites)
    if n == 0 or s == 0:
        e = np.empty(0)
        i = np.empty(0, dtype=np.int64)
        return SiteHits(i, i, np.empty(0, dtype=bool), e, e, e, e)
    radius = np.array([x.radius_m for x in sites])
    ceiling = np.array([x.ceiling_m for x in sites])
    d = plane_xy[:, None, :] - site_xy[None, :, :]  # (n, s, 2)
    v = velocity[:, None, :]
    vv = np.maximum(np.sum(velocity**2, axis=1), 1e-12)[:, None]
    dv = np.einsum("nsi,ni->ns", d, velocity)
    t_cpa = np.clip(-dv / vv, 0.0, horizon_s)
    cpa = np.linalg.norm(d + v * t_cpa[..., None], axis=2)
    r0 = np.linalg.norm(d, axis=2)
    below = height_agl_m[:, None] <= ceiling[None, :]
    inside = (r0 <= radius[None, :]) & below
    disc = dv**2 - vv * (r0**2 - radius[None, :] ** 2)
    with np.errstate(invalid="ignore"):
        t_in = (-dv - np.sqrt(np.maximum(disc, 0.0))) / vv
    reaches = (disc >= 0.0) & (t_in >= 0.0) & (t_in <= horizon_s) & below
    ttr = np.where(inside, 0.0, np.where(reaches, t_in, np.nan))
    # The spread grows from now to the horizon, roughly with the square of the time.
    f = (t_cpa / horizon_s) ** 2
    sd = np.sqrt(np.maximum(var_now[:, None] * (1 - f) + var_horizon[:, None] * f, 1.0))
    p_reach = ndtr((radius[None, :] - cpa) / sd) * below
    p_in = ndtr((radius[None, :] - r0) / np.sqrt(np.maximum(var_now, 1.0))[:, None])
    prob = np.where(inside, p_in, p_reach)
    near = r0 <= radius[None, :] + margin_m
    keep = inside | reaches | (prob >= min_probability) | near
    ti, si = np.nonzero(keep)
    return SiteHits(ti.astype(np.int64), si.astype(np.int64), inside[ti, si], ttr[ti, si],
                    t_cpa[ti, si], cpa[ti, si], prob[ti, si])


def load_sites(path: str | Path) -> tuple[Site, ...]:
    """Read a sites GeoJSON file; every problem is raised as one ZoneError listing all."""
    name = str(path)
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise ZoneError(f"cannot read the file: {err.strerror}", file=name,
                        fix="check the path") from err
    except json.JSONDecodeError as err:
        raise ZoneError(f"not JSON: {err.msg} at line {err.lineno} column {err.colno}",
                        file=name, fix="correct the JSON") from err
    return parse_sites(doc, file=name)


def parse_sites(doc: Any, *, file: str | None = None) -> tuple[Site, ...]:
    if not isinstance(doc, dict) or not isinstance(doc.get("features"), list):
        raise ZoneError("a sites file is a GeoJSON FeatureCollection with a 'features' list",
                        file=file, field="features", fix="give Point features")
    sites: list[Site] = []
    problems: list[str] = []
    seen: set[str] = set()
    for k, f in enumerate(doc["features"]):
        where = f"features[{k}]"
        try:
            sites.append(_site(f, where))
        except ZoneError as err:
            problems.append(f"{where}: {err}")
            continue
        if sites[-1].id in seen:
            problems.append(f"{where}: site id {sites[-1].id!r} appears twice")
            sites.pop()
        else:
            seen.add(sites[-1].id)
    if problems:
        raise ZoneError(f"{len(problems)} bad site(s): " + "; ".join(problems), file=file,
                        fix="correct the listed features")
    return tuple(sites)


def _site(f: Any, where: str) -> Site:
    props = f.get("properties") if isinstance(f, dict) else None
    geom = f.get("geometry") if isinstance(f, dict) else None
    if not isinstance(props, dict) or not isinstance(geom, dict):
        raise ZoneError("a site is a Feature with geometry and properties", field=where)
    sid = props.get("id")
    if not isinstance(sid, str | int) or str(sid) == "":
        raise ZoneError("the site has no id", field=f"{where}.properties.id",
                        fix="give each site a unique id")
    coords = geom.get("coordinates")
    if (geom.get("type") != "Point" or not isinstance(coords, list) or len(coords) < 2
            or not all(isinstance(c, int | float) for c in coords[:2])):
        raise ZoneError("the site's geometry is not a Point [lon, lat]",
                        field=f"{where}.geometry", zone=str(sid),
                        fix="give a GeoJSON Point, longitude first")
    lon, lat = float(coords[0]), float(coords[1])
    if not (-180.0 <= lon <= 360.0 and -90.0 <= lat <= 90.0):
        raise ZoneError(f"({lon:g}, {lat:g}) is not a longitude, latitude pair",
                        field=f"{where}.geometry", zone=str(sid))
    values = {}
    for key, default in (("radius_m", None), ("ceiling_m", 500.0)):
        v = props.get(key, default)
        if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v) or v <= 0:
            raise ZoneError(f"{key} must be a positive number of metres, not {v!r}",
                            field=f"{where}.properties.{key}", zone=str(sid))
        values[key] = float(v)
    return Site(id=str(sid), name=str(props.get("name", sid)), lon_deg=lon, lat_deg=lat,
                radius_m=values["radius_m"], ceiling_m=values["ceiling_m"])
