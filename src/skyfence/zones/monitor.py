"""Breach checks of all tracks against all zones at once: inside now, and predicted
entry within a horizon with its time and probability.

Per scan the monitor (1) turns each track's position now and at the horizon (along
its velocity) into the horizontal frame the zones are kept in and into heights above
each reference (ellipsoid, mean sea level, ground); (2) finds the (track, volume)
pairs whose paths come near a volume's bounding box with an STRtree (C, shapely);
(3) runs one compiled kernel over those pairs' polygon edges for inside-now, the
signed distance to the boundary, the first entry along the mean path, and the
volume's extent across the path; (4) turns these into a time to breach and a
probability from the track's covariance, in numpy.

The horizontal frame is the local ENU plane of points on the ellipsoid (h = 0):
a track is placed by its latitude and longitude, not by its ENU east/north, so a
zone far from the origin is not shifted by the tilt of the vertical there.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numba import njit
from numpy.typing import NDArray
from scipy.special import ndtr

from skyfence.geo import Origin
from skyfence.zones.model import Circle, HeightReference, Polygon, Zone

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

log = logging.getLogger("skyfence.zones")

#: Height reference codes, the rows of a track's height table.
REF_CODE = {HeightReference.WGS84: 0, HeightReference.AMSL: 1, HeightReference.AGL: 2}


class Ground(Protocol):
    """Ground (or water) height under points, metres above the WGS84 ellipsoid."""

    def height_m(self, lat_deg: F64, lon_deg: F64) -> F64: ...


@dataclass(frozen=True, slots=True)
class FlatGround:
    """Ground at one ellipsoidal height everywhere (the origin's, when there is no DEM)."""

    ellipsoid_height_m: float

    def height_m(self, lat_deg: F64, lon_deg: F64) -> F64:
        return np.full(np.shape(lat_deg), self.ellipsoid_height_m)


@dataclass(frozen=True, slots=True)
class DemGround:
    """Ground from a DEM above mean sea level (SRTM, Copernicus: EGM96/EGM2008 heights),
    made ellipsoidal with the EGM96 geoid; ``fallback_m`` (ellipsoidal) off the DEM."""

    dem: object  # skyfence.coverage.Dem (kept loose: coverage imports the scenario layer)
    fallback_m: float

    def height_m(self, lat_deg: F64, lon_deg: F64) -> F64:
        from skyfence.geoid import geoid_height_m

        h = self.dem.sample(lat_deg, lon_deg)  # type: ignore[attr-defined]
        out: F64 = np.where(np.isfinite(h), h + geoid_height_m(lat_deg, lon_deg),
                            self.fallback_m)
        return out


@dataclass(frozen=True, slots=True)
class ZoneHits:
    """The (track, volume) pairs that matter this scan, as aligned arrays.

    ``track``: row in the tracks given; ``zone``/``volume``: index into the monitor's
    zones and volumes. ``inside``: in the volume now (horizontally and between its
    limits), zone in force, track not exempt. ``depth_m``: signed distance to the
    volume's surface, horizontal or vertical whichever is nearer, positive inside.
    ``time_to_breach_s``: 0 inside; else the predicted time of entry along the mean
    path (NaN: the mean path does not enter within the horizon). ``probability``: of
    being inside now (inside pairs), else of entering within the horizon.
    """

    track: I64
    zone: I64
    volume: I64
    inside: NDArray[np.bool_]
    depth_m: F64
    time_to_breach_s: F64
    probability: F64

    def __len__(self) -> int:
        return int(self.track.shape[0])

    def take(self, rows: NDArray[np.bool_] | NDArray[np.intp]) -> ZoneHits:
        return ZoneHits(self.track[rows], self.zone[rows], self.volume[rows],
                        self.inside[rows], self.depth_m[rows], self.time_to_breach_s[rows],
                        self.probability[rows])


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorConfig:
    #: How far ahead breaches are predicted, s.
    horizon_s: float = 120.0
    #: Pairs with a smaller probability of entering within the horizon are not reported.
    min_probability: float = 0.05
    #: Unmodelled horizontal acceleration (1σ, m/s²) widening the predicted position: a
    #: drone changes course; the track's covariance knows only its past.
    accel_std_mps2: float = 0.05
    #: A climb or descent is not held for minutes: the prediction holds the vertical
    #: rate this long (s), then flies level, so a level flyer's noisy vertical rate
    #: does not carry it out of a zone's height band two minutes ahead.
    climb_hold_s: float = 20.0
    #: Candidate pairs reach this far beyond a path (m): the distance at which the
    #: alert book still needs a track's depth to decide that it has left.
    margin_m: float = 200.0
    #: And at most this far for the track's own uncertainty across its path (m).
    max_uncertainty_margin_m: float = 2000.0
    #: Below this horizontal speed a track is treated as hovering (m/s).
    min_speed_mps: float = 0.5


class ZoneMonitor:
    """All zones' volumes as flat arrays, checked against all tracks in one pass."""

    def __init__(self, zones: Sequence[Zone], origin: Origin, *, ground: Ground | None = None,
                 config: MonitorConfig | None = None) -> None:
        self.zones = tuple(zones)
        self.origin = origin
        self.config = config or MonitorConfig()
        if ground is None:
            ground = FlatGround(origin.alt_m)
            if any(REF_CODE[lim.reference] == 2 for z in self.zones for v in z.volumes
                   for lim in (v.lower, v.upper) if math.isfinite(lim.height_m)):
                log.warning("zones with heights above ground (AGL) and no terrain model: the "
                            "ground is taken at the origin's height (%.1f m above the "
                            "ellipsoid) everywhere; give a DEM for real ground heights",
                            origin.alt_m)
        self.ground = ground
        self._build()
        self._active = np.ones(len(self.zones), dtype=bool)
        self._active_until = -math.inf
        self._active_from = math.inf

    # ------------------------------------------------------------------ set-up

    def _build(self) -> None:
        vol_zone, kind, lower, upper, lref, uref = [], [], [], [], [], []
        circles: list[tuple[float, float, float]] = []
        starts, ends = [], []
        ax: list[F64] = []
        ay: list[F64] = []
        bx: list[F64] = []
        by: list[F64] = []
        boxes = []
        n_edges = 0
        for zi, zone in enumerate(self.zones):
            for v in zone.volumes:
                vol_zone.append(zi)
                lower.append(v.lower.height_m)
                upper.append(v.upper.height_m)
                lref.append(REF_CODE[v.lower.reference])
                uref.append(REF_CODE[v.upper.reference])
                starts.append(n_edges)
                if isinstance(v.shape, Circle):
                    c = self._plane(np.array([v.shape.lat_deg]), np.array([v.shape.lon_deg]))[0]
                    r = v.shape.radius_m
                    kind.append(1)
                    circles.append((float(c[0]), float(c[1]), r))
                    boxes.append((c[0] - r, c[1] - r, c[0] + r, c[1] + r))
                else:
                    kind.append(0)
                    circles.append((math.nan, math.nan, math.nan))
                    e = self._edges(v.shape)
                    ax.append(e[0])
                    ay.append(e[1])
                    bx.append(e[2])
                    by.append(e[3])
                    n_edges += e[0].size
                    boxes.append((float(e[0].min()), float(e[1].min()),
                                  float(e[0].max()), float(e[1].max())))
                ends.append(n_edges)
        self.vol_zone = np.asarray(vol_zone, dtype=np.int64)
        self.vol_kind = np.asarray(kind, dtype=np.int8)
        self.lower_m = np.asarray(lower, dtype=np.float64)
        self.upper_m = np.asarray(upper, dtype=np.float64)
        self.lower_ref = np.asarray(lref, dtype=np.int64)
        self.upper_ref = np.asarray(uref, dtype=np.int64)
        self.edge_start = np.asarray(starts, dtype=np.int64)
        self.edge_end = np.asarray(ends, dtype=np.int64)
        self.ax, self.ay, self.bx, self.by = (np.concatenate(p) if p else np.empty(0)
                                              for p in (ax, ay, bx, by))
        circ = np.asarray(circles, dtype=np.float64).reshape(-1, 3)
        self.cx, self.cy, self.cr = circ[:, 0], circ[:, 1], circ[:, 2]
        self._index = _GridIndex(np.asarray(boxes, dtype=np.float64).reshape(-1, 4))
        # Exemptions as "zone index|identity" keys, matched with np.isin.
        self._exempt = np.asarray(sorted(f"{zi}|{ident}" for zi, z in enumerate(self.zones)
                                         for ident in z.exempt), dtype=np.str_)

    def _plane(self, lat_deg: F64, lon_deg: F64) -> F64:
        """Horizontal (east, north) of points on the ellipsoid, (n, 2) m."""
        return self.origin.geodetic_to_enu(lat_deg, lon_deg, np.zeros_like(lat_deg))[:, :2]

    def _edges(self, shape: Polygon) -> tuple[F64, F64, F64, F64]:
        """The polygon's edges in the plane, every ring turned so the inside is on the
        left of each edge (outer ring anticlockwise, holes clockwise)."""
        parts = []
        for k, ring in enumerate(shape.rings):
            ll = np.asarray(ring, dtype=np.float64)
            xy = self._plane(ll[:, 1], ll[:, 0])
            x, y = xy[:, 0], xy[:, 1]
            area2 = float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))
            if (area2 < 0.0) == (k == 0):
                xy = xy[::-1]
            parts.append(np.concatenate([xy[:-1], xy[1:]], axis=1))
        e = np.concatenate(parts)
        return e[:, 0].copy(), e[:, 1].copy(), e[:, 2].copy(), e[:, 3].copy()

    @property
    def n_volumes(self) -> int:
        return int(self.vol_zone.shape[0])

    # ------------------------------------------------------------------ per scan

    def active(self, t: float) -> NDArray[np.bool_]:
        """(zones,) which zones are in force at ``t``; recomputed only when one may change."""
        if not self._active_from <= t < self._active_until:
            self._active = np.array([z.in_force(t) for z in self.zones], dtype=bool)
            self._active_from = t
            self._active_until = min((z.changes_after(t) for z in self.zones),
                                     default=math.inf)
        return self._active

    def heights(self, enu_m: F64) -> tuple[F64, F64]:
        """For ENU points (n, 3): their horizontal plane positions (n, 2) and heights
        (3, n) above the ellipsoid, mean sea level and the ground (REF_CODE rows)."""
        from skyfence.geoid import geoid_height_m

        lat, lon, h = self.origin.enu_to_geodetic(enu_m)
        table = np.empty((3, h.shape[0]))
        table[0] = h
        table[1] = h - geoid_height_m(lat, lon)
        table[2] = h - self.ground.height_m(lat, lon)
        return self._plane(lat, lon), table

    def check(self, t: float, x: F64, P: F64, identity: NDArray[np.str_] | None = None,
              *, spoof_suspect: NDArray[np.bool_] | None = None) -> ZoneHits:
        """Check tracks (states x (n, 6) ENU m and m/s, covariances P (n, 6, 6)) at
        time ``t``. ``identity`` (n,): exempt identities are skipped in the zones that
        exempt them, unless the track is a ``spoof_suspect`` (a lie cannot buy an
        exemption)."""
        cfg = self.config
        n = x.shape[0]
        if n == 0 or self.n_volumes == 0:
            return _no_hits()
        horizon = cfg.horizon_s
        hold = min(cfg.climb_hold_s, horizon)
        ahead = x[:, :3] + horizon * x[:, 3:6]
        ahead[:, 2] = x[:, 2] + hold * x[:, 5]
        ends = np.concatenate([x[:, :3], ahead])
        plane, table = self.heights(ends)
        q0, q1 = plane[:n], plane[n:]
        h0, h1 = table[:, :n], table[:, n:]
        # Candidates: volume boxes near each path's box, widened by the margin and the
        # track's own uncertainty across its path at the horizon.
        spread = _horizontal_spread(P, horizon, cfg.accel_std_mps2)
        pad = cfg.margin_m + np.minimum(2.0 * spread, cfg.max_uncertainty_margin_m)
        lo, hi = np.minimum(q0, q1) - pad[:, None], np.maximum(q0, q1) + pad[:, None]
        pi, vj = self._index.query(lo, hi)
        zj = self.vol_zone[vj]
        keep = self.active(t)[zj]
        if identity is not None and self._exempt.size:
            named = keep & (identity[pi] != "")
            if named.any():
                k = np.flatnonzero(named)
                keys = np.char.add(np.char.add(zj[k].astype(np.str_), "|"), identity[pi[k]])
                exempt = np.isin(keys, self._exempt)
                if spoof_suspect is not None:
                    exempt &= ~spoof_suspect[pi[k]]
                keep[k[exempt]] = False
        pi, vj, zj = pi[keep].astype(np.int64), vj[keep].astype(np.int64), zj[keep]
        if pi.size == 0:
            return _no_hits()
        # Vertical: along the path (s ∈ [0, 1], s·horizon seconds) the height climbs
        # until s_c, then holds; the offset of each reference from ENU up (earth
        # curvature, geoid, ground) changes linearly. Heights are piecewise linear.
        s_c = hold / horizon
        lo_ref, up_ref = self.lower_ref[vj], self.upper_ref[vj]
        knots = _height_knots(x[:, 2], ahead[:, 2], h0, h1, s_c)  # (3 refs, n, 3 knots)
        hl, hu = knots[lo_ref, pi], knots[up_ref, pi]  # (pairs, 3)
        lower, upper = self.lower_m[vj], self.upper_m[vj]
        a_lo, a_hi = _linear_band(hl[:, 0], hl[:, 1], hu[:, 0], hu[:, 1], lower, upper)
        b_lo, b_hi = _linear_band(hl[:, 1], hl[:, 2], hu[:, 1], hu[:, 2], lower, upper)
        # Each piece's part of the band, in s.
        a_lo, a_hi = a_lo * s_c, a_hi * s_c
        b_lo, b_hi = s_c + b_lo * (1.0 - s_c), s_c + b_hi * (1.0 - s_c)
        b_hi = np.where(b_lo > b_hi, -1.0, b_hi)
        inside_h, dist_h, entry_s, lat_lo, lat_hi, a_first, path_m = _pair_kernel(
            pi, vj, q0[:, 0], q0[:, 1], q1[:, 0], q1[:, 1], a_lo, a_hi, b_lo, b_hi,
            self.vol_kind, self.edge_start, self.edge_end, self.ax, self.ay, self.bx, self.by,
            self.cx, self.cy, self.cr)
        hl0, hu0 = hl[:, 0], hu[:, 0]
        vertical_depth = np.minimum(hl0 - lower, upper - hu0)
        inside = inside_h & (vertical_depth >= 0.0)
        # Outside horizontally, or vertically: the nearer surface counts.
        depth = np.where(inside, np.minimum(dist_h, vertical_depth),
                         np.where(inside_h, vertical_depth,
                                  np.where(vertical_depth >= 0.0, -dist_h,
                                           -np.hypot(dist_h, vertical_depth))))
        speed = path_m / horizon
        moving = speed >= cfg.min_speed_mps
        # Time at which the probability is weighed: the mean path's entry, else where
        # the volume first comes across the path.
        tau = np.where(np.isfinite(entry_s), entry_s * horizon,
                       np.where(moving, np.clip(a_first / np.maximum(speed, 1e-9), 0.0,
                                                horizon), 0.0))
        tau = np.where(inside, 0.0, tau)
        cov = _position_cov(P[pi], tau, cfg.accel_std_mps2, hold)
        d = q1[pi] - q0[pi]
        u = d / np.maximum(np.linalg.norm(d, axis=1), 1e-9)[:, None]
        u = np.where(moving[:, None], u, np.array([1.0, 0.0]))
        nrm = np.stack([-u[:, 1], u[:, 0]], axis=1)
        var_along = np.einsum("ki,kij,kj->k", u, cov[:, :2, :2], u)
        var_across = np.einsum("ki,kij,kj->k", nrm, cov[:, :2, :2], nrm)
        sd_h = np.sqrt(np.maximum(cov[:, 2, 2], 1e-6))
        s_tau = tau / horizon
        knot_s = np.array([0.0, s_c, 1.0])
        hl_tau = _piecewise(hl, knot_s, s_tau)
        hu_tau = _piecewise(hu, knot_s, s_tau)
        p_vert = np.clip(ndtr((upper - hu_tau) / sd_h) + ndtr((hl_tau - lower) / sd_h) - 1.0,
                         0.0, 1.0)
        sd_across = np.sqrt(np.maximum(var_across, 1e-6))
        p_across = ndtr(lat_hi / sd_across) - ndtr(lat_lo / sd_across)
        reach = np.where(np.isfinite(entry_s), entry_s * path_m, a_first)
        p_along = np.where(moving, ndtr((path_m - reach) / np.sqrt(np.maximum(var_along, 1e-6))),
                           0.0)
        p_enter = np.where(np.isfinite(entry_s) | moving, p_across * p_along * p_vert, 0.0)
        sd_now = np.sqrt(np.maximum(np.minimum(P[pi, 0, 0], P[pi, 1, 1]), 1e-6))
        p_in = ndtr(depth / sd_now)
        probability = np.where(inside, p_in, p_enter)
        ttb = np.where(inside, 0.0, np.where(np.isfinite(entry_s), entry_s * horizon, np.nan))
        report = inside | (probability >= cfg.min_probability) | (depth > -cfg.margin_m)
        return ZoneHits(track=pi[report], zone=zj[report], volume=vj[report],
                        inside=inside[report], depth_m=depth[report],
                        time_to_breach_s=ttb[report], probability=probability[report])


class _GridIndex:
    """Boxes (n, 4: x0, y0, x1, y1) registered in the cells of a uniform grid, queried
    with many boxes at once in numpy.

    Written here rather than taken from shapely's STRtree because that takes geometry
    objects: 10,000 new ones every scan made the garbage collector stall scans by
    tens of milliseconds.
    """

    def __init__(self, boxes: F64) -> None:
        self.boxes = boxes
        n = boxes.shape[0]
        if n == 0:
            boxes = np.zeros((1, 4))
        self.lo = boxes[:, :2].min(axis=0)
        span = boxes[:, 2:].max(axis=0) - self.lo
        # About as many cells as boxes, of at least the median box size.
        size = np.median(boxes[:, 2:] - boxes[:, :2])
        self.cell = float(max(size, math.sqrt(max(span[0] * span[1], 1.0) / max(n, 1)), 1.0))
        self.shape = np.maximum(np.ceil(span / self.cell).astype(np.int64), 1)
        c0, c1 = self._cells(boxes[:n, :2]), self._cells(boxes[:n, 2:])
        w = c1 - c0 + 1
        count = w[:, 0] * w[:, 1]
        box = np.repeat(np.arange(n, dtype=np.int64), count)
        k = np.arange(box.size) - np.repeat(np.cumsum(count) - count, count)
        cx = c0[box, 0] + k // w[box, 1]
        cy = c0[box, 1] + k % w[box, 1]
        cell = cx * self.shape[1] + cy
        order = np.argsort(cell, kind="stable")
        self.members = box[order]
        self.start = np.searchsorted(cell[order], np.arange(self.shape[0] * self.shape[1] + 1))

    def _cells(self, xy: F64) -> I64:
        c = np.floor((xy - self.lo) / self.cell).astype(np.int64)
        out: I64 = np.clip(c, 0, self.shape - 1)
        return out

    def query(self, lo: F64, hi: F64) -> tuple[I64, I64]:
        """(query index, box index) of every pair of query boxes (lo (m, 2), hi (m, 2))
        and registered boxes that overlap."""
        if self.boxes.shape[0] == 0:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty
        top = self.lo + self.shape * self.cell
        out = np.any(hi < self.lo, axis=1) | np.any(lo > top, axis=1)
        c0, c1 = self._cells(lo), self._cells(hi)
        w = c1 - c0 + 1
        count = np.where(out, 0, w[:, 0] * w[:, 1])
        q = np.repeat(np.arange(lo.shape[0], dtype=np.int64), count)
        k = np.arange(q.size) - np.repeat(np.cumsum(count) - count, count)
        cx = c0[q, 0] + k // w[q, 1]
        cy = c0[q, 1] + k % w[q, 1]
        cell = cx * self.shape[1] + cy
        many = self.start[cell + 1] - self.start[cell]
        qq = np.repeat(q, many)
        at = np.repeat(self.start[cell], many) + (
            np.arange(qq.size) - np.repeat(np.cumsum(many) - many, many))
        b = self.members[at]
        cxx, cyy = np.repeat(cx, many), np.repeat(cy, many)
        # A pair is seen in every cell both boxes cover: keep it in the first such cell.
        bc = self._cells(self.boxes[b, :2])
        first = (cxx == np.maximum(c0[qq, 0], bc[:, 0])) & (cyy == np.maximum(c0[qq, 1], bc[:, 1]))
        bb = self.boxes[b]
        overlap = ((bb[:, 0] <= hi[qq, 0]) & (bb[:, 2] >= lo[qq, 0])
                   & (bb[:, 1] <= hi[qq, 1]) & (bb[:, 3] >= lo[qq, 1]))
        keep = first & overlap
        return qq[keep], b[keep]


def _no_hits() -> ZoneHits:
    e = np.empty(0)
    i = np.empty(0, dtype=np.int64)
    return ZoneHits(i, i, i, np.empty(0, dtype=bool), e, e, e)


def _height_knots(up0: F64, up1: F64, h0: F64, h1: F64, s_c: float) -> F64:
    """Heights (refs, n, 3) above each reference at s = 0, s_c and 1 along the paths:
    ENU up climbing from ``up0`` to ``up1`` until s_c then level; each reference's
    offset from ENU up (h0, h1 at the ends, (refs, n)) linear in s."""
    off0, off1 = h0 - up0, h1 - up1
    up = np.stack([up0, up1, up1], axis=-1)  # (n, 3)
    s = np.array([0.0, s_c, 1.0])
    out: F64 = up[None] + off0[..., None] + s * (off1 - off0)[..., None]
    return out


def _piecewise(values: F64, knots: F64, s: F64) -> F64:
    """Linear interpolation of each row of ``values`` (m, 3) at the knots, at s (m,)."""
    first = s <= knots[1]
    span = np.where(first, knots[1] - knots[0], knots[2] - knots[1])
    u = np.where(first, s - knots[0], s - knots[1]) / np.maximum(span, 1e-12)
    lo = np.where(first, values[:, 0], values[:, 1])
    hi = np.where(first, values[:, 1], values[:, 2])
    out: F64 = lo + np.clip(u, 0.0, 1.0) * (hi - lo)
    return out


def _position_cov(P: F64, tau: F64 | float, accel_std_mps2: float, climb_hold_s: float
                  ) -> F64:
    """Predicted position covariance (n, 3, 3) after ``tau`` s (scalar or (n,)):
    constant horizontal velocity widened by a constant unknown acceleration of the
    given 1σ (½·a·τ²); the vertical rate held for ``climb_hold_s`` at most."""
    t = np.broadcast_to(np.asarray(tau, dtype=np.float64), (P.shape[0],))
    f = np.stack([t, t, np.minimum(t, climb_hold_s)], axis=1)  # (n, 3)
    pp, pv, vv = P[:, :3, :3], P[:, :3, 3:6], P[:, 3:6, 3:6]
    cross = pv * f[:, None, :]
    out: F64 = pp + cross + np.swapaxes(cross, 1, 2) + vv * f[:, :, None] * f[:, None, :]
    acc = accel_std_mps2**2 * t**4 / 4.0
    out[:, 0, 0] += acc
    out[:, 1, 1] += acc
    return out


def _horizontal_spread(P: F64, tau: float, accel_std_mps2: float) -> F64:
    """√(σ²_east + σ²_north) of the position predicted ``tau`` s ahead (n,), m."""
    var = (P[:, 0, 0] + P[:, 1, 1] + 2.0 * tau * (P[:, 0, 3] + P[:, 1, 4])
           + tau**2 * (P[:, 3, 3] + P[:, 4, 4]) + 2.0 * accel_std_mps2**2 * tau**4 / 4.0)
    out: F64 = np.sqrt(np.maximum(var, 0.0))
    return out


def _linear_band(hl0: F64, hl1: F64, hu0: F64, hu1: F64, lower: F64, upper: F64
                 ) -> tuple[F64, F64]:
    """The part [s_lo, s_hi] of s ∈ [0, 1] where lower ≤ hl(s) and hu(s) ≤ upper,
    with hl, hu linear from their values at 0 and 1 (s_lo > s_hi: none)."""
    s_lo = np.zeros_like(hl0)
    s_hi = np.ones_like(hl0)
    with np.errstate(divide="ignore", invalid="ignore"):
        # lower ≤ hl0 + s (hl1 − hl0)
        dl = hl1 - hl0
        cross = (lower - hl0) / dl
        s_lo = np.where(dl > 0, np.maximum(s_lo, cross), s_lo)
        s_hi = np.where(dl < 0, np.minimum(s_hi, cross), s_hi)
        s_hi = np.where((dl == 0) & (hl0 < lower), -1.0, s_hi)
        # hu0 + s (hu1 − hu0) ≤ upper
        du = hu1 - hu0
        cross = (upper - hu0) / du
        s_hi = np.where(du > 0, np.minimum(s_hi, cross), s_hi)
        s_lo = np.where(du < 0, np.maximum(s_lo, cross), s_lo)
        s_hi = np.where((du == 0) & (hu0 > upper), -1.0, s_hi)
    s_lo = np.where(np.isnan(s_lo), 0.0, s_lo)
    s_hi = np.where(np.isnan(s_hi), -1.0, s_hi)
    return s_lo, s_hi


@njit(cache=True, nogil=True)
def _pair_kernel(pi: I64, vj: I64, q0x: F64, q0y: F64, q1x: F64, q1y: F64, a_lo: F64,
                 a_hi: F64, b_lo: F64, b_hi: F64, kind: NDArray[np.int8], e_start: I64,
                 e_end: I64, ax: F64, ay: F64, bx: F64, by: F64, cx: F64, cy: F64, cr: F64
                 ) -> tuple[NDArray[np.bool_], F64, F64, F64, F64, F64, F64
                            ]:  # pragma: no cover - jitted
    """Per (track pi[k], volume vj[k]) pair, with the path from q0 to q1 (plane m):
    inside horizontally now; distance to the boundary now (m); the first s in the
    height band's parts [a_lo, a_hi] ∪ [b_lo, b_hi] (parts with lo > hi are empty)
    where the mean path is inside (NaN: none); the volume's extent across the path
    within its length (lateral m, left positive; ±inf when the path runs inside);
    the nearest along-path distance of that extent (m); the path's length (m).

    Written as a loop for numba: the work per pair is a walk over that volume's
    edges, whose count varies (10 to hundreds), which numpy can only do padded.
    """
    m = pi.shape[0]
    inside = np.zeros(m, dtype=np.bool_)
    dist = np.empty(m)
    entry = np.empty(m)
    lat_lo = np.empty(m)
    lat_hi = np.empty(m)
    a_first = np.empty(m)
    length = np.empty(m)
    for k in range(m):
        i = pi[k]
        j = vj[k]
        x0 = q0x[i]
        y0 = q0y[i]
        dx = q1x[i] - x0
        dy = q1y[i] - y0
        L = math.sqrt(dx * dx + dy * dy)
        if L > 1e-9:
            ux = dx / L
            uy = dy / L
        else:
            ux = 1.0
            uy = 0.0
            L = 0.0
        nx = -uy
        ny = ux
        al = a_lo[k]
        ah = a_hi[k]
        bl = b_lo[k]
        bh = b_hi[k]
        xa_s = x0 + al * dx
        ya_s = y0 + al * dy
        xb_s = x0 + bl * dx
        yb_s = y0 + bl * dy
        lo = math.inf
        hi = -math.inf
        first = math.inf
        ent_a = math.inf
        ent_b = math.inf
        if kind[j] == 1:
            ca = (cx[j] - x0) * ux + (cy[j] - y0) * uy
            cl = (cx[j] - x0) * nx + (cy[j] - y0) * ny
            r = cr[j]
            d0 = math.sqrt(ca * ca + cl * cl)
            ins = d0 <= r
            dmin = abs(d0 - r)
            in_a = (xa_s - cx[j]) ** 2 + (ya_s - cy[j]) ** 2 <= r * r
            in_b = (xb_s - cx[j]) ** 2 + (yb_s - cy[j]) ** 2 <= r * r
            if abs(cl) <= r:
                a_in = ca - math.sqrt(r * r - cl * cl)
                if al * L <= a_in <= ah * L:
                    ent_a = a_in
                if bl * L <= a_in <= bh * L:
                    ent_b = a_in
            if ca + r >= 0.0 and ca - r <= L:
                lo = cl - r
                hi = cl + r
                first = max(0.0, ca - r)
        else:
            ins = False
            in_a = False
            in_b = False
            dmin = math.inf
            for e in range(e_start[j], e_end[j]):
                xa = ax[e]
                ya = ay[e]
                xb = bx[e]
                yb = by[e]
                ex = xb - xa
                ey = yb - ya
                # Point in polygon (even-odd, ray towards +x): now, and where each part
                # of the height band begins.
                if (ya > y0) != (yb > y0) and x0 < xa + (y0 - ya) * ex / ey:
                    ins = not ins
                if al > 0.0 and (ya > ya_s) != (yb > ya_s) and xa_s < xa + (ya_s - ya) * ex / ey:
                    in_a = not in_a
                if (ya > yb_s) != (yb > yb_s) and xb_s < xa + (yb_s - ya) * ex / ey:
                    in_b = not in_b
                # Distance from the point now to the edge (squared).
                ee = ex * ex + ey * ey
                f = ((x0 - xa) * ex + (y0 - ya) * ey) / ee if ee > 0.0 else 0.0
                f = min(1.0, max(0.0, f))
                px = xa + f * ex - x0
                py = ya + f * ey - y0
                dmin = min(dmin, px * px + py * py)
                # The edge in path coordinates (along a, across l).
                a1 = (xa - x0) * ux + (ya - y0) * uy
                l1 = (xa - x0) * nx + (ya - y0) * ny
                a2 = (xb - x0) * ux + (yb - y0) * uy
                l2 = (xb - x0) * nx + (yb - y0) * ny
                # Crossing of the mean path (l = 0), entering when the path goes to the
                # edge's left (the inside).
                if (l1 > 0.0) != (l2 > 0.0) and ux * -ey + uy * ex > 0.0:
                    a = a1 + (a2 - a1) * l1 / (l1 - l2)
                    if al * L <= a <= ah * L:
                        ent_a = min(ent_a, a)
                    if bl * L <= a <= bh * L:
                        ent_b = min(ent_b, a)
                # The part of the edge alongside the path (0 ≤ a ≤ L).
                if a1 == a2:
                    t0 = 0.0 if 0.0 <= a1 <= L else 2.0
                    t1 = 1.0 if 0.0 <= a1 <= L else -1.0
                else:
                    ta = (0.0 - a1) / (a2 - a1)
                    tb = (L - a1) / (a2 - a1)
                    t0 = max(0.0, min(ta, tb))
                    t1 = min(1.0, max(ta, tb))
                if t0 <= t1:
                    for tt in (t0, t1):
                        lv = l1 + tt * (l2 - l1)
                        av = a1 + tt * (a2 - a1)
                        lo = min(lo, lv)
                        hi = max(hi, lv)
                        first = min(first, av)
            dmin = math.sqrt(dmin)
            if al == 0.0:
                in_a = ins
            if ins and lo == math.inf:
                lo = -math.inf  # the whole path runs inside
                hi = math.inf
                first = 0.0
        inside[k] = ins
        dist[k] = dmin
        e_s = math.nan
        if al <= ah:
            if in_a:
                e_s = al
            elif ent_a != math.inf and L > 0.0:
                e_s = ent_a / L
        if math.isnan(e_s) and bl <= bh:
            if in_b:
                e_s = bl
            elif ent_b != math.inf and L > 0.0:
                e_s = ent_b / L
        entry[k] = e_s
        lat_lo[k] = lo
        lat_hi[k] = hi
        a_first[k] = first if first != math.inf else L
        length[k] = L
    return inside, dist, entry, lat_lo, lat_hi, a_first, length
