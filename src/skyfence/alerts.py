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

import bisect
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import IntEnum
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

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


#: An alert's key is (family, subject, place): the family is its kind, but one for the
#: two zone kinds (a predicted breach escalates to a breach under one key); the
#: subject its track id (a group id for a swarm); the place its zone or site index
#: (−1: none).
FAMILIES = ("zone", "site", "swarm", "fast_low_flyer", "spoof_suspect", "dark_drone",
            "track_lost_in_zone")
_ZONE, _SITE, _SWARM, _FAST, _SPOOF, _DARK, _LOST = range(len(FAMILIES))
#: The families whose key has a place (three parts, as a tuple).
_PLACED = frozenset({_ZONE, _SITE, _LOST})
_HAS_PLACE = np.array([f in _PLACED for f in range(len(FAMILIES))])
#: Keys sort as the tuples of their parts as strings (family name, subject, place):
#: the order alerts are raised and handed over in within one scan.
_FAMILY_ORDER = np.argsort(np.argsort(np.array(FAMILIES)))
_K = {k: i for i, k in enumerate(KINDS)}
_SEVERITY = {int(s): s for s in Severity}
#: A breach outranks a prediction: an alert never goes back.
_RANK = np.array([int(k == "zone_breach") for k in KINDS], dtype=np.int64)
_PREDICTION = np.array([k in ("zone_breach_predicted", "site_threat") for k in KINDS])

#: A key as one integer: family (bits 60–62), place + 1 (bits 40–59), subject (bits
#: 0–39). Track and group ids count from 1: 2⁴⁰ of them is a thousand a second for
#: thirty years.
Keys = NDArray[np.int64]
_SUBJECT_BITS, _PLACE_BITS = 40, 20
B = NDArray[np.bool_]
Objects = NDArray[np.object_]


def alert_keys(family: ArrayLike, subject: ArrayLike, place: ArrayLike) -> Keys:
    """Alert keys from their parts (broadcast): ``family`` (index in FAMILIES),
    ``subject`` (track or group id), ``place`` (zone or site index, −1: none)."""
    s = np.asarray(subject, dtype=np.int64)
    p1 = np.asarray(place, dtype=np.int64) + 1
    if ((s >> _SUBJECT_BITS) | (p1 >> _PLACE_BITS)).any():
        raise SkyfenceError(f"an alert key out of range: ids must be 0 to 2^{_SUBJECT_BITS} "
                            f"− 1 and zones or sites fewer than 2^{_PLACE_BITS} − 1")
    out: Keys = (np.asarray(family, dtype=np.int64) << (_SUBJECT_BITS + _PLACE_BITS)) | (
        p1 << _SUBJECT_BITS) | s
    return out


def _subject(keys: Keys) -> I64:
    out: I64 = keys & ((1 << _SUBJECT_BITS) - 1)
    return out


def _find(keys: Keys, among: Keys) -> NDArray[np.intp]:
    """The row of each key in ``among`` (whose keys are unique); −1 where absent."""
    if keys.size == 0 or among.size == 0:
        return np.full(keys.shape, -1, dtype=np.intp)
    order = np.argsort(among)
    at = _find_ids(keys, among[order])
    found: NDArray[np.intp] = np.where(at >= 0, order[np.maximum(at, 0)], -1)
    return found


def _isin(keys: I64, among: I64) -> B:
    """Whether each of the integers ``keys`` (alert keys, ids) is one of ``among``
    (np.isin, without its overhead on small arrays)."""
    if keys.size == 0 or among.size == 0:
        return np.zeros(keys.shape, dtype=bool)
    ordered = np.sort(among)
    at = np.minimum(np.searchsorted(ordered, keys), ordered.size - 1)
    out: B = ordered[at] == keys
    return out


def _key_order(family: I64, subject: I64, place: I64) -> NDArray[np.intp]:
    """The order of keys as tuples of strings (family name, str(subject)[, str(place)])."""
    placed = _HAS_PLACE[family]
    place_text = np.where(placed, place.astype(np.str_), "")
    order: NDArray[np.intp] = np.lexsort((place_text, subject.astype(np.str_),
                                          _FAMILY_ORDER[family]))
    return order


def _gather(values: NDArray[Any], rows: NDArray[np.intp], fill: Any) -> NDArray[Any]:
    """``values[rows]`` with ``fill`` where a row is −1."""
    shape = rows.shape + values.shape[1:]
    if values.shape[0] == 0:
        return np.full(shape, fill, dtype=values.dtype)
    out = values[np.maximum(rows, 0)]
    out[rows < 0] = fill
    return out


@dataclass(frozen=True, slots=True)
class Conditions:
    """One scan's evidence, one row per alert key (m rows, keys unique): the key
    (``family``, ``subject``, ``place``); the alert it raises or keeps up: ``kind`` and
    ``severity`` (codes: index in KINDS, Severity value), ``raise_now`` (strong enough
    to raise), ``ttb`` s and ``probability`` (NaN: none), ``position`` (m, 3: lat deg,
    lon deg, height m above the ellipsoid), ``enu`` (m, 3, m; rows without
    ``has_enu``: none, a group). The evidence in words is made only for the rows that
    become events: ``reason(k)``."""

    family: I64
    subject: I64
    place: I64
    kind: I64
    severity: I64
    raise_now: B
    ttb: F64
    probability: F64
    position: F64
    enu: F64
    has_enu: B
    #: (first row, words for a row of the block by its row in the block), by block.
    words: tuple[tuple[int, Callable[[int], str]], ...] = ()
    keys: Keys = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", alert_keys(self.family, self.subject, self.place))

    def __len__(self) -> int:
        return int(self.family.shape[0])

    def reason(self, k: int) -> str:
        start, words = self.words[bisect.bisect_right([s for s, _ in self.words], k) - 1]
        return words(k - start)

    @classmethod
    def block(cls, family: int, subject: I64, place: I64 | int, kind: I64 | int,
              severity: I64 | int, raise_now: B | bool, ttb: F64 | float,
              probability: F64 | float, position: F64, enu: F64 | None,
              words: Callable[[int], str]) -> Conditions:
        """Rows of one family (scalars broadcast over ``subject``)."""
        m = subject.shape[0]

        def col(v: Any, dtype: Any) -> NDArray[Any]:
            return np.full(m, v, dtype=dtype) if np.ndim(v) == 0 else np.asarray(v, dtype=dtype)

        return cls(family=col(family, np.int64), subject=subject.astype(np.int64),
                   place=col(place, np.int64), kind=col(kind, np.int64),
                   severity=col(severity, np.int64), raise_now=col(raise_now, np.bool_),
                   ttb=col(ttb, np.float64), probability=col(probability, np.float64),
                   position=position.reshape(m, 3),
                   enu=np.full((m, 3), np.nan) if enu is None else enu.reshape(m, 3),
                   has_enu=np.full(m, enu is not None), words=((0, words),))

    @classmethod
    def join(cls, blocks: Sequence[Conditions]) -> Conditions:
        """The rows of the blocks (one at least) in one table."""
        blocks = [b for b in blocks if len(b)] or [blocks[0]]
        if len(blocks) == 1:
            return blocks[0]
        starts = np.cumsum([0] + [len(b) for b in blocks])
        cols = {f.name: np.concatenate([getattr(b, f.name) for b in blocks])
                for f in fields(cls) if f.init and f.name != "words"}
        words = tuple((int(s) + w0, w) for b, s in zip(blocks, starts[:-1].tolist(), strict=True)
                      for w0, w in b.words)
        return cls(**cols, words=words)


@dataclass(slots=True)
class AlertTable:
    """The active alerts as aligned arrays (n rows, in id order): ``id``; the key
    (``family``, ``subject``, ``place``, see FAMILIES); ``kind`` (index in KINDS);
    ``severity`` (Severity value); ``reason``; ``raised_t``, ``seen_t`` (last time its
    condition held), ``updated_t`` (Unix s); ``ttb`` s and ``probability`` (NaN:
    none); ``position`` (n, 3: lat deg, lon deg, height m) where ``has_position``;
    ``enu`` (n, 3, m) where ``has_enu``; ``acknowledged_by`` (None: not) and
    ``acknowledged_t`` (NaN: not); ``expires_t`` (inf: never)."""

    id: I64
    family: I64
    subject: I64
    place: I64
    kind: I64
    severity: I64
    reason: Objects
    raised_t: F64
    seen_t: F64
    updated_t: F64
    ttb: F64
    probability: F64
    position: F64
    has_position: B
    enu: F64
    has_enu: B
    acknowledged_by: Objects
    acknowledged_t: F64
    expires_t: F64

    @classmethod
    def empty(cls) -> AlertTable:
        def col(name: str) -> NDArray[Any]:
            dtype = _TABLE_DTYPES[name]
            return np.empty((0, 3) if name in ("position", "enu") else 0, dtype=dtype)

        return cls(**{name: col(name) for name in _TABLE_DTYPES})

    def __len__(self) -> int:
        return int(self.id.shape[0])

    @property
    def keys(self) -> Keys:
        return alert_keys(self.family, self.subject, self.place)

    @property
    def has_track(self) -> B:
        out: B = self.family != _SWARM
        return out

    def take(self, rows: B | NDArray[np.intp]) -> AlertTable:
        return AlertTable(**{name: getattr(self, name)[rows] for name in _TABLE_DTYPES})

    def extend(self, other: AlertTable) -> AlertTable:
        return AlertTable(**{name: np.concatenate([getattr(self, name), getattr(other, name)])
                             for name in _TABLE_DTYPES})


_TABLE_DTYPES: dict[str, Any] = {
    "id": np.int64, "family": np.int64, "subject": np.int64, "place": np.int64,
    "kind": np.int64, "severity": np.int64, "reason": object, "raised_t": np.float64,
    "seen_t": np.float64, "updated_t": np.float64, "ttb": np.float64,
    "probability": np.float64, "position": np.float64, "has_position": np.bool_,
    "enu": np.float64, "has_enu": np.bool_, "acknowledged_by": object,
    "acknowledged_t": np.float64, "expires_t": np.float64}


@dataclass(slots=True)
class Alert:
    """One active alert, as ``AlertBook.active`` gives it (a copy of its row)."""

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


_NO_IDS = np.empty(0, dtype=np.int64)


class AlertBook:
    """The life of every alert, from one scan's evidence to the next.

    The alerts are a table of columns (``table``, in id order), and a scan is worked
    on in numpy: only the alerts that make an event this scan are visited one by one.
    """

    def __init__(self, zones: Sequence[Zone] = (), sites: Sequence[Site] = (), *,
                 config: AlertConfig | None = None) -> None:
        self.zones = tuple(zones)
        self.sites = tuple(sites)
        self.config = config or AlertConfig()
        self.table = AlertTable.empty()
        self._raise_after_s = np.array([self.config.raise_after_s.get(k, 0.0) for k in KINDS])
        #: Keys whose condition holds but not yet long enough, since when.
        self._pending = alert_keys(_NO_IDS, _NO_IDS, _NO_IDS)
        self._pending_since = np.empty(0)
        self._next_id = 1
        #: Coasting tracks whose alerts passed to a new track: old id → new id.
        self._successor: dict[int, int] = {}
        #: Updates each coasting track has coasted, running (ids sorted).
        self._coast_id = _NO_IDS
        self._coast_n = _NO_IDS

    # ------------------------------------------------------------------ public

    def active(self) -> list[Alert]:
        return [self._alert(r) for r in range(len(self.table))]

    def contains(self, family: int, subject: I64, place: I64 | int) -> B:
        """Whether each key (``family``, ``subject``, ``place``) has an active alert."""
        return _isin(alert_keys(family, subject, place), self.table.keys)

    def acknowledge(self, alert_id: int, *, t: float, by: str) -> AlertEvent:
        rows = np.flatnonzero(self.table.id == alert_id)
        if rows.size == 0:
            raise SkyfenceError(f"no active alert {alert_id}; it may have been cleared "
                                "already")
        r = int(rows[0])
        a = self.table
        a.acknowledged_by[r], a.acknowledged_t[r] = by, t
        if a.kind[r] == _K["track_lost_in_zone"]:
            a.expires_t[r] = t  # nothing more will come of it: cleared at the next scan
        return self._event(t, "acknowledged", r, by=by)

    def update(self, t: float, conditions: Conditions, keep: Keys,
               gone_tracks: ArrayLike = _NO_IDS, coasting: ArrayLike = _NO_IDS
               ) -> list[AlertEvent]:
        """Advance to time ``t`` with this scan's ``conditions`` and the ``keep`` keys
        whose weaker keep-condition holds; ``gone_tracks``: tracks deleted;
        ``coasting``: tracks not updated at this scan."""
        cfg = self.config
        c = conditions
        gone = np.unique(np.asarray(gone_tracks, dtype=np.int64))
        coast = np.unique(np.asarray(coasting, dtype=np.int64))
        self._coast_n = _gather(self._coast_n, _find_ids(coast, self._coast_id), 0) + 1
        self._coast_id = coast
        events: list[AlertEvent] = []
        gone_set = set(gone.tolist())
        for old, new in list(self._successor.items()):
            if old in gone_set:
                del self._successor[old]
            elif new in gone_set:
                # The successor was a short-lived twin: the old track carries on.
                del self._successor[old]
                events += self._pass_back(t, new, old)
        ready = self._coast_id[self._coast_n >= cfg.handover_after_updates]
        events += self._hand_over(t, c, ready)
        # A superseded track says nothing more: its object is followed by its successor.
        superseded = np.fromiter(self._successor, dtype=np.int64, count=len(self._successor))
        live = ~((c.family != _SWARM) & _isin(c.subject, superseded))
        keep = keep[~_isin(_subject(keep), superseded)]
        ckeys = c.keys
        live_rows = np.flatnonzero(live)
        a = self.table
        at = _find(a.keys, ckeys[live_rows])
        ci = np.where(at >= 0, _gather(live_rows, at, 0), -1)
        has = ci >= 0
        a.seen_t[has | _isin(a.keys, keep)] = t
        kind = _gather(c.kind, ci, 0)
        refresh = has & (_RANK[kind] >= _RANK[a.kind])
        a.position[refresh] = c.position[ci[refresh]]
        a.has_position[refresh] = True
        a.enu[refresh] = c.enu[ci[refresh]]
        a.has_enu[refresh] = c.has_enu[ci[refresh]]
        # Severity only rises in an alert's life: a prediction that wavers does not
        # make it flap.
        severity = np.maximum(_gather(c.severity, ci, 0), a.severity)
        escalated = refresh & (_RANK[kind] > _RANK[a.kind])
        ttb, probability = _gather(c.ttb, ci, np.nan), _gather(c.probability, ci, np.nan)
        # An alert for a breach in progress says nothing new as its numbers wobble; a
        # prediction does, when its time or probability moves a good deal.
        due = refresh & _PREDICTION[kind] & (t - a.updated_t >= cfg.update_interval_s)
        with np.errstate(invalid="ignore"):
            moved = due & np.isfinite(ttb) & np.isfinite(a.ttb) & (
                np.abs(ttb - a.ttb) >= np.maximum(5.0, cfg.update_ttb_change * a.ttb))
            moved |= due & ~np.isnan(probability) & ~np.isnan(a.probability) & (
                np.abs(probability - a.probability) >= cfg.update_probability_change)
        updated = refresh & ((severity != a.severity) | escalated | moved)
        rows = np.flatnonzero(updated)
        a.kind[rows], a.severity[rows] = kind[rows], severity[rows]
        a.ttb[rows], a.probability[rows], a.updated_t[rows] = ttb[rows], probability[rows], t
        for r, k in zip(rows.tolist(), ci[rows].tolist(), strict=True):
            a.reason[r] = c.reason(k)
        lost_kind = a.kind == _K["track_lost_in_zone"]
        lost = a.has_track & _isin(a.subject, gone) & ~lost_kind
        expired = ~lost & (t >= a.expires_t)
        stale = ~lost & ~expired & ~lost_kind & (t - a.seen_t >= cfg.clear_after_s)
        cleared = lost | expired | stale
        n = len(a)
        # The events in the order of the alerts (a lost breach raises its track-lost
        # alert before it clears), made all at once: (row, event, why cleared).
        todo: list[tuple[int, str, str | None]] = []
        for r in np.flatnonzero(updated | cleared).tolist():
            if updated[r]:
                todo.append((r, "updated", None))
            if lost[r]:
                if a.kind[r] == _K["zone_breach"]:
                    raised = self._raise_lost(t, r, cleared[:r])
                    if raised is not None:
                        todo.append((raised, "raised", None))
                todo.append((r, "cleared", "track lost"))
            elif expired[r]:
                todo.append((r, "cleared", "expired"))
            elif stale[r]:
                todo.append((r, "cleared", f"condition gone for {t - float(a.seen_t[r]):.0f} s"))
        events += self._events(t, [r for r, _, _ in todo], [e for _, e, _ in todo],
                               [w for _, _, w in todo])
        self.table = self.table.take(np.r_[~cleared, np.ones(len(self.table) - n, bool)])
        events += self._raise_new(t, c, live)
        return events

    # ------------------------------------------------------------------ life cycle

    def _raise_new(self, t: float, c: Conditions, live: B) -> list[AlertEvent]:
        """New alerts, each after its condition has held long enough."""
        ckeys = c.keys
        can = live & c.raise_now
        at = _find(self._pending, ckeys)
        held = at >= 0
        held[held] = can[at[held]]
        self._pending, self._pending_since = self._pending[held], self._pending_since[held]
        rows = np.flatnonzero(can & ~_isin(ckeys, self.table.keys))
        at = _find(ckeys[rows], self._pending)
        since = _gather(self._pending_since, at, t)
        ready = t - since >= self._raise_after_s[c.kind[rows]]
        waiting = rows[~ready & (at < 0)]
        self._pending = np.concatenate([np.delete(self._pending, at[ready & (at >= 0)]),
                                        ckeys[waiting]])
        self._pending_since = np.concatenate([
            np.delete(self._pending_since, at[ready & (at >= 0)]), np.full(waiting.size, t)])
        go = rows[ready]
        go = go[_key_order(c.family[go], c.subject[go], c.place[go])]
        if go.size == 0:
            return []
        m = go.size
        new = AlertTable(
            id=self._next_id + np.arange(m, dtype=np.int64), family=c.family[go],
            subject=c.subject[go], place=c.place[go], kind=c.kind[go],
            severity=c.severity[go],
            reason=np.array([c.reason(k) for k in go.tolist()], dtype=object),
            raised_t=np.full(m, t), seen_t=np.full(m, t), updated_t=np.full(m, t),
            ttb=c.ttb[go], probability=c.probability[go], position=c.position[go],
            has_position=np.ones(m, dtype=bool), enu=c.enu[go], has_enu=c.has_enu[go],
            acknowledged_by=np.full(m, None, dtype=object), acknowledged_t=np.full(m, np.nan),
            expires_t=np.full(m, np.inf))
        self._next_id += m
        n = len(self.table)
        self.table = self.table.extend(new)
        return self._events(t, list(range(n, n + m)), ["raised"] * m)

    def _hand_over(self, t: float, c: Conditions, coasting: I64) -> list[AlertEvent]:
        """Pass the alerts of coasting tracks to new tracks on the same object."""
        events: list[AlertEvent] = []
        a = self.table
        # Only the alerts of coasting tracks can pass: few, looked up by family and place.
        mine = np.flatnonzero(a.has_track & a.has_enu & _isin(a.subject, coasting))
        if mine.size == 0 or len(c) == 0:
            return events
        by_place: dict[tuple[int, int], list[int]] = {}
        for r, f, p in zip(mine.tolist(), a.family[mine].tolist(), a.place[mine].tolist(),
                           strict=True):
            by_place.setdefault((f, p), []).append(r)
        # Keys without an alert, of a track, in the family and place of one of those.
        cand = np.flatnonzero((c.family != _SWARM) & c.has_enu & ~_isin(c.keys, a.keys)
                              & _isin(alert_keys(c.family, 0, c.place),
                                      alert_keys(a.family[mine], 0, a.place[mine])))
        if cand.size == 0:
            return events
        cand = cand[_key_order(c.family[cand], c.subject[cand], c.place[cand])]
        r2 = self.config.handover_m ** 2
        # A first look in numpy, with room for rounding: a key with no such alert near
        # has none unless one of them moves (then its place is looked at one by one).
        near = np.zeros(cand.size, dtype=bool)
        for (f, p), rs in by_place.items():
            here = np.flatnonzero((c.family[cand] == f) & (c.place[cand] == p))
            d2 = ((c.enu[cand[here], None, :] - a.enu[rs][None, :, :]) ** 2).sum(axis=2)
            near[here] = (d2 <= r2 * (1.0 + 1e-9) + 1e-6).any(axis=1)
        moved: set[tuple[int, int]] = set()
        for k, close in zip(cand.tolist(), near.tolist(), strict=True):
            f, new, p = int(c.family[k]), int(c.subject[k]), int(c.place[k])
            if not (close or (f, p) in moved) or new in self._successor \
                    or self._row(f, new, p) >= 0:
                continue
            enu = c.enu[k].tolist()
            for r in by_place[(f, p)]:
                if sum((x - y) ** 2 for x, y in zip(a.enu[r].tolist(), enu, strict=True)) > r2:
                    continue
                old = int(a.subject[r])
                rows = np.flatnonzero(a.has_track & (a.subject == old))
                moved.update(zip(a.family[rows].tolist(), a.place[rows].tolist(), strict=True))
                events.extend(self._pass_on(t, old, new, c, k))
                break
        return events

    def _row(self, family: int, subject: int, place: int) -> int:
        """The row of an alert's key, −1 when it has none."""
        a = self.table
        rows = np.flatnonzero((a.subject == subject) & (a.family == family)
                              & (a.place == place))
        return int(rows[0]) if rows.size else -1

    def _pass_on(self, t: float, old: int, new: int, c: Conditions, k: int
                 ) -> list[AlertEvent]:
        """Move every per-track alert of track ``old`` to track ``new`` (condition row
        ``k`` of ``c``: its position)."""
        events = []
        self._successor[old] = new
        a = self.table
        for r in np.flatnonzero(a.has_track & (a.subject == old)).tolist():
            if self._row(int(a.family[r]), new, int(a.place[r])) >= 0:
                continue
            a.subject[r] = new
            a.enu[r], a.has_enu[r] = c.enu[k], c.has_enu[k]
            a.position[r], a.has_position[r] = c.position[k], True
            a.reason[r] = f"track {old} continues as track {new}: {a.reason[r]}"
            a.updated_t[r] = t
            events.append(self._event(t, "updated", r))
        return events

    def _pass_back(self, t: float, new: int, old: int) -> list[AlertEvent]:
        """Return the alerts a dead successor ``new`` took over to track ``old``."""
        events = []
        a = self.table
        for r in np.flatnonzero(a.has_track & (a.subject == new)).tolist():
            if self._row(int(a.family[r]), old, int(a.place[r])) >= 0:
                continue
            a.subject[r], a.updated_t[r] = old, t
            a.reason[r] = f"track {new} was lost; track {old} goes on: {a.reason[r]}"
            events.append(self._event(t, "updated", r))
        return events

    def _raise_lost(self, t: float, r: int, cleared_before: B) -> int | None:
        """A track-lost alert for the breach of row ``r`` (rows before it that this scan
        cleared are gone already): its row, None when it has one."""
        a = self.table
        zone_id = self.zones[int(a.place[r])].id
        zone = next(i for i, z in enumerate(self.zones) if z.id == zone_id)
        track = int(a.subject[r])
        there = (a.family == _LOST) & (a.subject == track) & (a.place == zone)
        there[:cleared_before.size] &= ~cleared_before
        if there.any():
            return None
        restriction = self.zones[zone].restriction
        sev = Severity.CRITICAL if restriction == Restriction.PROHIBITED else Severity.WARNING
        new = AlertTable(
            id=np.array([self._next_id]), family=np.array([_LOST]),
            subject=np.array([track]), place=np.array([zone]),
            kind=np.array([_K["track_lost_in_zone"]]), severity=np.array([int(sev)]),
            reason=np.array([f"track lost inside {_zone_name(self.zones[zone])}"],
                            dtype=object),
            raised_t=np.array([t]), seen_t=np.array([t]), updated_t=np.array([t]),
            ttb=np.array([np.nan]), probability=np.array([np.nan]),
            position=a.position[r:r + 1].copy(), has_position=a.has_position[r:r + 1].copy(),
            enu=np.full((1, 3), np.nan), has_enu=np.zeros(1, dtype=bool),
            acknowledged_by=np.full(1, None, dtype=object), acknowledged_t=np.array([np.nan]),
            expires_t=np.array([t + self.config.lost_alert_s]))
        self._next_id += 1
        self.table = a.extend(new)
        return len(self.table) - 1

    # ------------------------------------------------------------------ rows as objects

    def _alert(self, r: int) -> Alert:
        a = self.table
        f, subject, place = int(a.family[r]), int(a.subject[r]), int(a.place[r])
        track = subject if f != _SWARM else None
        return Alert(
            id=int(a.id[r]),
            key=(FAMILIES[f], subject, place) if f in _PLACED else (FAMILIES[f], subject),
            kind=KINDS[int(a.kind[r])], severity=Severity(int(a.severity[r])),
            reason=str(a.reason[r]), raised_t=float(a.raised_t[r]),
            seen_t=float(a.seen_t[r]), updated_t=float(a.updated_t[r]), track=track,
            zone=self.zones[place].id if f in (_ZONE, _LOST) else None,
            site=self.sites[place].id if f == _SITE else None,
            group=subject if f == _SWARM else None, ttb=_opt(a.ttb[r]),
            probability=_opt(a.probability[r]),
            position=_triple(a.position[r]) if a.has_position[r] else None,
            acknowledged_by=a.acknowledged_by[r], acknowledged_t=_opt(a.acknowledged_t[r]),
            expires_t=float(a.expires_t[r]),
            enu=_triple(a.enu[r]) if a.has_enu[r] else None)

    def _event(self, t: float, event: str, r: int, *, by: str | None = None,
               why: str | None = None) -> AlertEvent:
        return self._events(t, [r], [event], [why], by=by)[0]

    def _events(self, t: float, rows: list[int], names: list[str],
                whys: list[str | None] | None = None, *, by: str | None = None
                ) -> list[AlertEvent]:
        """Events ``names`` of alert rows ``rows`` at ``t`` (``whys``: why each is
        cleared, None for the others), read from the columns at once."""
        if not rows:
            return []
        a = self.table
        at = np.asarray(rows, dtype=np.intp)
        zone_ids = [z.id for z in self.zones]
        site_ids = [s.id for s in self.sites]
        out = []
        for (alert, f, subject, place, kind, severity, reason, ttb, probability, position,
             has_position, name, why) in zip(
                a.id[at].tolist(), a.family[at].tolist(), a.subject[at].tolist(),
                a.place[at].tolist(), a.kind[at].tolist(), a.severity[at].tolist(),
                a.reason[at].tolist(), a.ttb[at].tolist(), a.probability[at].tolist(),
                a.position[at].tolist(), a.has_position[at].tolist(), names,
                whys or [None] * len(rows), strict=True):
            lat, lon, h = position if has_position else (None, None, None)
            out.append(AlertEvent(
                t=t, event=name, alert=alert, kind=KINDS[kind], severity=_SEVERITY[severity],
                reason=reason if why is None else f"{reason}; cleared: {why}",
                track=subject if f != _SWARM else None,
                zone=zone_ids[place] if f in (_ZONE, _LOST) else None,
                site=site_ids[place] if f == _SITE else None,
                group=subject if f == _SWARM else None,
                time_to_breach_s=None if math.isnan(ttb) else ttb,
                probability=None if math.isnan(probability) else probability,
                lat_deg=lat, lon_deg=lon, height_m=h, by=by))
        return out


def _find_ids(ids: I64, among: I64) -> NDArray[np.intp]:
    """Row of each id in the sorted unique ``among``; −1 where absent."""
    if ids.size == 0 or among.size == 0:
        return np.full(ids.shape, -1, dtype=np.intp)
    at = np.minimum(np.searchsorted(among, ids), among.size - 1)
    found: NDArray[np.intp] = np.where(among[at] == ids, at, -1)
    return found


def _opt(x: np.floating[Any] | float) -> float | None:
    return None if math.isnan(x) else float(x)


def _triple(v: F64) -> tuple[float, float, float]:
    x, y, z = v.tolist()
    return (x, y, z)


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


_CRITICAL, _WARNING, _INFO = int(Severity.CRITICAL), int(Severity.WARNING), int(Severity.INFO)


class Watch:
    """Zones, sites and the alert book together: one picture in, alert events out.

    A scan's evidence is found for all tracks at once (``Conditions``, one row per
    alert key); its words are written only for the rows that become events."""

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
        self._zone_codes()

    def _zone_codes(self) -> None:
        zones = self.monitor.zones
        self._alerting = np.array([z.restriction != Restriction.NO_RESTRICTION for z in zones],
                                  dtype=bool)
        self._prohibited = np.array([z.restriction == Restriction.PROHIBITED for z in zones],
                                    dtype=bool)

    def with_zones(self, zones: Sequence[Zone]) -> tuple[Watch, list[AlertEvent]]:
        """A watch over other zones that keeps this one's alerts: those of zones that
        stay follow them to their new place; those of zones that went are cleared (the
        events returned)."""
        new = Watch.__new__(Watch)
        new.origin, new.sites, new._site_xy = self.origin, self.sites, self._site_xy
        new.monitor = ZoneMonitor(zones, self.origin, ground=self.monitor.ground,
                                  config=self.monitor.config)
        new._zone_codes()
        where = {z.id: i for i, z in enumerate(new.monitor.zones)}
        book = self.book
        a = book.table
        t = float(a.updated_t.max()) if len(a) else 0.0
        zoned = (a.family == _ZONE) | (a.family == _LOST)
        zone_id = [book.zones[p].id if z else None
                   for z, p in zip(zoned.tolist(), a.place.tolist(), strict=True)]
        stays = np.array([z is None or z in where for z in zone_id], dtype=bool)
        events = [book._event(t, "cleared", r, why=f"zone {zone_id[r]} removed")
                  for r in np.flatnonzero(~stays).tolist()]
        a.place[:] = [where[z] if z is not None and z in where else p
                      for z, p in zip(zone_id, a.place.tolist(), strict=True)]
        a = a.take(stays)
        # Two alerts whose zones now have one place: the later one stays (by key).
        _, last = np.unique(a.keys[::-1], return_index=True)
        book.table = a.take(np.sort(len(a) - 1 - last))
        book._pending, book._pending_since = book._pending[:0], book._pending_since[:0]
        book.zones = new.monitor.zones
        new.book = book
        return new, events

    def update(self, w: WatchInput) -> list[AlertEvent]:
        n = w.id.shape[0]
        spoof = (w.flags & TrackFlag.SPOOF_SUSPECT) != 0
        hits = self.monitor.check(w.t, w.x, w.P, w.identity, spoof_suspect=spoof)
        lat, lon, h = self.origin.enu_to_geodetic(w.x[:, :3]) if n else (
            np.empty(0), np.empty(0), np.empty(0))
        position = np.stack([lat, lon, h], axis=1)
        blocks: list[Conditions] = []
        keep: list[Keys] = []
        self._zone_conditions(w, hits, position, blocks, keep)
        if self.sites and n:
            self._site_conditions(w, position, blocks, keep)
        self._swarm_conditions(w, blocks, keep)
        # Per-track kinds: from the classification and the flags.
        speed = np.linalg.norm(w.x[:, 3:6], axis=1) if n else np.empty(0)
        height = h - self.origin.alt_m if n else np.empty(0)
        fast = np.flatnonzero(w.class_name == "fast_low_flyer")
        blocks.append(Conditions.block(
            _FAST, w.id[fast], -1, _K["fast_low_flyer"], _WARNING, True, np.nan, np.nan,
            position[fast], w.x[fast, :3],
            lambda j: f"fast low flyer: {speed[fast[j]]:.0f} m/s at {height[fast[j]]:.0f} m"))
        liars = np.flatnonzero(spoof)
        blocks.append(Conditions.block(
            _SPOOF, w.id[liars], -1, _K["spoof_suspect"], _WARNING, True, np.nan, np.nan,
            position[liars], w.x[liars, :3],
            lambda j: f"{str(w.identity[liars[j]]) or 'a cooperative report'} claims a "
                      "position the sensors do not see"))
        dark = np.flatnonzero((w.flags & TrackFlag.DARK) != 0)
        blocks.append(Conditions.block(
            _DARK, w.id[dark], -1, _K["dark_drone"], _INFO, True, np.nan, np.nan,
            position[dark], w.x[dark, :3],
            lambda j: "a drone with no Remote ID or ADS-B identity"))
        coasting = w.id[w.coasting] if w.coasting is not None else _NO_IDS
        return self.book.update(w.t, Conditions.join(blocks),
                                np.concatenate(keep) if keep else alert_keys(_NO_IDS, 0, 0),
                                w.deleted, coasting)

    def _zone_conditions(self, w: WatchInput, hits: ZoneHits, position: F64,
                         blocks: list[Conditions], keep: list[Keys]) -> None:
        cfg = self.book.config
        if len(hits) == 0:
            return
        zones = self.monitor.zones
        hits = hits.take(self._alerting[hits.zone])
        if len(hits) == 0:
            return  # only zones without restriction near
        # One alert per (track, zone): its deepest volume speaks for it.
        order = np.lexsort((-hits.depth_m, hits.zone, hits.track))
        hits = hits.take(order)
        first = np.r_[True, (np.diff(hits.track) != 0) | (np.diff(hits.zone) != 0)]
        best_p = np.maximum.reduceat(hits.probability, np.flatnonzero(first))
        ttb_all = np.where(np.isnan(hits.time_to_breach_s), np.inf, hits.time_to_breach_s)
        best_ttb = np.minimum.reduceat(ttb_all, np.flatnonzero(first))
        hits = hits.take(first)
        raise_breach = hits.inside & (hits.depth_m >= cfg.entry_margin_m)
        near = hits.depth_m > -cfg.exit_margin_m
        raise_pred = ~hits.inside & (best_p >= cfg.raise_probability)
        keep_pred = best_p >= cfg.keep_probability
        interesting = raise_breach | near | raise_pred | keep_pred
        i, zi = hits.track, hits.zone
        tid = w.id[i]
        # Inside and already alerted: a breach, however shallow.
        breach = interesting & (raise_breach | (hits.inside & self.book.contains(_ZONE, tid, zi)))
        predicted = interesting & ~breach & (raise_pred | keep_pred)
        kept = interesting & (near | keep_pred)
        keep.append(alert_keys(_ZONE, tid[kept], zi[kept]))
        prohibited = self._prohibited[zi]
        b = np.flatnonzero(breach)
        p = np.flatnonzero(predicted)

        def inside(j: int) -> str:
            k = b[j]
            zone = zones[zi[k]]
            return (f"inside {_zone_name(zone)} ({zone.restriction.value}), "
                    f"{hits.depth_m[k]:.0f} m from its edge")

        def heading(j: int) -> str:
            k = p[j]
            zone = zones[zi[k]]
            ttb = float(best_ttb[k])
            when = f"in {ttb:.0f} s" if math.isfinite(ttb) else "within the horizon"
            return (f"heading into {_zone_name(zone)} ({zone.restriction.value}) {when}, "
                    f"P {best_p[k]:.2f}")

        blocks.append(Conditions.block(
            _ZONE, tid[b], zi[b], _K["zone_breach"],
            np.where(prohibited[b], _CRITICAL, _WARNING), True, 0.0, hits.probability[b],
            position[i[b]], w.x[i[b], :3], inside))
        ttb = best_ttb[p]
        soon = ttb <= cfg.critical_within_s
        blocks.append(Conditions.block(
            _ZONE, tid[p], zi[p], _K["zone_breach_predicted"],
            np.where(prohibited[p], np.where(soon, _CRITICAL, _WARNING),
                     np.where(soon, _WARNING, _INFO)),
            raise_pred[p], np.where(np.isfinite(ttb), ttb, np.nan), best_p[p],
            position[i[p]], w.x[i[p], :3], heading))

    def _site_conditions(self, w: WatchInput, position: F64, blocks: list[Conditions],
                         keep: list[Keys]) -> None:
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
        i, si = hits.track, hits.site
        tid = w.id[i]
        keep.append(alert_keys(_SITE, tid, si))
        prob, inside = hits.probability, hits.inside
        rows = np.flatnonzero(inside | (prob >= cfg.keep_probability))
        ttr = np.where(inside, 0.0, hits.time_to_reach_s)[rows]
        soon = np.isfinite(ttr) & (ttr <= cfg.critical_within_s)

        def words(j: int) -> str:
            k = rows[j]
            site = self.sites[si[k]]
            if inside[k]:
                return f"inside defended site {site.name!r}"
            ttr = float(hits.time_to_reach_s[k])
            when = f"in {ttr:.0f} s" if math.isfinite(ttr) else \
                f"closest {hits.cpa_m[k]:.0f} m in {hits.cpa_s[k]:.0f} s"
            return f"heading for defended site {site.name!r}: {when}, P {float(prob[k]):.2f}"

        blocks.append(Conditions.block(
            _SITE, tid[rows], si[rows], _K["site_threat"],
            np.where(inside[rows] | soon, _CRITICAL, _WARNING),
            inside[rows] | (prob[rows] >= cfg.raise_probability),
            np.where(np.isfinite(ttr), ttr, np.nan), prob[rows], position[i[rows]],
            w.x[i[rows], :3], words))

    def _swarm_conditions(self, w: WatchInput, blocks: list[Conditions],
                          keep: list[Keys]) -> None:
        cfg = self.book.config
        swarms, where = [], []
        # Groups are few: each centroid converted alone, as it always was (one point's
        # conversion and a batch's may differ in the last bit).
        for g, count, c in zip(w.group_id.tolist(), w.group_count.tolist(),
                               w.group_centroid, strict=True):
            if count >= cfg.swarm_min_count:
                glat, glon, gh = self.origin.enu_to_geodetic(c)
                swarms.append((g, count))
                where.append((float(glat), float(glon), float(gh)))
            elif count >= 2:
                keep.append(alert_keys(_SWARM, [g], -1))
        group = np.array([g for g, _ in swarms], dtype=np.int64)
        count = np.array([c for _, c in swarms], dtype=np.int64)
        blocks.append(Conditions.block(
            _SWARM, group, -1, _K["swarm"], np.where(count >= 10, _CRITICAL, _WARNING), True,
            np.nan, np.nan, np.array(where, dtype=np.float64).reshape(-1, 3), None,
            lambda j: f"a group of {count[j]} tracks flying together"))


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
