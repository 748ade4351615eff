"""Crewed aircraft replayed from real recorded ADS-B trajectories (see data/README.md).

A recording is cleaned once per process. Spikes are dropped first: positions that
stand out from their neighbours (a Hampel filter; the files hold position jumps and
runs of interpolated 1,000 ft height spikes), and reported velocities (groundspeed,
track, vertical rate) that disagree with the velocity the positions imply (the odd
265 kt among 40 kt). What is left is fused by a nearly-constant-velocity
Rauch–Tung–Striebel smoother: positions at the time of the position itself
(``last_position`` where the file has it), velocities at their report times. The
smoothed states are interpolated to the scan times by cubic Hermite splines, so
that position and velocity agree, and never across a gap in the data.

A recording flown near the scenario origin is replayed where it was flown; one from
elsewhere is moved (horizontally, keeping its height above its own ground) to a
point around the origin. Times are shifted to the scenario's start.
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
from numpy.typing import NDArray

from skyfence.geo import Origin, height_above_origin_m
from skyfence.sim.motion import TargetStates, lift
from skyfence.types import F64

FT_M = 0.3048
KT_MPS = 1852.0 / 3600.0
FPM_MPS = FT_M / 60.0
#: A recording whose centre is within this of the scenario origin is replayed in place.
IN_PLACE_MAX_M = 50_000.0
#: Heights above the recording's ground below which the aircraft counts as landed.
AIRBORNE_MIN_M = 30.0


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    file: str
    #: Ground height in the same reference as the recorded heights (m): geoaltitude is
    #: taken as height above the WGS84 ellipsoid, barometric altitude as height above
    #: sea level in a standard atmosphere.
    ground_m: float
    #: Horizontal position noise (m, 1σ): positions stamped with their own time are
    #: good to the ADS-B quantisation; resampled ones jitter with their timing.
    pos_std_m: float = 8.0
    #: Horizontal acceleration spectral density of the smoother (m²/s³).
    accel_psd: float = 1.0
    #: ADS-B emitter category its transponder would send (DO-260B set A): A1 light
    #: (< 15,500 lb), A7 rotorcraft. The recordings carry none; this is from the type.
    adsb_category: str = "A1"


RECORDINGS: dict[str, RecordingInfo] = {
    # Zurich: ~430 m above sea level, geoid ~48 m above the ellipsoid. A rescue
    # helicopter: rotorcraft.
    "rega_zh": RecordingInfo("rega_zh.json.gz", ground_m=480.0, adsb_category="A7"),
    # Toulouse: ~145 m above sea level, geoid ~50 m above the ellipsoid. A medical
    # helicopter: rotorcraft.
    "samu31": RecordingInfo("samu31.json.gz", ground_m=195.0, adsb_category="A7"),
    # No geoaltitude in this file; its barometric altitude reads 0–125 ft on the
    # ground at Lydd (13 ft above sea level). Its positions, resampled to 10 s
    # without their own times, jump by tens of metres. A light patrol aeroplane.
    "border_control": RecordingInfo("border_control.json.gz", ground_m=0.0, pos_std_m=40.0,
                                    accel_psd=0.5, adsb_category="A1"),
}

# Smoother noise (1σ), vertical axis: 25 ft altitude steps; 64 ft/min rate steps.
_HEIGHT_STD_M = 10.0
_VEL_STD_MPS = np.array([1.5, 1.5, 0.6])  # 1 kt / 1° quantisation horizontally
_VERTICAL_ACCEL_PSD = 0.3  # m²/s³
#: Hampel filter on positions: half-window (samples) and the smallest deviation (m)
#: called an outlier, per ENU axis.
_HAMPEL_HALF = 3
_HAMPEL_HALF_HEIGHT = 8
_HAMPEL_POS_M = np.array([150.0, 150.0, 60.0])
#: Reported and position-derived velocities agree within this (m/s) plus a fraction
#: of the speed (a chord through a turn is shorter than the arc).
_AGREE_H_MPS, _AGREE_FRACTION, _AGREE_V_MPS = 8.0, 0.15, 4.0
#: Shortest baseline (s) of a position-derived velocity: ADS-B positions jitter by metres.
_CHORD_MIN_S = 6.0


@dataclass(frozen=True, slots=True)
class Recording:
    """One cleaned recording, in its own local ENU frame.

    ``ref`` is the recording's centre at its ground height (so ENU up near the centre
    is height above its ground); ``t`` (K,) epoch seconds of the positions; ``x``
    (K, 6) smoothed ENU position and velocity (m, m/s); ``gap_after`` (K-1,) marks
    intervals not to interpolate across. ``reported_t`` and ``reported_speed_mps``
    are the raw groundspeeds, for checks.
    """

    name: str
    callsign: str
    icao24: str
    ref: Origin
    t: F64
    x: F64
    gap_after: NDArray[np.bool_]
    reported_t: F64
    reported_speed_mps: F64

    def interpolate(self, t_s: F64) -> tuple[F64, F64, NDArray[np.bool_]]:
        """Local ENU position (n, 3), velocity (n, 3) and validity (n,) at ``t_s`` epoch
        seconds; invalid (outside the recording or inside a gap) rows are NaN."""
        tq = np.asarray(t_s, dtype=np.float64)
        k = self.t.size
        i = np.clip(np.searchsorted(self.t, tq, side="right") - 1, 0, k - 2)
        valid = (tq >= self.t[0]) & (tq <= self.t[-1]) & ~self.gap_after[i]
        h = self.t[i + 1] - self.t[i]
        s = ((tq - self.t[i]) / h)[:, None]
        p0, v0 = self.x[i, :3], self.x[i, 3:]
        p1, v1 = self.x[i + 1, :3], self.x[i + 1, 3:]
        hh = h[:, None]
        s2, s3 = s * s, s * s * s
        pos = ((2 * s3 - 3 * s2 + 1) * p0 + (s3 - 2 * s2 + s) * hh * v0
               + (-2 * s3 + 3 * s2) * p1 + (s3 - s2) * hh * v1)
        vel = ((6 * s2 - 6 * s) * p0 / hh + (3 * s2 - 4 * s + 1) * v0
               + (-6 * s2 + 6 * s) * p1 / hh + (3 * s2 - 2 * s) * v1)
        pos[~valid] = np.nan
        vel[~valid] = np.nan
        return pos, vel, valid


def _read_rows(file: str) -> list[dict[str, Any]]:
    blob = resources.files("skyfence.sim").joinpath("data").joinpath(file).read_bytes()
    rows: list[dict[str, Any]] = json.loads(gzip.decompress(blob))
    return rows


def _num(row: dict[str, Any], key: str) -> float:
    v = row.get(key)
    return math.nan if v is None else float(v)


def hampel(x: F64, floor: F64, *, half: int = _HAMPEL_HALF) -> NDArray[np.bool_]:
    """Rows of ``x`` (n, m) whose value on any axis is further from the median of the
    surrounding 2·half + 1 samples than max(4.5 MAD, ``floor``): isolated spikes."""
    n = x.shape[0]
    if n < 2 * half + 1:
        return np.zeros(n, dtype=bool)
    pad = np.concatenate([np.repeat(x[:1], half, axis=0), x, np.repeat(x[-1:], half, axis=0)])
    win = np.lib.stride_tricks.sliding_window_view(pad, 2 * half + 1, axis=0)  # (n, m, w)
    med = np.median(win, axis=-1)
    mad = np.median(np.abs(win - med[..., None]), axis=-1)
    bad: NDArray[np.bool_] = np.any(np.abs(x - med) > np.maximum(4.5 * mad, floor), axis=1)
    return bad


def chord_velocity(pos_t: F64, pos: F64, t_s: F64, *, baseline_s: float) -> F64:
    """Velocity (n, 3) at ``t_s`` from positions (K, 3) at ``pos_t``, as the chord of
    the linearly interpolated track over ±``baseline_s``/2 (clamped at the ends)."""
    a = np.clip(t_s - 0.5 * baseline_s, pos_t[0], pos_t[-1])
    b = np.clip(t_s + 0.5 * baseline_s, pos_t[0], pos_t[-1])
    span = np.maximum(b - a, 1e-9)
    out: F64 = np.stack(
        [(np.interp(b, pos_t, pos[:, k]) - np.interp(a, pos_t, pos[:, k])) / span
         for k in range(3)], axis=-1,
    )
    return out


def _smooth(pos_t: F64, pos: F64, vel_t: F64, vel: F64, info: RecordingInfo) -> F64:
    """RTS-smoothed (K, 6) states at ``pos_t`` from positions (K, 3; NaN rows are
    skipped) and velocities measured at ``vel_t``.

    Each axis is an independent nearly-constant-velocity model.
    """
    # Events: (time, kind 0 position / 1 velocity, index); positions first at a tie.
    times = np.concatenate([pos_t, vel_t])
    kinds = np.concatenate([np.zeros(pos_t.size, np.int64), np.ones(vel_t.size, np.int64)])
    index = np.concatenate([np.arange(pos_t.size), np.arange(vel_t.size)])
    order = np.lexsort((kinds, times))
    times, kinds, index = times[order], kinds[order], index[order]
    n_ev = times.size
    eye = np.eye(2)
    xf = np.empty((n_ev, 3, 2))
    pf = np.empty((n_ev, 3, 2, 2))
    xp = np.empty((n_ev, 3, 2))
    pp = np.empty((n_ev, 3, 2, 2))
    fs = np.empty((n_ev, 2, 2))
    x = np.zeros((3, 2))
    x[:, 0] = pos[np.flatnonzero(np.isfinite(pos[:, 0]))[0]]
    p = np.zeros((3, 2, 2))
    p[:, 0, 0] = 100.0**2
    p[:, 1, 1] = 100.0**2
    t_prev = times[0]
    q = np.array([info.accel_psd, info.accel_psd, _VERTICAL_ACCEL_PSD])[:, None, None]
    pos_var = np.array([info.pos_std_m, info.pos_std_m, _HEIGHT_STD_M]) ** 2
    for e in range(n_ev):
        dt = times[e] - t_prev
        t_prev = times[e]
        f = np.array([[1.0, dt], [0.0, 1.0]])
        x = x @ f.T
        p = f @ p @ f.T + q * np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]])
        fs[e], xp[e], pp[e] = f, x, p
        j = kinds[e]
        z = pos[index[e]] if j == 0 else vel[index[e]]
        if np.isfinite(z[0]):
            r = pos_var if j == 0 else _VEL_STD_MPS**2
            gain = p[:, :, j] / (p[:, j, j] + r)[:, None]  # (3, 2)
            x = x + gain * (z - x[:, j])[:, None]
            h = np.zeros(2)
            h[j] = 1.0
            p = (eye - gain[:, :, None] * h) @ p
            p = 0.5 * (p + np.swapaxes(p, 1, 2))
        xf[e], pf[e] = x, p
    xs = xf.copy()
    for e in range(n_ev - 2, -1, -1):
        c = pf[e] @ fs[e + 1].T @ np.linalg.inv(pp[e + 1])
        xs[e] = xf[e] + np.einsum("aij,aj->ai", c, xs[e + 1] - xp[e + 1])
    at_pos = np.flatnonzero(kinds == 0)
    out = np.empty((pos_t.size, 6))
    # The last event at a position time carries every measurement at that time.
    last = np.searchsorted(times, times[at_pos], side="right") - 1
    out[index[at_pos], :3] = xs[last, :, 0]
    out[index[at_pos], 3:] = xs[last, :, 1]
    return out


@cache
def load_recording(name: str) -> Recording:
    """The cleaned recording ``name`` (a key of ``RECORDINGS``); cached per process."""
    info = RECORDINGS[name]
    rows = sorted(_read_rows(info.file), key=lambda r: r["timestamp"])
    stamp = np.array([r["timestamp"] for r in rows], dtype=np.float64) / 1000.0
    pos_time = np.array(
        [r["last_position"] if r.get("last_position") is not None else r["timestamp"]
         for r in rows], dtype=np.float64,
    ) / 1000.0
    lat = np.array([_num(r, "latitude") for r in rows])
    lon = np.array([_num(r, "longitude") for r in rows])
    # geoaltitude is GNSS height, taken as above the WGS84 ellipsoid; where absent the
    # barometric altitude stands in (RecordingInfo.ground_m is in the same reference).
    geo = np.array([_num(r, "geoaltitude") for r in rows])
    baro = np.array([_num(r, "altitude") for r in rows])
    height = np.where(np.isfinite(geo), geo, baro) * FT_M
    gs = np.array([_num(r, "groundspeed") for r in rows]) * KT_MPS
    track = np.radians(np.array([_num(r, "track") for r in rows]))
    vrate = np.array([_num(r, "vertical_rate") for r in rows]) * FPM_MPS

    has_pos = np.isfinite(lat) & np.isfinite(lon) & np.isfinite(height)
    # The same position is repeated while no new one arrives: keep it once.
    pos_t, first = np.unique(pos_time[has_pos], return_index=True)
    sel = np.flatnonzero(has_pos)[first]
    ref = Origin(lat_deg=float(np.median(lat[sel])), lon_deg=float(np.median(lon[sel])),
                 alt_m=info.ground_m)
    # Heights above the ellipsoid here stand for heights above the reference surface
    # of the recording; ENU "up" at the centre is then height above its ground.
    local = ref.geodetic_to_enu(lat[sel], lon[sel], height[sel])
    has_vel = np.isfinite(gs) & np.isfinite(track) & np.isfinite(vrate)
    # Reported velocities are in the aircraft's local axes; within a few tens of km of
    # the centre these differ from the reference's by well under a degree.
    vel = np.stack([gs * np.sin(track), gs * np.cos(track), vrate], axis=-1)[has_vel]
    vel_t = stamp[has_vel]
    # Spikes are dropped before smoothing; positions keep their times as NaN rows.
    # Heights get a wider window: the files hold runs of several interpolated spikes.
    bad_pos = (hampel(local[:, :2], _HAMPEL_POS_M[:2])
               | hampel(local[:, 2:], _HAMPEL_POS_M[2:], half=_HAMPEL_HALF_HEIGHT))
    measured = np.where(bad_pos[:, None], np.nan, local)
    # A reported velocity must agree with the positions around it.
    chord = chord_velocity(pos_t[~bad_pos], local[~bad_pos], vel_t,
                           baseline_s=max(_CHORD_MIN_S, 2.0 * float(np.median(np.diff(pos_t)))))
    miss = np.abs(vel - chord)
    good_vel = ((np.hypot(miss[:, 0], miss[:, 1])
                 <= _AGREE_H_MPS + _AGREE_FRACTION * np.hypot(chord[:, 0], chord[:, 1]))
                & (miss[:, 2] <= _AGREE_V_MPS))
    x = _smooth(pos_t, measured, vel_t[good_vel], vel[good_vel], info)
    dt = np.diff(pos_t)
    max_gap_s = max(15.0, 3.0 * float(np.median(dt)))
    return Recording(
        name=name,
        callsign=str(rows[0].get("callsign") or "").strip(),
        icao24=str(rows[0].get("icao24") or ""),
        ref=ref, t=pos_t, x=x, gap_after=dt > max_gap_s,
        reported_t=stamp[has_vel], reported_speed_mps=gs[has_vel],
    )


@dataclass(frozen=True, slots=True)
class CrewedTruth:
    states: TargetStates
    #: For each target: the recording it replays and whether it was moved.
    sources: tuple[tuple[str, bool], ...]


def _height_and_rate(ref: Origin, pos: F64, vel: F64, eps_s: float = 0.05) -> tuple[F64, F64]:
    h = height_above_origin_m(ref, pos)
    rate = (height_above_origin_m(ref, pos + vel * eps_s)
            - height_above_origin_m(ref, pos - vel * eps_s)) / (2 * eps_s)
    return h, rate


def replay(
    origin: Origin,
    times_abs_s: F64,
    rng: np.random.Generator,
    *,
    names: tuple[str, ...],
    t_start: float,
    duration_s: float,
    moved_range_m: tuple[float, float] = (5_000.0, 20_000.0),
) -> CrewedTruth:
    """Replay ``names`` (one target each) at ``times_abs_s`` (epoch s).

    Each replays a window of its recording drawn while the aircraft is airborne; a
    name given twice replays another window, moved. Recordings flown far from the
    origin (and repeats) are centred at a ground range drawn from ``moved_range_m``.
    """
    t_rel = times_abs_s - t_start
    n_t = t_rel.size
    pos = np.full((n_t, len(names), 3), np.nan)
    vel = np.full((n_t, len(names), 3), np.nan)
    alive = np.zeros((n_t, len(names)), dtype=bool)
    sources: list[tuple[str, bool]] = []
    seen: set[str] = set()
    for i, name in enumerate(names):
        rec = load_recording(name)
        h_all = height_above_origin_m(rec.ref, rec.x[:, :3])
        up = np.flatnonzero(h_all > AIRBORNE_MIN_M)
        a0, a1 = (rec.t[up[0]], rec.t[up[-1]]) if up.size else (rec.t[0], rec.t[-1])
        w0 = rng.uniform(a0, max(a0, a1 - duration_s))
        p_loc, v_loc, ok = rec.interpolate(w0 + t_rel)
        centre_dist = float(np.linalg.norm(origin.ecef_to_enu(rec.ref.ecef_m)[:2]))
        moved = name in seen or centre_dist > IN_PLACE_MAX_M
        seen.add(name)
        bearing = rng.uniform(0.0, 2 * math.pi)
        ground_range = rng.uniform(*moved_range_m)
        if not ok.any():
            sources.append((name, moved))
            continue
        if moved:
            centre = p_loc[ok, :2].mean(axis=0)
            to = ground_range * np.array([math.sin(bearing), math.cos(bearing)])
            h, dh = _height_and_rate(rec.ref, p_loc[ok], v_loc[ok])
            ground = np.column_stack([p_loc[ok, :2] - centre + to, h])
            rate = np.column_stack([v_loc[ok, :2], dh])
            pos[ok, i], vel[ok, i] = lift(origin, ground, rate)
        else:
            pos[ok, i] = origin.ecef_to_enu(rec.ref.enu_to_ecef(p_loc[ok]))
            vel[ok, i] = rec.ref.enu_velocity_to_ecef(v_loc[ok]) @ origin.rotation.T
        alive[:, i] = ok
        sources.append((name, moved))
    return CrewedTruth(TargetStates(pos=pos, vel=vel, alive=alive), tuple(sources))
