"""The node's engine: detections in, the picture and its alerts out.

Synchronous and deterministic (time comes from the data, or from the caller's clock
for releasing the reorder window): detections go through the reorder window, the
tracker steps once per distinct time, the picture classifies and groups, the watch
checks zones and sites and runs the alert book. Each step gives an ``Update`` — the
frame as JSON-ready rows with a sequence number — which the service publishes,
stores and serves. No sockets, no database, no threads here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from skyfence.alerts import (
    FAMILIES,
    KINDS,
    AlertBook,
    AlertConfig,
    AlertEvent,
    Severity,
    Watch,
    watch_input,
)
from skyfence.classify import CLASSES
from skyfence.picture import Frame, Picture
from skyfence.pipeline import batch_bounds
from skyfence.scenario import Scenario
from skyfence.track import ReorderBuffer, Tracker, TrackerConfig
from skyfence.types import Detections, TrackFlag, TrackStatus
from skyfence.zones.model import Zone
from skyfence.zones.monitor import Ground, MonitorConfig
from skyfence.zones.sites import Site

_STATUS = ("tentative", "confirmed", "coasting")


@dataclass(frozen=True, slots=True)
class Update:
    """One tracker step, ready to publish: ``seq`` (increasing by one per update for the
    life of the engine), ``t`` (the data's time, Unix s), the rows (``TRACK_FIELDS``) of
    the shown tracks that changed — a picture delta: a track a sensor updated at this
    step, newly shown, or whose class, flags, group or status changed; the others stand
    as last sent —, the ids of tracks gone since the previous update, the groups
    (``GROUP_FIELDS``, all of them), and the alert events of this step. ``changed``
    marks the rows of ``frame.tracks`` that ``tracks`` holds."""

    seq: int
    t: float
    tracks: list[dict[str, Any]]
    removed: list[int]
    groups: list[dict[str, Any]]
    alerts: list[AlertEvent]
    frame: Frame = field(repr=False, compare=False)
    changed: NDArray[np.bool_] | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"type": "update", "seq": self.seq, "t": self.t, "tracks": self.tracks,
                "removed": self.removed, "groups": self.groups,
                "alerts": [e.to_json() for e in self.alerts]}


#: Every field of a track row (API, WebSocket, history): name, JSON type, unit, meaning.
TRACK_FIELDS: tuple[tuple[str, str, str, str], ...] = (
    ("id", "integer", "", "track id, unique for the life of the node"),
    ("lat_deg", "number", "deg", "WGS84 latitude"),
    ("lon_deg", "number", "deg", "WGS84 longitude"),
    ("height_m", "number", "m", "height above the WGS84 ellipsoid"),
    ("height_agl_m", "number", "m", "height above the origin's ground"),
    ("speed_mps", "number", "m/s", "horizontal speed"),
    ("course_deg", "number", "deg", "course over ground, clockwise from north"),
    ("climb_mps", "number", "m/s", "vertical speed"),
    ("sd_h_m", "number", "m", "horizontal position 1σ (the larger axis)"),
    ("status", "string", "", "confirmed | coasting"),
    ("class", "string", "", " | ".join(CLASSES)),
    ("class_p", "number", "", "probability of that class"),
    ("reasons", "string", "", "the evidence for the class"),
    ("identity", "string", "", "icao:… / rid:… or empty"),
    ("flags", "array", "", "spoof_suspect, dark, cooperative_only, rf_emitter"),
    ("group", "integer", "", "group (swarm) id, −1 for none"),
)
GROUP_FIELDS: tuple[tuple[str, str, str, str], ...] = (
    ("id", "integer", "", "group id"),
    ("count", "integer", "", "members"),
    ("lat_deg", "number", "deg", "centroid latitude"),
    ("lon_deg", "number", "deg", "centroid longitude"),
    ("height_m", "number", "m", "centroid height above the WGS84 ellipsoid"),
    ("extent_m", "number", "m", "largest distance of a member from the centroid"),
    ("speed_mps", "number", "m/s", "horizontal speed of the mean velocity"),
    ("course_deg", "number", "deg", "course of the mean velocity"),
    ("members", "array", "", "member track ids"),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineConfig:
    window_s: float = 1.0
    tracker: TrackerConfig | None = None
    monitor: MonitorConfig | None = None
    alerts: AlertConfig | None = None


class Engine:
    """Tracker, picture and watch for one scenario (origin and sensors)."""

    def __init__(self, scenario: Scenario, *, zones: Sequence[Zone] = (),
                 sites: Sequence[Site] = (), ground: Ground | None = None,
                 config: EngineConfig | None = None) -> None:
        cfg = config or EngineConfig()
        self.config = cfg
        self.scenario = scenario
        self.tracker = Tracker.from_scenario(scenario, config=cfg.tracker)
        self.picture = Picture.for_scenario(scenario)
        self._ground = ground
        self.watch = Watch(scenario.origin, zones, sites, ground=ground, monitor=cfg.monitor,
                           config=cfg.alerts)
        self.reorder = ReorderBuffer(window_s=cfg.window_s)
        self.seq = 0
        self.last: Update | None = None
        self.late = 0
        self.detections_in = 0
        self.shown = PictureRows()

    # ------------------------------------------------------------------ input

    def push(self, det: Detections, *, now: float | None = None) -> list[Update]:
        """Take detections (any sensors, times within the window); the updates of the
        tracker steps this lets through. ``now``: the caller's clock, which releases
        the window when the data is quiet (Unix s)."""
        self.detections_in += len(det)
        released = self.reorder.push(det, now=now)
        self.late += len(released.late)
        return self._run(released.ready)

    def flush(self) -> list[Update]:
        """Everything still held in the window (end of input)."""
        return self._run(self.reorder.flush())

    def _run(self, det: Detections) -> list[Update]:
        out = []
        for a, b in zip(*batch_bounds(det.t), strict=True):
            update = self.tracker.step(det.take(slice(a, b)))
            frame = self.picture.update(update)
            events = self.watch.update(watch_input(frame, update.deleted))
            out.append(self._update(frame, events))
        return out

    # ------------------------------------------------------------------ zones, alerts

    @property
    def zones(self) -> tuple[Zone, ...]:
        return self.watch.monitor.zones

    @property
    def sites(self) -> tuple[Site, ...]:
        return self.watch.sites

    def set_zones(self, zones: Sequence[Zone]) -> list[AlertEvent]:
        """Replace the zones; the alerts of zones that went are cleared (returned)."""
        self.watch, events = self.watch.with_zones(zones)
        return events

    def acknowledge(self, alert_id: int, *, by: str, t: float | None = None) -> AlertEvent:
        when = t if t is not None else (self.last.t if self.last is not None else 0.0)
        return self.watch.book.acknowledge(alert_id, t=when, by=by)

    # ------------------------------------------------------------------ output

    def _update(self, frame: Frame, events: list[AlertEvent]) -> Update:
        self.seq += 1
        changed, tracks, removed = self.shown.step(frame, self.scenario)
        groups = group_rows(frame, self.scenario)
        up = Update(seq=self.seq, t=frame.t, tracks=tracks, removed=removed, groups=groups,
                    alerts=events, frame=frame, changed=changed)
        self.last = up
        return up

    def snapshot(self) -> dict[str, Any]:
        """The whole picture now (what a client that starts or lost its place gets):
        every shown track's row as last sent, the groups, the active alerts."""
        last = self.last
        return {"type": "snapshot", "seq": self.seq, "t": None if last is None else last.t,
                "tracks": self.shown.rows(),
                "groups": [] if last is None else last.groups,
                "alerts": alert_rows(self.watch.book)}


class RowBook:
    """Track rows by id as a client that took every update holds them."""

    def __init__(self) -> None:
        self._rows: dict[int, dict[str, Any]] = {}

    def take(self, rows: list[dict[str, Any]], removed: list[int]) -> None:
        for i in removed:
            self._rows.pop(i, None)
        for row in rows:
            self._rows[row["id"]] = row

    def rows(self) -> list[dict[str, Any]]:
        return list(self._rows.values())


class PictureRows:
    """The rows of the shown tracks as a client that took every update holds them, and
    which tracks of a new frame change them.

    A tracker that steps on each sensor's scan and each partner's picture apart moves
    every track at every step (its prediction), but only the tracks a sensor updated
    have news: sending every row each step would make a node of three partners encode
    and send its whole picture three times a second. A row is sent when its track was
    updated by a sensor at the step, is new to the picture, or changed class, flags,
    group or status; the rest stand as last sent."""

    def __init__(self) -> None:
        self.book = RowBook()
        self._ids = np.empty(0, dtype=np.int64)  # sorted
        self._key = np.empty((0, 4), dtype=np.int64)

    def step(self, frame: Frame, scenario: Scenario
             ) -> tuple[NDArray[np.bool_], list[dict[str, Any]], list[int]]:
        """Take ``frame``: which of its tracks changed, their rows, and the ids gone."""
        tr = frame.tracks
        key = _row_key(frame)
        if self._ids.size == 0:
            changed = np.ones(len(tr), dtype=bool)
        else:
            pos = np.minimum(np.searchsorted(self._ids, tr.id), self._ids.size - 1)
            same = (self._ids[pos] == tr.id) & np.all(self._key[pos] == key, axis=1)
            changed = np.asarray(~same | (tr.t_last >= frame.t))
        removed = np.setdiff1d(self._ids, tr.id).tolist()
        rows = track_rows(frame, scenario, only=changed)
        self.book.take(rows, removed)
        order = np.argsort(tr.id, kind="stable")
        self._ids, self._key = tr.id[order], key[order]
        return changed, rows, removed

    def rows(self) -> list[dict[str, Any]]:
        return self.book.rows()


def _row_key(frame: Frame) -> NDArray[np.int64]:
    """What of a track's row may change without a sensor's update: class, flags,
    group, status (n, 4)."""
    tr = frame.tracks
    return np.stack([frame.classes.label.astype(np.int64), tr.flags.astype(np.int64),
                     frame.group.astype(np.int64), tr.status.astype(np.int64)], axis=1)


def alert_row(a: Any) -> dict[str, Any]:
    """An active alert (``skyfence.alerts.Alert``) as JSON."""
    lat, lon, h = a.position if a.position is not None else (None, None, None)
    def num(x: float | None) -> float | None:
        return None if x is None or not math.isfinite(x) else x

    return {"alert": a.id, "kind": a.kind, "severity": str(a.severity), "reason": a.reason,
            "track": a.track, "zone": a.zone, "site": a.site, "group": a.group,
            "time_to_breach_s": num(a.ttb), "probability": num(a.probability),
            "raised_t": a.raised_t, "updated_t": a.updated_t,
            "acknowledged_by": a.acknowledged_by, "acknowledged_t": a.acknowledged_t,
            "lat_deg": lat, "lon_deg": lon, "height_m": h}


_KIND_NAMES = np.array(KINDS, dtype=object)
_SEVERITY_NAMES = np.array([None, *(str(s) for s in Severity)], dtype=object)


def alert_rows(book: AlertBook) -> list[dict[str, Any]]:
    """The book's active alerts as rows (``alert_row``), in id order, from its table."""
    a = book.table
    if len(a) == 0:
        return []
    family = np.asarray(FAMILIES)[a.family]
    zoned = (family == "zone") | (family == "track_lost_in_zone")
    swarm = family == "swarm"
    zone_ids = np.array([z.id for z in book.zones] + [None], dtype=object)
    site_ids = np.array([s.id for s in book.sites] + [None], dtype=object)

    def some(values: np.ndarray, where: np.ndarray) -> list[Any]:
        """``values`` as Python numbers, None where not ``where``."""
        out = values.astype(object)
        out[~where] = None
        return list(out.tolist())

    pos = a.position
    return [{"alert": i, "kind": k, "severity": sv, "reason": r, "track": tr, "zone": z,
             "site": si, "group": g, "time_to_breach_s": tb, "probability": p,
             "raised_t": rt, "updated_t": ut, "acknowledged_by": ab, "acknowledged_t": at,
             "lat_deg": la, "lon_deg": lo, "height_m": h}
            for i, k, sv, r, tr, z, si, g, tb, p, rt, ut, ab, at, la, lo, h in zip(
                a.id.tolist(), _KIND_NAMES[a.kind].tolist(),
                _SEVERITY_NAMES[a.severity].tolist(), a.reason.tolist(),
                some(a.subject, ~swarm), zone_ids[np.where(zoned, a.place, -1)].tolist(),
                site_ids[np.where(family == "site", a.place, -1)].tolist(),
                some(a.subject, swarm), some(a.ttb, np.isfinite(a.ttb)),
                some(a.probability, np.isfinite(a.probability)), a.raised_t.tolist(),
                a.updated_t.tolist(), a.acknowledged_by.tolist(),
                some(a.acknowledged_t, ~np.isnan(a.acknowledged_t)),
                some(pos[:, 0], a.has_position), some(pos[:, 1], a.has_position),
                some(pos[:, 2], a.has_position), strict=True)]


def track_rows(frame: Frame, scenario: Scenario, *, only: NDArray[np.bool_] | None = None
               ) -> list[dict[str, Any]]:
    """The frame's tracks as rows (``TRACK_FIELDS``), vectorised to the last step;
    ``only``: those of these rows."""
    if only is not None and not only.all():
        idx = np.flatnonzero(only)
        frame = replace(frame, tracks=frame.tracks.take(only),
                        classes=frame.classes.take(idx), group=frame.group[idx])
    tr = frame.tracks
    n = len(tr)
    if n == 0:
        return []
    lat, lon, h = scenario.origin.enu_to_geodetic(tr.x[:, :3])
    v = tr.x[:, 3:6]
    speed = np.hypot(v[:, 0], v[:, 1])
    course = np.degrees(np.arctan2(v[:, 0], v[:, 1])) % 360.0
    eig = np.linalg.eigvalsh(tr.P[:, :2, :2])[:, -1]
    sd = np.sqrt(np.maximum(eig, 0.0))
    names = frame.class_names()
    cls_p = frame.class_p()
    # Words for the evidence: a handful of distinct reason sets per frame, each once.
    _, first, which = np.unique(frame.classes.reasons, return_index=True, return_inverse=True)
    words = np.array(["; ".join(frame.classes.reasons_text(i)) for i in first.tolist()],
                     dtype=object)
    # Each combination of flag bits once, as a list of names (shared by its rows).
    bits, flag_set = np.unique(tr.flags, return_inverse=True)
    flag_lists = np.empty(bits.size, dtype=object)
    for k, b in enumerate(bits.tolist()):
        flag_lists[k] = [str(f.name).lower() for f in TrackFlag if b & f]
    status = np.asarray(_STATUS)[tr.status]
    agl = h - scenario.origin.alt_m
    # One dict display per row (TRACK_FIELDS, in order): twice as fast as dict(zip()).
    return [{"id": i, "lat_deg": la, "lon_deg": lo, "height_m": hm, "height_agl_m": ha,
             "speed_mps": sp, "course_deg": co, "climb_mps": cl, "sd_h_m": sd_, "status": st,
             "class": cn, "class_p": cp, "reasons": re, "identity": ide, "flags": fl,
             "group": gr}
            for i, la, lo, hm, ha, sp, co, cl, sd_, st, cn, cp, re, ide, fl, gr in zip(
                tr.id.tolist(), lat.tolist(), lon.tolist(), np.round(h, 2).tolist(),
                np.round(agl, 2).tolist(), np.round(speed, 2).tolist(),
                np.round(course, 1).tolist(), np.round(v[:, 2], 2).tolist(),
                np.round(sd, 1).tolist(), status.tolist(), names.tolist(),
                np.round(cls_p, 3).tolist(), words[which].tolist(), tr.identity.tolist(),
                flag_lists[flag_set].tolist(), frame.group.tolist(), strict=True)]


def group_rows(frame: Frame, scenario: Scenario) -> list[dict[str, Any]]:
    g = frame.groups
    if len(g.id) == 0:
        return []
    lat, lon, h = scenario.origin.enu_to_geodetic(g.centroid)
    speed = np.hypot(g.velocity[:, 0], g.velocity[:, 1])
    course = np.degrees(np.arctan2(g.velocity[:, 0], g.velocity[:, 1])) % 360.0
    out = []
    for k, gid in enumerate(g.id.tolist()):
        out.append({"id": gid, "count": int(g.count[k]), "lat_deg": float(lat[k]),
                    "lon_deg": float(lon[k]), "height_m": round(float(h[k]), 2),
                    "extent_m": round(float(g.extent_m[k]), 1),
                    "speed_mps": round(float(speed[k]), 2),
                    "course_deg": round(float(course[k]), 1),
                    "members": g.members(gid).tolist()})
    return out


def is_shown(status: np.ndarray) -> np.ndarray:
    return np.asarray(status != TrackStatus.TENTATIVE)
