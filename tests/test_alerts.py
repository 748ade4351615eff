"""The alert book and the watch: a drone flying into a zone is warned of early and
breached at once; one that loiters on the boundary raises one alert; the life cycle,
the other kinds, and the event schema."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from skyfence.alerts import (
    ALERT_EVENT_SCHEMA,
    AlertConfig,
    AlertEvent,
    JsonLinesSink,
    Severity,
    Watch,
    WatchInput,
    watch_input,
)
from skyfence.errors import SkyfenceError
from skyfence.types import TrackFlag
from skyfence.zones.monitor import FlatGround
from skyfence.zones.sites import Site
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
