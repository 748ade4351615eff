"""The alert book and the watch: a drone flying into a zone is warned of early and
breached at once; one that loiters on the boundary raises one alert; the life cycle,
the other kinds, and the event schema."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skyfence.alerts import (
    ALERT_EVENT_SCHEMA,
    FAMILIES,
    KINDS,
    AlertBook,
    AlertConfig,
    AlertEvent,
    Conditions,
    JsonLinesSink,
    Severity,
    Watch,
    WatchInput,
    alert_keys,
    watch_input,
)
from skyfence.errors import SkyfenceError
from skyfence.types import TrackFlag
from skyfence.zones.model import Restriction, Zone
from skyfence.zones.monitor import FlatGround, ZoneMonitor
from skyfence.zones.sites import Site, check_sites
from zones.scenes import ORIGIN, T0, frames, square_zone

ZONE_KINDS = {"zone_breach", "zone_breach_predicted"}


def _run(truth: np.ndarray, seed: int, **kw: object) -> list[AlertEvent]:
    watch = Watch(ORIGIN, [square_zone("Z", (-300, 300), (300, 900))],
                  ground=FlatGround(ORIGIN.alt_m), **kw)  # type: ignore[arg-type]
    events: list[AlertEvent] = []
    for update, frame in frames(truth, seed):
        events.extend(watch.update(watch_input(frame, update.deleted)))  # type: ignore[arg-type]
    return events


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_straight_in_at_15_mps_is_predicted_a_minute_ahead_and_breached_at_once(
        seed: int) -> None:
    n = 220
    truth = np.zeros((n, 1, 3))
    truth[:, 0, 1] = -2200.0 + 15.0 * np.arange(n)
    truth[:, 0, 2] = 80.0
    entry_t = T0 + (300.0 + 2200.0) / 15.0
    events = [e for e in _run(truth, seed) if e.kind in ZONE_KINDS]
    raised = [e for e in events if e.event == "raised"]
    assert len(raised) == 1 and raised[0].kind == "zone_breach_predicted"
    assert entry_t - raised[0].t >= 60.0
    breach = next(e for e in events if e.kind == "zone_breach")
    assert breach.alert == raised[0].alert  # the same alert, escalated
    assert 0.0 <= breach.t - entry_t <= 1.0  # within one scan of entry
    assert breach.severity == Severity.CRITICAL and breach.time_to_breach_s == 0.0


@pytest.mark.parametrize("seed", [0, 1])
def test_loitering_on_the_boundary_for_ten_minutes_raises_one_alert(seed: int) -> None:
    n = 600
    t = np.arange(n)
    truth = np.zeros((n, 1, 3))
    truth[:, 0, 0] = 300.0 + 20.0 * np.sin(2 * np.pi * t / 90.0)  # ±20 m about the east edge
    truth[:, 0, 1] = 600.0 + 250.0 * np.sin(2 * np.pi * t / 300.0)
    truth[:, 0, 2] = 80.0
    events = [e for e in _run(truth, seed) if e.kind in ZONE_KINDS]
    assert sum(e.event == "raised" for e in events) == 1
    assert not any(e.event == "cleared" for e in events)
    assert any(e.kind == "zone_breach" for e in events)


def test_leaving_clears_after_the_exit_margin_and_the_delay() -> None:
    n = 200
    truth = np.zeros((n, 1, 3))
    truth[:, 0, 1] = 600.0
    # Hovers for a minute, then speeds up east at 3 m/s² to 15 m/s: out at about 82 s.
    v = np.clip(3.0 * (np.arange(n) - 60.0), 0.0, 15.0)
    truth[:, 0, 0] = np.cumsum(v)
    truth[:, 0, 2] = 80.0
    events = [e for e in _run(truth, 0) if e.kind in ZONE_KINDS]
    raised = [e for e in events if e.event == "raised"]
    cleared = [e for e in events if e.event == "cleared"]
    assert len(raised) == 1 and len(cleared) == 1
    # Out of the zone at ~82 s, 50 m beyond at ~86 s, then 30 s more.
    assert 110.0 <= cleared[0].t - T0 <= 125.0
    assert "cleared" in cleared[0].reason


def _input(t: float, ids: list[int], *, pos: list[tuple[float, float, float]] | None = None,
           flags: list[int] | None = None, classes: list[str] | None = None,
           identity: list[str] | None = None, groups: tuple[list[int], list[int]] = ([], []),
           deleted: tuple[int, ...] = ()) -> WatchInput:
    n = len(ids)
    x = np.zeros((n, 6))
    if pos is not None:
        x[:, :3] = pos
    return WatchInput(
        t=t, id=np.asarray(ids, np.int64), x=x,
        P=np.tile(np.diag([25.0, 25, 25, 1, 1, 1]), (n, 1, 1)),
        identity=np.asarray(identity or [""] * n, np.str_),
        flags=np.asarray(flags or [0] * n, np.uint16),
        class_name=np.asarray(classes or ["unknown"] * n, np.str_),
        group=np.full(n, -1, np.int64), group_id=np.asarray(groups[0], np.int64),
        group_count=np.asarray(groups[1], np.int64),
        group_centroid=np.zeros((len(groups[0]), 3)), deleted=np.asarray(deleted, np.int64))


def test_acknowledge_and_the_track_lost_inside_a_zone() -> None:
    watch = Watch(ORIGIN, [square_zone("Z", (-300, 300), (-300, 300))],
                  ground=FlatGround(ORIGIN.alt_m))
    ev = watch.update(_input(T0, [7], pos=[(0, 0, 50)]))
    assert [(e.event, e.kind) for e in ev] == [("raised", "zone_breach")]
    ack = watch.book.acknowledge(ev[0].alert, t=T0 + 1, by="officer-1")
    assert ack.event == "acknowledged" and ack.by == "officer-1"
    ev = watch.update(_input(T0 + 2, [], deleted=(7,)))
    kinds = [(e.event, e.kind) for e in ev]
    assert ("cleared", "zone_breach") in kinds and ("raised", "track_lost_in_zone") in kinds
    lost = next(e for e in ev if e.kind == "track_lost_in_zone")
    assert lost.severity == Severity.CRITICAL and lost.zone == "Z"
    # It expires unless acknowledged; acknowledged, it goes at the next scan.
    watch.book.acknowledge(lost.alert, t=T0 + 3, by="officer-1")
    ev = watch.update(_input(T0 + 4, []))
    assert [(e.event, e.kind) for e in ev] == [("cleared", "track_lost_in_zone")]
    with pytest.raises(SkyfenceError, match="no active alert"):
        watch.book.acknowledge(lost.alert, t=T0 + 5, by="x")


def test_flickering_conditions_must_hold_before_they_alert() -> None:
    watch = Watch(ORIGIN, [], config=AlertConfig())
    dark = int(TrackFlag.DARK)
    got = []
    for k in range(15):
        got += watch.update(_input(T0 + k, [1, 2], flags=[dark, 0],
                                   classes=["drone_multirotor", "fast_low_flyer"]))
    raised = {(e.kind, e.t - T0) for e in got if e.event == "raised"}
    assert raised == {("fast_low_flyer", 3.0), ("dark_drone", 10.0)}
    # A condition that lapses starts its wait again.
    watch = Watch(ORIGIN, [])
    got = []
    for k in range(20):
        cls = "fast_low_flyer" if k % 3 else "unknown"
        got += watch.update(_input(T0 + k, [1], classes=[cls]))
    assert not got


def test_swarm_and_spoofing_alerts() -> None:
    watch = Watch(ORIGIN, [])
    spoof = int(TrackFlag.SPOOF_SUSPECT)
    got = []
    for k in range(5):
        got += watch.update(_input(T0 + k, [1, 2], flags=[spoof, 0],
                                   identity=["rid:LIAR", ""], groups=([9], [12])))
    raised = [e for e in got if e.event == "raised"]
    assert {e.kind for e in raised} == {"spoof_suspect", "swarm"}
    swarm = next(e for e in raised if e.kind == "swarm")
    assert swarm.group == 9 and swarm.severity == Severity.CRITICAL and "12" in swarm.reason
    assert "rid:LIAR" in next(e for e in raised if e.kind == "spoof_suspect").reason


def test_site_threat_from_a_track_heading_for_it() -> None:
    lat, lon, _ = ORIGIN.enu_to_geodetic(np.array([0.0, 1500.0, 0.0]))
    site = Site(id="S1", name="plant", lon_deg=float(lon), lat_deg=float(lat), radius_m=300.0)
    watch = Watch(ORIGIN, [], [site], ground=FlatGround(ORIGIN.alt_m))
    w = _input(T0, [4], pos=[(0, 0, 60)])
    x = w.x.copy()
    x[0, 4] = 20.0
    ev = watch.update(WatchInput(**{**{f: getattr(w, f) for f in w.__dataclass_fields__},
                                    "x": x}))
    assert [(e.event, e.kind, e.site) for e in ev] == [("raised", "site_threat", "S1")]
    assert ev[0].time_to_breach_s == pytest.approx(60.0, abs=0.5)  # 1,200 m at 20 m/s


def test_events_carry_only_declared_fields_and_valid_json(tmp_path) -> None:  # type: ignore[no-untyped-def]
    n = 220
    truth = np.zeros((n, 1, 3))
    truth[:, 0, 1] = -2200.0 + 15.0 * np.arange(n)
    truth[:, 0, 2] = 80.0
    events = _run(truth, 0)
    path = tmp_path / "alerts.jsonl"
    sink = JsonLinesSink(path)
    for e in events:
        sink.send(e)
    sink.close()
    declared = [name for name, *_ in ALERT_EVENT_SCHEMA]
    lines = path.read_text().splitlines()
    assert len(lines) == len(events) > 0
    for line in lines:
        obj = json.loads(line)
        assert list(obj) == declared
        assert obj["event"] in ("raised", "updated", "acknowledged", "cleared")
        assert obj["severity"] in ("info", "warning", "critical")
        assert all(not isinstance(v, float) or math.isfinite(v) for v in obj.values())


def test_the_same_input_gives_the_same_events() -> None:
    n = 150
    truth = np.zeros((n, 1, 3))
    truth[:, 0, 1] = -1500.0 + 15.0 * np.arange(n)
    truth[:, 0, 2] = 80.0
    assert _run(truth, 3) == _run(truth, 3)


def test_bad_alert_configuration_is_refused() -> None:
    with pytest.raises(SkyfenceError, match="unknown alert kinds"):
        AlertConfig(raise_after_s={"zone_breech": 1.0})
    with pytest.raises(SkyfenceError, match="keep_probability"):
        AlertConfig(raise_probability=0.3, keep_probability=0.6)


def test_a_track_break_passes_the_alerts_on_instead_of_raising_new_ones() -> None:
    watch = Watch(ORIGIN, [square_zone("Z", (-300, 300), (-300, 300))],
                  ground=FlatGround(ORIGIN.alt_m))
    dark = int(TrackFlag.DARK)
    ev = []
    for k in range(12):
        ev += watch.update(_input(T0 + k, [1], pos=[(0, 0, 50)], flags=[dark]))
    assert sorted(e.kind for e in ev if e.event == "raised") == ["dark_drone", "zone_breach"]
    # Track 1 coasts two updates; the tracker starts track 2 on the same drone, 20 m on.
    w = _input(T0 + 11.5, [1], pos=[(0, 0, 50)], flags=[dark])
    assert watch.update(_coasting(w, [True])) == []
    w = _input(T0 + 12, [1, 2], pos=[(0, 0, 50), (20, 0, 50)], flags=[dark, dark])
    ev = watch.update(_coasting(w, [True, False]))
    assert {(e.event, e.kind, e.track) for e in ev} == {("updated", "zone_breach", 2),
                                                        ("updated", "dark_drone", 2)}
    assert all("track 1 continues as track 2" in e.reason for e in ev)
    # Track 1 is dropped: nothing is lost, nothing new is raised.
    ev = []
    for k in range(13, 30):
        ev += watch.update(_input(T0 + k, [2], pos=[(20, 0, 50)], flags=[dark],
                                  deleted=(1,) if k == 13 else ()))
    assert ev == []
    # A new track far from any coasting one raises its own alerts.
    ev = watch.update(_input(T0 + 30, [2, 3], pos=[(20, 0, 50), (-200, 0, 50)]))
    assert [(e.event, e.kind, e.track) for e in ev] == [("raised", "zone_breach", 3)]


def test_the_log_sink_writes_critical_alerts_as_errors(caplog: pytest.LogCaptureFixture) -> None:
    from skyfence.alerts import LogSink

    event = AlertEvent(t=T0, event="raised", alert=3, kind="zone_breach",
                       severity=Severity.CRITICAL, reason="inside 'Z'", track=1, zone="Z")
    with caplog.at_level("INFO", logger="skyfence.alerts"):
        LogSink().send(event)
    (rec,) = caplog.records
    assert rec.levelname == "ERROR" and "alert 3 raised zone_breach (critical)" in rec.getMessage()


def _coasting(w: WatchInput, coasting: list[bool]) -> WatchInput:
    return WatchInput(**{**{f: getattr(w, f) for f in w.__dataclass_fields__},
                         "coasting": np.array(coasting)})


def test_alerts_pass_back_when_the_new_track_was_a_short_lived_twin() -> None:
    watch = Watch(ORIGIN, [square_zone("Z", (-300, 300), (-300, 300))],
                  ground=FlatGround(ORIGIN.alt_m))
    watch.update(_input(T0, [1], pos=[(0, 0, 50)]))
    # One missed look is no break: a new track nearby raises its own alert.
    ev = watch.update(_coasting(_input(T0 + 1, [1, 2], pos=[(0, 0, 50), (10, 0, 50)]),
                                [True, False]))
    assert [(e.event, e.track) for e in ev] == [("raised", 2)]
    watch = Watch(ORIGIN, [square_zone("Z", (-300, 300), (-300, 300))],
                  ground=FlatGround(ORIGIN.alt_m))
    watch.update(_input(T0, [1], pos=[(0, 0, 50)]))
    watch.update(_coasting(_input(T0 + 1, [1], pos=[(0, 0, 50)]), [True]))
    ev = watch.update(_coasting(_input(T0 + 2, [1, 3], pos=[(0, 0, 50), (10, 0, 50)]),
                                [True, False]))
    assert [(e.event, e.track) for e in ev] == [("updated", 3)]
    # Track 3 dies, track 1 is seen again: the alert is track 1's once more, not lost.
    ev = watch.update(_input(T0 + 3, [1], pos=[(0, 0, 50)], deleted=(3,)))
    assert [(e.event, e.track) for e in ev] == [("updated", 1)]
    assert "track 3 was lost; track 1 goes on" in ev[0].reason
    assert watch.update(_input(T0 + 4, [1], pos=[(0, 0, 50)])) == []


# ---------------------------------------------------------------------------- the book
# The book works on a scan in numpy. The oracle: the book as it was, one alert and one
# condition at a time in Python (kept here as it stood, trimmed of comments), run side
# by side on random scans: births, deaths, coasting, breaks near coasting tracks,
# conditions that come and go, keep-conditions, acknowledgements.


@dataclass(slots=True)
class _Cond:
    kind: str
    severity: Severity
    reason: str
    raise_now: bool
    track: int | None = None
    zone: int | None = None
    site: int | None = None
    group: int | None = None
    ttb: float | None = None
    probability: float | None = None
    position: tuple[float, float, float] | None = None
    enu: tuple[float, float, float] | None = None


@dataclass(slots=True)
class _Alert:
    id: int
    key: tuple[Any, ...]
    kind: str
    severity: Severity
    reason: str
    raised_t: float
    seen_t: float
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


def _sort_key(key: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(str(k) for k in key)


class _OracleBook:
    def __init__(self, zones: Sequence[Zone], sites: Sequence[Site], config: AlertConfig) -> None:
        self.zones, self.sites, self.config = tuple(zones), tuple(sites), config
        self.alerts: dict[tuple[Any, ...], _Alert] = {}
        self._pending: dict[tuple[Any, ...], float] = {}
        self._next_id = 1
        self._successor: dict[int, int] = {}
        self._coasting: dict[int, int] = {}

    def active(self) -> list[_Alert]:
        return sorted(self.alerts.values(), key=lambda a: a.id)

    def acknowledge(self, alert_id: int, *, t: float, by: str) -> AlertEvent:
        a = next(a for a in self.alerts.values() if a.id == alert_id)
        a.acknowledged_by, a.acknowledged_t = by, t
        if a.kind == "track_lost_in_zone":
            a.expires_t = t
        return self._event(t, "acknowledged", a, by=by)

    def update(self, t: float, conditions: dict[tuple[Any, ...], _Cond],
               keep: set[tuple[Any, ...]], gone_tracks: Sequence[int],
               coasting: Sequence[int]) -> list[AlertEvent]:
        cfg = self.config
        gone = set(gone_tracks)
        self._coasting = {k: self._coasting.get(k, 0) + 1 for k in set(coasting)}
        events: list[AlertEvent] = []
        for old, new in list(self._successor.items()):
            if old in gone:
                del self._successor[old]
            elif new in gone:
                del self._successor[old]
                events += self._pass_back(t, new, old)
        ready = {k for k, n in self._coasting.items() if n >= cfg.handover_after_updates}
        events += self._hand_over(t, conditions, ready)
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
            if a.track is not None and a.track in gone and a.kind != "track_lost_in_zone":
                if a.kind == "zone_breach":
                    events.extend(self._raise_lost(t, a))
                events.append(self._clear(t, a, "track lost"))
            elif t >= a.expires_t:
                events.append(self._clear(t, a, "expired"))
            elif a.kind != "track_lost_in_zone" and t - a.seen_t >= cfg.clear_after_s:
                events.append(self._clear(t, a, f"condition gone for {t - a.seen_t:.0f} s"))
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

    def _hand_over(self, t: float, conditions: dict[tuple[Any, ...], _Cond],
                   coasting: set[int]) -> list[AlertEvent]:
        events: list[AlertEvent] = []
        by_place: dict[tuple[Any, ...], list[_Alert]] = {}
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

    def _pass_on(self, t: float, old: int, new: int, c: _Cond) -> list[AlertEvent]:
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

    def _raise(self, t: float, key: tuple[Any, ...], c: _Cond) -> AlertEvent:
        a = _Alert(id=self._next_id, key=key, kind=c.kind, severity=c.severity,
                   reason=c.reason, raised_t=t, seen_t=t, updated_t=t, track=c.track,
                   zone=None if c.zone is None else self.zones[c.zone].id,
                   site=None if c.site is None else self.sites[c.site].id, group=c.group,
                   ttb=c.ttb, probability=c.probability, position=c.position, enu=c.enu)
        if c.kind == "track_lost_in_zone":
            a.expires_t = t + self.config.lost_alert_s
        self._next_id += 1
        self.alerts[key] = a
        return self._event(t, "raised", a)

    def _refresh(self, t: float, a: _Alert, c: _Cond) -> AlertEvent | None:
        cfg = self.config
        escalated = _RANK.get(c.kind, 0) > _RANK.get(a.kind, 0)
        if _RANK.get(c.kind, 0) < _RANK.get(a.kind, 0):
            return None
        severity = max(c.severity, a.severity)
        severity_changed = severity != a.severity
        a.position, a.enu = c.position, c.enu
        moved = False
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

    def _raise_lost(self, t: float, a: _Alert) -> list[AlertEvent]:
        zone = next(i for i, z in enumerate(self.zones) if z.id == a.zone)
        key = ("track_lost_in_zone", a.track, zone)
        if key in self.alerts:
            return []
        restriction = self.zones[zone].restriction
        sev = Severity.CRITICAL if restriction == Restriction.PROHIBITED else Severity.WARNING
        c = _Cond("track_lost_in_zone", sev, f"track lost inside {_zone_name(self.zones[zone])}",
                  True, track=a.track, zone=zone, position=a.position)
        return [self._raise(t, key, c)]

    def _clear(self, t: float, a: _Alert, why: str) -> AlertEvent:
        del self.alerts[a.key]
        return self._event(t, "cleared", replace(a, reason=f"{a.reason}; cleared: {why}"))

    @staticmethod
    def _event(t: float, event: str, a: _Alert, *, by: str | None = None) -> AlertEvent:
        lat, lon, h = a.position if a.position is not None else (None, None, None)
        return AlertEvent(t=t, event=event, alert=a.id, kind=a.kind, severity=a.severity,
                          reason=a.reason, track=a.track, zone=a.zone, site=a.site,
                          group=a.group, time_to_breach_s=a.ttb, probability=a.probability,
                          lat_deg=lat, lon_deg=lon, height_m=h, by=by)


def _zone_name(zone: Zone) -> str:
    return f"{zone.name!r} ({zone.id})" if zone.name and zone.name != zone.id else repr(zone.id)


def _conditions(conds: dict[tuple[Any, ...], _Cond]) -> Conditions:
    """The oracle's conditions as the book's table."""
    rows = list(conds.items())

    def col(values: list[Any], dtype: Any) -> np.ndarray:
        return np.array(values, dtype=dtype).reshape(len(rows), *np.shape(values)[1:])

    def some(x: float | None) -> float:
        return math.nan if x is None else x

    return Conditions(
        family=col([FAMILIES.index(k[0]) for k, _ in rows], np.int64),
        subject=col([k[1] for k, _ in rows], np.int64),
        place=col([k[2] if len(k) > 2 else -1 for k, _ in rows], np.int64),
        kind=col([KINDS.index(c.kind) for _, c in rows], np.int64),
        severity=col([int(c.severity) for _, c in rows], np.int64),
        raise_now=col([c.raise_now for _, c in rows], bool),
        ttb=col([some(c.ttb) for _, c in rows], np.float64),
        probability=col([some(c.probability) for _, c in rows], np.float64),
        position=col([c.position for _, c in rows], np.float64).reshape(-1, 3),
        enu=col([c.enu or (math.nan,) * 3 for _, c in rows], np.float64).reshape(-1, 3),
        has_enu=col([c.enu is not None for _, c in rows], bool),
        words=((0, lambda k: rows[k][1].reason),))


def _keep(keys: set[tuple[Any, ...]]) -> np.ndarray:
    ks = sorted(keys, key=_sort_key)
    return alert_keys([FAMILIES.index(k[0]) for k in ks], [k[1] for k in ks],
                      [k[2] if len(k) > 2 else -1 for k in ks])


def _random_scans(seed: int, zones: int, sites: int) -> Iterator[tuple[Any, ...]]:
    """Scans of a small random world: (t, conditions, keep, gone, coasting, acks) where
    acks picks among the active alerts before the scan (fractions of their number)."""
    rng = np.random.default_rng(seed)
    t = T0
    next_id = 1
    where: dict[int, np.ndarray] = {}
    coasting: set[int] = set()
    for _ in range(int(rng.integers(5, 40))):
        t += float(rng.choice([0.5, 1.0, 1.0, 2.0, 3.0, 7.0, 12.0]))
        gone = [k for k in where if rng.random() < 0.08]
        for k in gone:
            del where[k]
            coasting.discard(k)
        for _ in range(int(rng.poisson(0.8))):
            # Born near a coasting track (a break) or anywhere.
            near = sorted(coasting)
            base = where[near[int(rng.integers(len(near)))]] if near and rng.random() < 0.7 \
                else rng.uniform(-500, 500, 3)
            where[next_id] = base + rng.normal(0, 60, 3)
            next_id += 1
        coasting = {k for k in where if rng.random() < 0.3}
        conds: dict[tuple[Any, ...], _Cond] = {}
        keep: set[tuple[Any, ...]] = set()
        for k, x in where.items():
            x += rng.normal(0, 5, 3)
            enu = tuple(float(v) for v in x)
            pos = (47.0 + enu[1] * 1e-5, 8.0 + enu[0] * 1e-5, 500.0 + enu[2])
            sev = Severity(int(rng.integers(1, 4)))
            for z in range(zones):
                u = rng.random()
                if u < 0.25:
                    conds[("zone", k, z)] = _Cond("zone_breach", sev, f"in {z} {u:.3f}", True,
                                                  track=k, zone=z, ttb=0.0,
                                                  probability=float(rng.random()),
                                                  position=pos, enu=enu)
                elif u < 0.5:
                    conds[("zone", k, z)] = _Cond(
                        "zone_breach_predicted", sev, f"to {z} {u:.3f}", bool(rng.random() < 0.6),
                        track=k, zone=z, ttb=None if rng.random() < 0.2 else float(
                            rng.uniform(0, 120)), probability=float(rng.random()),
                        position=pos, enu=enu)
                if rng.random() < 0.2:
                    keep.add(("zone", k, z))
            for s in range(sites):
                if rng.random() < 0.3:
                    conds[("site", k, s)] = _Cond(
                        "site_threat", sev, f"site {s}", bool(rng.random() < 0.7), track=k, site=s,
                        ttb=float(rng.uniform(0, 90)) if rng.random() < 0.8 else None,
                        probability=float(rng.random()), position=pos, enu=enu)
                if rng.random() < 0.2:
                    keep.add(("site", k, s))
            for kind in ("fast_low_flyer", "spoof_suspect", "dark_drone"):
                if rng.random() < 0.3:
                    conds[(kind, k)] = _Cond(kind, sev, f"{kind} {k}", True, track=k,
                                             position=pos, enu=enu)
        for g in range(1, 4):
            if rng.random() < 0.3:
                conds[("swarm", g)] = _Cond("swarm", Severity.WARNING, f"group {g}", True,
                                            group=g, position=(47.0, 8.0, float(g)))
            elif rng.random() < 0.3:
                keep.add(("swarm", g))
        acks = rng.random(int(rng.integers(0, 3))).tolist() if rng.random() < 0.3 else []
        yield t, conds, keep, gone, sorted(coasting), acks


def _as_row(a: Any) -> tuple[Any, ...]:
    return (a.id, a.key, a.kind, a.severity, a.reason, a.raised_t, a.seen_t, a.updated_t,
            a.track, a.zone, a.site, a.group, a.ttb, a.probability, a.position,
            a.acknowledged_by, a.acknowledged_t, a.expires_t, a.enu)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 2), st.integers(0, 1))
def test_the_book_gives_the_events_of_the_per_key_book(seed: int, zones: int, sites: int
                                                       ) -> None:
    zone_list = [square_zone("A", (-300, 300), (-300, 300)),
                 square_zone("B", (0, 600), (0, 600), restriction=Restriction.CONDITIONAL)]
    site = Site(id="S", name="plant", lon_deg=8.0, lat_deg=47.0, radius_m=300.0)
    cfg = AlertConfig(clear_after_s=5.0, update_interval_s=3.0, lost_alert_s=8.0,
                      raise_after_s={"swarm": 2.0, "fast_low_flyer": 2.0, "dark_drone": 4.0},
                      handover_m=100.0)
    oracle = _OracleBook(zone_list[:zones], [site][:sites], cfg)
    book = AlertBook(zone_list[:zones], [site][:sites], config=cfg)
    for t, conds, keep, gone, coasting, acks in _random_scans(seed, zones, sites):
        for u in acks:
            active = oracle.active()
            if active:
                a = active[int(u * len(active))]
                assert book.acknowledge(a.id, t=t - 0.1, by="op") == oracle.acknowledge(
                    a.id, t=t - 0.1, by="op")
        want = oracle.update(t, conds, keep, gone, coasting)
        got = book.update(t, _conditions(conds), _keep(keep), np.array(gone, np.int64),
                          np.array(coasting, np.int64))
        assert got == want
        assert [_as_row(a) for a in book.active()] == [_as_row(a) for a in oracle.active()]


# The watch finds a scan's evidence for all tracks at once. The oracle: the watch as it
# was, one hit and one track at a time, feeding the per-key book above.


class _OracleWatch:
    def __init__(self, zones: Sequence[Zone], sites: Sequence[Site], config: AlertConfig
                 ) -> None:
        self.monitor = ZoneMonitor(zones, ORIGIN, ground=FlatGround(ORIGIN.alt_m))
        self.sites = tuple(sites)
        self.book = _OracleBook(self.monitor.zones, self.sites, config)
        self._site_xy = self.monitor._plane(np.array([s.lat_deg for s in sites]),
                                            np.array([s.lon_deg for s in sites])) \
            if sites else np.empty((0, 2))

    def with_zones(self, zones: Sequence[Zone]) -> list[AlertEvent]:
        self.monitor = ZoneMonitor(zones, ORIGIN, ground=FlatGround(ORIGIN.alt_m))
        where = {z.id: i for i, z in enumerate(self.monitor.zones)}
        book = self.book
        events = []
        t = max((a.updated_t for a in book.alerts.values()), default=0.0)
        moved: dict[tuple[Any, ...], _Alert] = {}
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
        book.zones = self.monitor.zones
        return events

    def update(self, w: WatchInput) -> list[AlertEvent]:
        cfg = self.book.config
        n = w.id.shape[0]
        spoof = (w.flags & TrackFlag.SPOOF_SUSPECT) != 0
        hits = self.monitor.check(w.t, w.x, w.P, w.identity, spoof_suspect=spoof)
        lat, lon, h = ORIGIN.enu_to_geodetic(w.x[:, :3]) if n else (
            np.empty(0), np.empty(0), np.empty(0))
        conditions: dict[tuple[Any, ...], _Cond] = {}
        keep: set[tuple[Any, ...]] = set()

        def pos(i: int) -> tuple[float, float, float]:
            return (float(lat[i]), float(lon[i]), float(h[i]))

        def enu(i: int) -> tuple[float, float, float]:
            return (float(w.x[i, 0]), float(w.x[i, 1]), float(w.x[i, 2]))

        self._zone_conditions(w, hits, conditions, keep, pos, enu)
        if self.sites and n:
            self._site_conditions(w, conditions, keep, pos, enu)
        for g, count, c in zip(w.group_id.tolist(), w.group_count.tolist(),
                               w.group_centroid, strict=True):
            if count >= cfg.swarm_min_count:
                glat, glon, gh = ORIGIN.enu_to_geodetic(c)
                sev = Severity.CRITICAL if count >= 10 else Severity.WARNING
                conditions[("swarm", g)] = _Cond(
                    "swarm", sev, f"a group of {count} tracks flying together", True, group=g,
                    position=(float(glat), float(glon), float(gh)))
            elif count >= 2:
                keep.add(("swarm", g))
        speed = np.linalg.norm(w.x[:, 3:6], axis=1) if n else np.empty(0)
        height = h - ORIGIN.alt_m if n else np.empty(0)
        for i in np.flatnonzero(w.class_name == "fast_low_flyer").tolist():
            conditions[("fast_low_flyer", int(w.id[i]))] = _Cond(
                "fast_low_flyer", Severity.WARNING,
                f"fast low flyer: {speed[i]:.0f} m/s at {height[i]:.0f} m", True,
                track=int(w.id[i]), position=pos(i), enu=enu(i))
        for i in np.flatnonzero(spoof).tolist():
            who = str(w.identity[i]) or "a cooperative report"
            conditions[("spoof_suspect", int(w.id[i]))] = _Cond(
                "spoof_suspect", Severity.WARNING,
                f"{who} claims a position the sensors do not see", True, track=int(w.id[i]),
                position=pos(i), enu=enu(i))
        for i in np.flatnonzero((w.flags & TrackFlag.DARK) != 0).tolist():
            conditions[("dark_drone", int(w.id[i]))] = _Cond(
                "dark_drone", Severity.INFO, "a drone with no Remote ID or ADS-B identity", True,
                track=int(w.id[i]), position=pos(i), enu=enu(i))
        coasting = w.id[w.coasting].tolist() if w.coasting is not None else []
        return self.book.update(w.t, conditions, keep, w.deleted.tolist(), coasting)

    def _zone_conditions(self, w: WatchInput, hits: Any,
                         conditions: dict[tuple[Any, ...], _Cond], keep: set[tuple[Any, ...]],
                         pos: Any, enu: Any) -> None:
        cfg = self.book.config
        if len(hits) == 0:
            return
        zones = self.monitor.zones
        restriction = np.array([z.restriction != Restriction.NO_RESTRICTION for z in zones])
        hits = hits.take(restriction[hits.zone])
        if len(hits) == 0:  # (the one change: this crashed)
            return
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
                conditions[key] = _Cond(
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
                conditions[key] = _Cond(
                    "zone_breach_predicted", sev,
                    f"heading into {_zone_name(zone)} ({zone.restriction.value}) {when}, "
                    f"P {best_p[k]:.2f}", bool(raise_pred[k]), track=tid, zone=zi,
                    ttb=ttb if math.isfinite(ttb) else None, probability=float(best_p[k]),
                    position=pos(i), enu=enu(i))
            if near[k] or keep_pred[k]:
                keep.add(key)

    def _site_conditions(self, w: WatchInput, conditions: dict[tuple[Any, ...], _Cond],
                         keep: set[tuple[Any, ...]], pos: Any, enu: Any) -> None:
        cfg = self.book.config
        mcfg = self.monitor.config
        H = mcfg.horizon_s
        plane, table = self.monitor.heights(w.x[:, :3])
        var_now = 0.5 * (w.P[:, 0, 0] + w.P[:, 1, 1])
        var_h = 0.5 * (w.P[:, 0, 0] + w.P[:, 1, 1] + 2 * H * (w.P[:, 0, 3] + w.P[:, 1, 4])
                       + H**2 * (w.P[:, 3, 3] + w.P[:, 4, 4])) + (
            mcfg.accel_std_mps2 * H**2 / 2) ** 2
        hits = check_sites(self.sites, plane, w.x[:, 3:5], table[2], var_now, var_h, H,
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
            conditions[key] = _Cond(
                "site_threat", Severity.CRITICAL if hits.inside[k] or soon else Severity.WARNING,
                reason, bool(hits.inside[k] or p >= cfg.raise_probability), track=tid, site=si,
                ttb=ttr if math.isfinite(ttr) else None, probability=p, position=pos(i),
                enu=enu(i))


def _random_pictures(seed: int) -> Iterator[WatchInput]:
    """Pictures of drones about two zones and a site: flying in, out and along,
    hovering, coasting, breaking into new tracks, dying; flagged, classed, grouped."""
    rng = np.random.default_rng(seed)
    t = T0
    next_id = 1
    x: dict[int, np.ndarray] = {}
    for _ in range(int(rng.integers(5, 30))):
        t += float(rng.choice([0.5, 1.0, 1.0, 2.0, 4.0, 9.0]))
        deleted = [k for k in x if rng.random() < 0.06]
        for k in deleted:
            del x[k]
        for _ in range(int(rng.poisson(1.0))):
            parent = list(x)[int(rng.integers(len(x)))] if x and rng.random() < 0.5 else None
            s = x[parent].copy() if parent is not None else np.r_[
                rng.uniform(-1200, 1200, 2), rng.uniform(0, 250),
                rng.normal(0, 12, 3) * [1, 1, 0.1]]
            s[:3] += rng.normal(0, 40, 3) * [1, 1, 0.2]
            x[next_id] = s
            next_id += 1
        ids = np.array(sorted(x), dtype=np.int64)
        for k in ids.tolist():
            x[k][:3] += x[k][3:] * 1.0
            if rng.random() < 0.1:
                x[k][3:5] = rng.normal(0, 15, 2)
        n = ids.size
        state = np.array([x[k] for k in ids.tolist()]).reshape(n, 6)
        var = rng.uniform(4, 400, (n, 1)) * [1, 1, 1, 0.05, 0.05, 0.05]
        P = np.zeros((n, 6, 6))
        P[:, np.arange(6), np.arange(6)] = var
        flags = rng.choice([0, int(TrackFlag.DARK), int(TrackFlag.SPOOF_SUSPECT)], n,
                           p=[0.6, 0.3, 0.1]).astype(np.uint16)
        g = int(rng.integers(0, 3))
        yield WatchInput(
            t=t, id=ids, x=state, P=P,
            identity=rng.choice(["", "", "rid:A1", "icao:3c"], n).astype(np.str_),
            flags=flags,
            class_name=rng.choice(["unknown", "drone_multirotor", "fast_low_flyer"], n,
                                  p=[0.5, 0.4, 0.1]).astype(np.str_),
            group=np.full(n, -1, np.int64), group_id=np.arange(1, g + 1, dtype=np.int64),
            group_count=rng.integers(1, 14, g).astype(np.int64),
            group_centroid=rng.uniform(-500, 500, (g, 3)),
            deleted=np.array(deleted, np.int64), coasting=rng.random(n) < 0.25)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_the_watch_gives_the_events_of_the_per_track_watch(seed: int) -> None:
    zones = [square_zone("A", (-300, 300), (-300, 300)),
             square_zone("B", (0, 700), (100, 900), restriction=Restriction.CONDITIONAL),
             square_zone("N", (-900, -400), (-900, 900), restriction=Restriction.NO_RESTRICTION)]
    lat, lon, _ = ORIGIN.enu_to_geodetic(np.array([-600.0, -700.0, 0.0]))
    sites = [Site(id="S", name="plant", lon_deg=float(lon), lat_deg=float(lat), radius_m=250.0)]
    cfg = AlertConfig(clear_after_s=6.0, update_interval_s=3.0, lost_alert_s=10.0,
                      handover_m=120.0)
    oracle = _OracleWatch(zones, sites, cfg)
    watch = Watch(ORIGIN, zones, sites, ground=FlatGround(ORIGIN.alt_m), config=cfg)
    for k, w in enumerate(_random_pictures(seed)):
        if k == 12:
            # Zones change: B goes, A moves to a new place in the list.
            watch, got = watch.with_zones([zones[2], zones[0]])
            assert got == oracle.with_zones([zones[2], zones[0]])
        assert watch.update(w) == oracle.update(w)
        assert [_as_row(a) for a in watch.book.active()] == \
            [_as_row(a) for a in oracle.book.active()]
