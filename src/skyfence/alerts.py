"""Alerts: what the watch officer is told, once, with the evidence.

An alert has a life: ``raised`` → ``updated`` (its kind escalated, its severity
changed, or its time to breach moved a good deal) → ``acknowledged`` (by an operator)
→ ``cleared``. Hysteresis keeps a track that loiters on a boundary to one alert:

- a zone alert is one per (track, zone): raised as ``zone_breach_predicted`` when the
  track is likely to enter within the horizon, escalated to ``zone_breach`` when it is
  inside, and never turned back while it lives;
- it ends only once the track has been outside the zone by ``exit_margin_m`` (and no
  longer likely to enter) for ``clear_after_s``;
- conditions that flicker (a class, a flag) must hold ``raise_after_s[kind]`` before
  an alert is raised.

The book is part of the engine: synchronous, deterministic, its time from the data.
Sinks (a log, a JSON Lines file, webhooks) take its events.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from skyfence.errors import SkyfenceError
from skyfence.geo import Origin
from skyfence.picture import Frame
from skyfence.types import TrackFlag, TrackStatus
from skyfence.zones.model import Restriction, Zone
from skyfence.zones.monitor import Ground, MonitorConfig, ZoneHits, ZoneMonitor
from skyfence.zones.sites import Site, SiteHits, check_sites

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

log = logging.getLogger("skyfence.alerts")

KINDS = ("zone_breach", "zone_breach_predicted", "site_threat", "swarm", "fast_low_flyer",
         "spoof_suspect", "dark_drone", "track_lost_in_zone")
EVENTS = ("raised", "updated", "acknowledged", "cleared")


class Severity(IntEnum):
    INFO = 1
    WARNING = 2
    CRITICAL = 3

    def __str__(self) -> str:
        return self.name.lower()


#: Every field an alert event carries, as written to JSON Lines and webhooks:
#: (name, JSON type, unit, meaning). A test fails on an undeclared one.
ALERT_EVENT_SCHEMA: tuple[tuple[str, str, str, str], ...] = (
    ("t", "number", "s", "time of the event, Unix epoch UTC (the data's time)"),
    ("event", "string", "", "raised | updated | acknowledged | cleared"),
    ("alert", "integer", "", "alert id, unique for the life of the node"),
    ("kind", "string", "", " | ".join(KINDS)),
    ("severity", "string", "", "info | warning | critical"),
    ("track", "integer|null", "", "track id"),
    ("zone", "string|null", "", "zone identifier"),
    ("site", "string|null", "", "defended site id"),
    ("group", "integer|null", "", "group (swarm) id"),
    ("time_to_breach_s", "number|null", "s", "0 inside; predicted time to entry"),
    ("probability", "number|null", "", "of the breach (inside now, or entering in time)"),
    ("reason", "string", "", "the evidence in words"),
    ("lat_deg", "number|null", "deg", "the track's (or group's) position, WGS84"),
    ("lon_deg", "number|null", "deg", ""),
    ("height_m", "number|null", "m", "height above the WGS84 ellipsoid"),
    ("by", "string|null", "", "who acknowledged (acknowledged events)"),
)


@dataclass(frozen=True, slots=True)
class AlertEvent:
    t: float
    event: str
    alert: int
    kind: str
    severity: Severity
    reason: str
    track: int | None = None
    zone: str | None = None
    site: str | None = None
    group: int | None = None
    time_to_breach_s: float | None = None
    probability: float | None = None
    lat_deg: float | None = None
    lon_deg: float | None = None
    height_m: float | None = None
    by: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON object (see ALERT_EVENT_SCHEMA); numbers rounded."""
        def num(x: float | None, digits: int) -> float | None:
            return None if x is None or not math.isfinite(x) else round(x, digits)

        return {
            "t": round(self.t, 3), "event": self.event, "alert": self.alert,
            "kind": self.kind, "severity": str(self.severity), "track": self.track,
            "zone": self.zone, "site": self.site, "group": self.group,
            "time_to_breach_s": num(self.time_to_breach_s, 1),
            "probability": num(self.probability, 3), "reason": self.reason,
            "lat_deg": num(self.lat_deg, 7), "lon_deg": num(self.lon_deg, 7),
            "height_m": num(self.height_m, 1), "by": self.by,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertConfig:
    #: A breach is raised once the track is this far inside (m, the nearer of the
    #: horizontal and vertical distances to the zone's surface).
    entry_margin_m: float = 0.0
    #: A zone or site alert ends only once the track is this far outside (m) ...
    exit_margin_m: float = 50.0
    #: ... and every condition of an alert must have been gone this long (s).
    clear_after_s: float = 30.0
    #: Probability of entering within the horizon that raises a predicted breach, and
    #: the lower one that keeps it raised.
    raise_probability: float = 0.5
    keep_probability: float = 0.25
    #: How long a condition must hold before its alert is raised, by kind (s).
    raise_after_s: Mapping[str, float] = field(default_factory=lambda: {
        "zone_breach": 0.0, "zone_breach_predicted": 0.0, "site_threat": 0.0,
        "swarm": 3.0, "fast_low_flyer": 3.0, "spoof_suspect": 0.0, "dark_drone": 10.0,
        "track_lost_in_zone": 0.0})
    #: A swarm alert needs a group of at least this many tracks.
    swarm_min_count: int = 3
    #: Updates for a mere change of time to breach or probability come at most this
    #: often (s), and only for a change of at least these.
    update_interval_s: float = 10.0
    update_ttb_change: float = 0.25  # of the time to breach, and at least 5 s
    update_probability_change: float = 0.2
    #: Predicted breaches closer than this are critical in a prohibited zone (s).
    critical_within_s: float = 30.0
    #: A track lost inside a zone keeps its alert this long unless acknowledged (s).
    lost_alert_s: float = 300.0
    #: When the tracker starts a new track on an object whose old track is coasting
    #: (a track break), the old track's alerts pass to the new one if it is this close
    #: (m) and the old one has coasted this many updates running (one missed look of
    #: one sensor is no break): the officer is told of a continuation, not of a new
    #: threat. Should the new track die while the old one lives, they pass back.
    handover_m: float = 150.0
    handover_after_updates: int = 2

    def __post_init__(self) -> None:
        unknown = set(self.raise_after_s) - set(KINDS)
        if unknown:
            raise SkyfenceError(f"raise_after_s names unknown alert kinds {sorted(unknown)}; "
                                f"known: {', '.join(KINDS)}")
        if not 0.0 < self.keep_probability <= self.raise_probability < 1.0:
            raise SkyfenceError("need 0 < keep_probability ≤ raise_probability < 1")
        if self.exit_margin_m < -self.entry_margin_m:
            raise SkyfenceError("exit_margin_m must not be less than −entry_margin_m")


@dataclass(slots=True)
class _Condition:
    """One scan's evidence for one alert key."""

    kind: str
    severity: Severity
    reason: str
    raise_now: bool  # strong enough to raise
    track: int | None = None
    zone: int | None = None
    site: int | None = None
    group: int | None = None
    ttb: float | None = None
    probability: float | None = None
    position: tuple[float, float, float] | None = None
    enu: tuple[float, float, float] | None = None


@dataclass(slots=True)
class Alert:
    id: int
    key: tuple[Any, ...]
    kind: str
    severity: Severity
    reason: str
    raised_t: float
    seen_t: float  # last time its condition held
    updated_t: float
    track: int | None = None
    zone: str | None = None
    site: str | None = None
    group: int | None = None
    ttb: float | None = None
    probability: float | None = None
    position: tuple[float, float, float] | None = None
    acknowledged_by: str | None = None
    acknowledged_t: float | None = None
    expires_t: float = math.inf
    enu: tuple[float, float, float] | None = None


_RANK = {"zone_breach_predicted": 0, "zone_breach": 1}
_PREDICTIONS = frozenset({"zone_breach_predicted", "site_threat"})


class AlertBook:
    """The life of every alert, from one scan's evidence to the next."""

    def __init__(self, zones: Sequence[Zone] = (), sites: Sequence[Site] = (), *,
                 config: AlertConfig | None = None) -> None:
        self.zones = tuple(zones)
        self.sites = tuple(sites)
        self.config = config or AlertConfig()
        self.alerts: dict[tuple[Any, ...], Alert] = {}
        self._pending: dict[tuple[Any, ...], float] = {}
        self._next_id = 1
        #: Coasting tracks whose alerts passed to a new track: old id → new id.
        self._successor: dict[int, int] = {}
        #: Updates each track has coasted, running.
        self._coasting: dict[int, int] = {}

    # ------------------------------------------------------------------ public

    def active(self) -> list[Alert]:
        return sorted(self.alerts.values(), key=lambda a: a.id)

    def acknowledge(self, alert_id: int, *, t: float, by: str) -> AlertEvent:
        for a in self.alerts.values():
            if a.id == alert_id:
                a.acknowledged_by, a.acknowledged_t = by, t
                if a.kind == "track_lost_in_zone":
                    a.expires_t = t  # nothing more will come of it: cleared at the next scan
                return self._event(t, "acknowledged", a, by=by)
        raise SkyfenceError(f"no active alert {alert_id}; it may have been cleared already")

    def update(self, t: float, conditions: Mapping[tuple[Any, ...], _Condition],
               keep: set[tuple[Any, ...]], gone_tracks: Iterable[int] = (),
               coasting: Iterable[int] = ()) -> list[AlertEvent]:
        """Advance to time ``t`` with this scan's ``conditions`` (by alert key) and the
        keys whose weaker keep-condition holds; ``gone_tracks``: tracks deleted;
        ``coasting``: tracks not updated at this scan."""
        cfg = self.config
        gone = set(gone_tracks)
        coast = set(coasting)
        self._coasting = {k: self._coasting.get(k, 0) + 1 for k in coast}
        events: list[AlertEvent] = []
        for old, new in list(self._successor.items()):
            if old in gone:
                del self._successor[old]
            elif new in gone:
                # The successor was a short-lived twin: the old track carries on.
                del self._successor[old]
                events += self._pass_back(t, new, old)
        ready = {k for k, n in self._coasting.items() if n >= cfg.handover_after_updates}
        events += self._hand_over(t, conditions, ready)
        # A superseded track says nothing more: its object is followed by its successor.
        conditions = {k: c for k, c in conditions.items() if c.track not in self._successor}
        keep = {k for k in keep if len(k) < 2 or k[1] not in self._successor}
        for key in sorted(self.alerts, key=lambda k: self.alerts[k].id):
            a = self.alerts[key]
            cond = conditions.get(key)
            if cond is not None or key in keep:
                a.seen_t = t
            if cond is not None:
                ev = self._refresh(t, a, cond)
                if ev is not None:
                    events.append(ev)
            lost = a.track is not None and a.track in gone and a.kind != "track_lost_in_zone"
            if lost:
                if a.kind == "zone_breach":
                    events.extend(self._raise_lost(t, a))
                events.append(self._clear(t, a, "track lost"))
            elif t >= a.expires_t:
                events.append(self._clear(t, a, "expired"))
            elif a.kind != "track_lost_in_zone" and t - a.seen_t >= cfg.clear_after_s:
                events.append(self._clear(t, a, "condition gone for "
                                                f"{t - a.seen_t:.0f} s"))
        # New alerts, each after its condition has held long enough.
        for key in list(self._pending):
            if key not in conditions or not conditions[key].raise_now:
                del self._pending[key]
        for key in sorted(conditions, key=_sort_key):
            cond = conditions[key]
            if key in self.alerts or not cond.raise_now:
                continue
            since = self._pending.setdefault(key, t)
            if t - since >= cfg.raise_after_s.get(cond.kind, 0.0):
                del self._pending[key]
                events.append(self._raise(t, key, cond))
        return events

    # ------------------------------------------------------------------ life cycle

    def _hand_over(self, t: float, conditions: Mapping[tuple[Any, ...], _Condition],
                   coasting: set[int]) -> list[AlertEvent]:
        """Pass the alerts of coasting tracks to new tracks on the same object."""
        events: list[AlertEvent] = []
        # Only the alerts of coasting tracks can pass: few, looked up by kind and zone.
        by_place: dict[tuple[Any, ...], list[Alert]] = {}
        for k, a in sorted(self.alerts.items(), key=lambda kv: kv[1].id):
            if a.track in coasting and a.enu is not None and len(k) >= 2:
                by_place.setdefault((k[0], *k[2:]), []).append(a)
        if not by_place:
            return events
        r2 = self.config.handover_m ** 2
        for key in sorted(conditions, key=_sort_key):
            c = conditions[key]
            if (key in self.alerts or c.track is None or c.enu is None or key[1] != c.track
                    or c.track in self._successor):
                continue
            for a in by_place.get((key[0], *key[2:]), []):
                if a.key not in self.alerts or a.enu is None or sum(
                        (p - q) ** 2 for p, q in zip(a.enu, c.enu, strict=True)) > r2:
                    continue
                events.extend(self._pass_on(t, int(a.key[1]), c.track, c))
                break
        return events

    def _pass_back(self, t: float, new: int, old: int) -> list[AlertEvent]:
        """Return the alerts a dead successor ``new`` took over to track ``old``."""
        events = []
        for key in sorted(self.alerts, key=lambda k: self.alerts[k].id):
            a = self.alerts[key]
            if a.track != new or len(key) < 2 or key[1] != new:
                continue
            back = (key[0], old, *key[2:])
            if back in self.alerts:
                continue
            del self.alerts[key]
            a.key, a.track, a.updated_t = back, old, t
            a.reason = f"track {new} was lost; track {old} goes on: {a.reason}"
            self.alerts[back] = a
            events.append(self._event(t, "updated", a))
        return events

    def _pass_on(self, t: float, old: int, new: int, c: _Condition) -> list[AlertEvent]:
        """Move every per-track alert of track ``old`` to track ``new``."""
        events = []
        self._successor[old] = new
        for old_key in sorted(self.alerts, key=lambda k: self.alerts[k].id):
            a = self.alerts[old_key]
            if a.track != old or len(old_key) < 2 or old_key[1] != old:
                continue
            key = (old_key[0], new, *old_key[2:])
            if key in self.alerts:
                continue
            del self.alerts[old_key]
            a.key, a.track, a.enu, a.position = key, new, c.enu, c.position
            a.reason = f"track {old} continues as track {new}: {a.reason}"
            a.updated_t = t
            self.alerts[key] = a
            events.append(self._event(t, "updated", a))
        return events

    def _raise(self, t: float, key: tuple[Any, ...], c: _Condition) -> AlertEvent:
        a = Alert(id=self._next_id, key=key, kind=c.kind, severity=c.severity,
                  reason=c.reason, raised_t=t, seen_t=t, updated_t=t, track=c.track,
                  zone=None if c.zone is None else self.zones[c.zone].id,
                  site=None if c.site is None else self.sites[c.site].id, group=c.group,
                  ttb=c.ttb, probability=c.probability, position=c.position, enu=c.enu)
        if c.kind == "track_lost_in_zone":
            a.expires_t = t + self.config.lost_alert_s
        self._next_id += 1
        self.alerts[key] = a
        return self._event(t, "raised", a)

    def _refresh(self, t: float, a: Alert, c: _Condition) -> AlertEvent | None:
        cfg = self.config
        escalated = _RANK.get(c.kind, 0) > _RANK.get(a.kind, 0)
        if _RANK.get(c.kind, 0) < _RANK.get(a.kind, 0):
            return None  # a breach does not go back to a prediction
        # Severity only rises in an alert's life: a prediction that wavers does not
        # make it flap.
        severity = max(c.severity, a.severity)
        severity_changed = severity != a.severity
        a.position, a.enu = c.position, c.enu
        moved = False
        # An alert for a breach in progress says nothing new as its numbers wobble; a
        # prediction does, when its time or probability moves a good deal.
        if c.kind in _PREDICTIONS and t - a.updated_t >= cfg.update_interval_s:
            if c.ttb is not None and a.ttb is not None and math.isfinite(c.ttb) \
                    and math.isfinite(a.ttb):
                moved = abs(c.ttb - a.ttb) >= max(5.0, cfg.update_ttb_change * a.ttb)
            if c.probability is not None and a.probability is not None:
                moved |= abs(c.probability - a.probability) >= cfg.update_probability_change
        if not (escalated or severity_changed or moved):
            return None
        a.kind, a.severity, a.reason = c.kind, severity, c.reason
        a.ttb, a.probability, a.updated_t = c.ttb, c.probability, t
        return self._event(t, "updated", a)

    def _raise_lost(self, t: float, a: Alert) -> list[AlertEvent]:
        zone = next(i for i, z in enumerate(self.zones) if z.id == a.zone)
        key = ("track_lost_in_zone", a.track, zone)
        if key in self.alerts:
            return []
        restriction = self.zones[zone].restriction
        sev = Severity.CRITICAL if restriction == Restriction.PROHIBITED else Severity.WARNING
        c = _Condition("track_lost_in_zone", sev,
                       f"track lost inside {_zone_name(self.zones[zone])}", True,
                       track=a.track, zone=zone, position=a.position)
        return [self._raise(t, key, c)]

    def _clear(self, t: float, a: Alert, why: str) -> AlertEvent:
        del self.alerts[a.key]
        return self._event(t, "cleared", replace(a, reason=f"{a.reason}; cleared: {why}"))

    @staticmethod
    def _event(t: float, event: str, a: Alert, *, by: str | None = None) -> AlertEvent:
        lat, lon, h = a.position if a.position is not None else (None, None, None)
        return AlertEvent(t=t, event=event, alert=a.id, kind=a.kind, severity=a.severity,
                          reason=a.reason, track=a.track, zone=a.zone, site=a.site,
                          group=a.group, time_to_breach_s=a.ttb, probability=a.probability,
                          lat_deg=lat, lon_deg=lon, height_m=h, by=by)


def _sort_key(key: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(str(k) for k in key)


def _zone_name(zone: Zone) -> str:
    return f"{zone.name!r} ({zone.id})" if zone.name and zone.name != zone.id else repr(zone.id)


# ---------------------------------------------------------------------------- the watch


@dataclass(frozen=True, slots=True)
class WatchInput:
    """What the watch needs of one picture, aligned arrays over the shown tracks (n):
    ``t``; ``id``; ``x`` (n, 6) and ``P`` (n, 6, 6) ENU; ``identity``; ``flags``
    (TrackFlag bits); ``class_name``; ``group`` (-1: none); the groups in view
    (``group_id``, ``group_count``, ``group_centroid`` (g, 3) ENU m); and the ids of
    tracks deleted at this update; ``coasting`` (n,): not updated at this scan."""

    t: float
    id: I64
    x: F64
    P: F64
    identity: NDArray[np.str_]
    flags: NDArray[np.uint16]
    class_name: NDArray[np.str_]
    group: I64
    group_id: I64
    group_count: I64
    group_centroid: F64
    deleted: I64
    coasting: NDArray[np.bool_] | None = None


def watch_input(frame: Frame, deleted: I64) -> WatchInput:
    """The watch's view of a picture frame and the ids the tracker deleted."""
    tr, g = frame.tracks, frame.groups
    return WatchInput(t=frame.t, id=tr.id, x=tr.x, P=tr.P, identity=tr.identity,
                      flags=tr.flags, class_name=frame.class_names(), group=frame.group,
                      group_id=g.id, group_count=g.count, group_centroid=g.centroid,
                      deleted=np.asarray(deleted, dtype=np.int64),
                      coasting=tr.status == TrackStatus.COASTING)


class Watch:
    """Zones, sites and the alert book together: one picture in, alert events out."""

    def __init__(self, origin: Origin, zones: Sequence[Zone] = (), sites: Sequence[Site] = (),
                 *, ground: Ground | None = None, monitor: MonitorConfig | None = None,
                 config: AlertConfig | None = None) -> None:
        self.origin = origin
        self.monitor = ZoneMonitor(zones, origin, ground=ground, config=monitor)
        self.sites = tuple(sites)
        self.book = AlertBook(self.monitor.zones, self.sites, config=config)
        if self.sites:
            lat = np.array([s.lat_deg for s in self.sites])
            lon = np.array([s.lon_deg for s in self.sites])
            self._site_xy = self.monitor._plane(lat, lon)
        else:
            self._site_xy = np.empty((0, 2))

    def with_zones(self, zones: Sequence[Zone]) -> tuple[Watch, list[AlertEvent]]:
        """A watch over other zones that keeps this one's alerts: those of zones that
        stay follow them to their new place; those of zones that went are cleared (the
        events returned)."""
        new = Watch.__new__(Watch)
        new.origin, new.sites, new._site_xy = self.origin, self.sites, self._site_xy
        new.monitor = ZoneMonitor(zones, self.origin, ground=self.monitor.ground,
                                  config=self.monitor.config)
        where = {z.id: i for i, z in enumerate(new.monitor.zones)}
        book = self.book
        events = []
        t = max((a.updated_t for a in book.alerts.values()), default=0.0)
        moved: dict[tuple[Any, ...], Alert] = {}
        for key, a in sorted(book.alerts.items(), key=lambda kv: kv[1].id):
            if a.zone is None:
                moved[key] = a
            elif a.zone in where:
                a.key = (*key[:2], where[a.zone], *key[3:])
                moved[a.key] = a
            else:
                events.append(book._event(t, "cleared", replace(
                    a, reason=f"{a.reason}; cleared: zone {a.zone} removed")))
        book.alerts = moved
        book._pending.clear()
        book.zones = new.monitor.zones
        new.book = book
        return new, events

    def update(self, w: WatchInput) -> list[AlertEvent]:
        cfg = self.book.config
        mcfg = self.monitor.config
        n = w.id.shape[0]
        spoof = (w.flags & TrackFlag.SPOOF_SUSPECT) != 0
        hits = self.monitor.check(w.t, w.x, w.P, w.identity, spoof_suspect=spoof)
        lat, lon, h = self.origin.enu_to_geodetic(w.x[:, :3]) if n else (
            np.empty(0), np.empty(0), np.empty(0))
        conditions: dict[tuple[Any, ...], _Condition] = {}
        keep: set[tuple[Any, ...]] = set()

        def pos(i: int) -> tuple[float, float, float]:
            return (float(lat[i]), float(lon[i]), float(h[i]))

        def enu(i: int) -> tuple[float, float, float]:
            return (float(w.x[i, 0]), float(w.x[i, 1]), float(w.x[i, 2]))

        self._zone_conditions(w, hits, conditions, keep, pos, enu)
        if self.sites and n:
            self._site_conditions(w, conditions, keep, pos, enu)
        # Swarms.
        for g, count, c in zip(w.group_id.tolist(), w.group_count.tolist(),
                               w.group_centroid, strict=True):
            if count >= cfg.swarm_min_count:
                glat, glon, gh = self.origin.enu_to_geodetic(c)
                sev = Severity.CRITICAL if count >= 10 else Severity.WARNING
                conditions[("swarm", g)] = _Condition(
                    "swarm", sev, f"a group of {count} tracks flying together", True, group=g,
                    position=(float(glat), float(glon), float(gh)))
            elif count >= 2:
                keep.add(("swarm", g))
        # Per-track kinds: from the classification and the flags.
        speed = np.linalg.norm(w.x[:, 3:6], axis=1) if n else np.empty(0)
        height = h - self.origin.alt_m if n else np.empty(0)
        for i in np.flatnonzero(w.class_name == "fast_low_flyer").tolist():
            conditions[("fast_low_flyer", int(w.id[i]))] = _Condition(
                "fast_low_flyer", Severity.WARNING,
                f"fast low flyer: {speed[i]:.0f} m/s at {height[i]:.0f} m", True,
                track=int(w.id[i]), position=pos(i), enu=enu(i))
        for i in np.flatnonzero(spoof).tolist():
            who = str(w.identity[i]) or "a cooperative report"
            conditions[("spoof_suspect", int(w.id[i]))] = _Condition(
                "spoof_suspect", Severity.WARNING,
                f"{who} claims a position the sensors do not see", True, track=int(w.id[i]),
                position=pos(i), enu=enu(i))
        for i in np.flatnonzero((w.flags & TrackFlag.DARK) != 0).tolist():
            conditions[("dark_drone", int(w.id[i]))] = _Condition(
                "dark_drone", Severity.INFO,
                "a drone with no Remote ID or ADS-B identity", True, track=int(w.id[i]),
                position=pos(i), enu=enu(i))
        _ = mcfg
        coasting = w.id[w.coasting].tolist() if w.coasting is not None else []
        return self.book.update(w.t, conditions, keep, w.deleted.tolist(), coasting)

    def _zone_conditions(self, w: WatchInput, hits: ZoneHits,
                         conditions: dict[tuple[Any, ...], _Condition],
                         keep: set[tuple[Any, ...]],
                         pos: Callable[[int], tuple[float, float, float]],
                         enu: Callable[[int], tuple[float, float, float]]) -> None:
        cfg = self.book.config
        if len(hits) == 0:
            return
        zones = self.monitor.zones
        restriction = np.array([z.restriction != Restriction.NO_RESTRICTION for z in zones])
        hits = hits.take(restriction[hits.zone])
        # One alert per (track, zone): its deepest volume speaks for it.
        order = np.lexsort((-hits.depth_m, hits.zone, hits.track))
        hits = hits.take(order)
        first = np.r_[True, (np.diff(hits.track) != 0) | (np.diff(hits.zone) != 0)]
        best_p = np.maximum.reduceat(hits.probability, np.flatnonzero(first)) \
            if len(hits) else np.empty(0)
        ttb_all = np.where(np.isnan(hits.time_to_breach_s), np.inf, hits.time_to_breach_s)
        best_ttb = np.minimum.reduceat(ttb_all, np.flatnonzero(first)) if len(hits) \
            else np.empty(0)
        hits = hits.take(first)
        raise_breach = hits.inside & (hits.depth_m >= cfg.entry_margin_m)
        near = hits.depth_m > -cfg.exit_margin_m
        raise_pred = ~hits.inside & (best_p >= cfg.raise_probability)
        keep_pred = best_p >= cfg.keep_probability
        interesting = raise_breach | near | raise_pred | keep_pred
        for k in np.flatnonzero(interesting).tolist():
            i, zi = int(hits.track[k]), int(hits.zone[k])
            tid = int(w.id[i])
            zone = zones[zi]
            key = ("zone", tid, zi)
            if raise_breach[k] or (hits.inside[k] and key in self.book.alerts):
                sev = (Severity.CRITICAL if zone.restriction == Restriction.PROHIBITED
                       else Severity.WARNING)
                conditions[key] = _Condition(
                    "zone_breach", sev,
                    f"inside {_zone_name(zone)} ({zone.restriction.value}), "
                    f"{hits.depth_m[k]:.0f} m from its edge", True, track=tid, zone=zi, ttb=0.0,
                    probability=float(hits.probability[k]), position=pos(i), enu=enu(i))
            elif raise_pred[k] or keep_pred[k]:
                ttb = float(best_ttb[k])
                soon = ttb <= cfg.critical_within_s
                if zone.restriction == Restriction.PROHIBITED:
                    sev = Severity.CRITICAL if soon else Severity.WARNING
                else:
                    sev = Severity.WARNING if soon else Severity.INFO
                when = f"in {ttb:.0f} s" if math.isfinite(ttb) else "within the horizon"
                conditions[key] = _Condition(
                    "zone_breach_predicted", sev,
                    f"heading into {_zone_name(zone)} ({zone.restriction.value}) {when}, "
                    f"P {best_p[k]:.2f}", bool(raise_pred[k]), track=tid, zone=zi,
                    ttb=ttb if math.isfinite(ttb) else None, probability=float(best_p[k]),
                    position=pos(i), enu=enu(i))
            if near[k] or keep_pred[k]:
                keep.add(key)

    def _site_conditions(self, w: WatchInput, conditions: dict[tuple[Any, ...], _Condition],
                         keep: set[tuple[Any, ...]],
                         pos: Callable[[int], tuple[float, float, float]],
                         enu: Callable[[int], tuple[float, float, float]]) -> None:
        cfg = self.book.config
        mcfg = self.monitor.config
        H = mcfg.horizon_s
        plane, table = self.monitor.heights(w.x[:, :3])
        v = w.x[:, 3:5]
        var_now = 0.5 * (w.P[:, 0, 0] + w.P[:, 1, 1])
        var_h = 0.5 * (w.P[:, 0, 0] + w.P[:, 1, 1] + 2 * H * (w.P[:, 0, 3] + w.P[:, 1, 4])
                       + H**2 * (w.P[:, 3, 3] + w.P[:, 4, 4])) + (
            mcfg.accel_std_mps2 * H**2 / 2) ** 2
        hits: SiteHits = check_sites(self.sites, plane, v, table[2], var_now, var_h, H,
                                     site_xy=self._site_xy, margin_m=cfg.exit_margin_m)
        for k in range(len(hits)):
            i, si = int(hits.track[k]), int(hits.site[k])
            tid = int(w.id[i])
            site = self.sites[si]
            key = ("site", tid, si)
            keep.add(key)
            p = float(hits.probability[k])
            if hits.inside[k]:
                reason = f"inside defended site {site.name!r}"
                ttr = 0.0
            elif p >= cfg.keep_probability:
                ttr = float(hits.time_to_reach_s[k])
                when = f"in {ttr:.0f} s" if math.isfinite(ttr) else \
                    f"closest {hits.cpa_m[k]:.0f} m in {hits.cpa_s[k]:.0f} s"
                reason = f"heading for defended site {site.name!r}: {when}, P {p:.2f}"
            else:
                continue
            soon = math.isfinite(ttr) and ttr <= cfg.critical_within_s
            conditions[key] = _Condition(
                "site_threat", Severity.CRITICAL if hits.inside[k] or soon else Severity.WARNING,
                reason, bool(hits.inside[k] or p >= cfg.raise_probability), track=tid, site=si,
                ttb=ttr if math.isfinite(ttr) else None, probability=p, position=pos(i), enu=enu(i))


# ---------------------------------------------------------------------------- sinks


class JsonLinesSink:
    """One JSON object per line per event (ALERT_EVENT_SCHEMA), flushed each time."""

    def __init__(self, path: str | Path) -> None:
        self._f: IO[str] = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def send(self, event: AlertEvent) -> None:
        self._f.write(json.dumps(event.to_json(), separators=(",", ":"), allow_nan=False))
        self._f.write("\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


class LogSink:
    """Alert events as log lines (logger ``skyfence.alerts``), critical ones as errors."""

    def send(self, event: AlertEvent) -> None:
        level = {Severity.CRITICAL: logging.ERROR, Severity.WARNING: logging.WARNING}.get(
            event.severity, logging.INFO)
        log.log(level, "alert %d %s %s (%s): %s", event.alert, event.event, event.kind,
                event.severity, event.reason)

    def close(self) -> None:
        return None
