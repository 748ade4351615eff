"""The SQLite store: round trips of every table, track history thinned to 1 Hz and its
queries, the alert life cycle, retention by age and by size, readers beside the
writer, a full queue, failures that the writer outlives, and files it refuses."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from skyfence.alerts import ALERT_EVENT_SCHEMA, AlertEvent, Severity
from skyfence.errors import SkyfenceError
from skyfence.store import (
    ALERT_SCHEMA,
    AUDIT_SCHEMA,
    SENSOR_STATUS_SCHEMA,
    TRACK_HISTORY_SCHEMA,
    ZONE_LIST_SCHEMA,
    Retention,
    SqliteStore,
    StoreConfig,
    StoreError,
)
from skyfence.store import sqlite as store_sqlite
from skyfence.zones.model import (
    Applicability,
    Circle,
    DailyPeriod,
    HeightReference,
    Limit,
    Polygon,
    Restriction,
    Volume,
    Zone,
    ZoneError,
)
from skyfence.zones.sites import Site

T0 = 1.75e9
AGL, AMSL = HeightReference.AGL, HeightReference.AMSL
KEEP_ALL = Retention(max_age_s=None, max_bytes=None)
RING = ((8.0, 47.0), (8.1, 47.0), (8.1, 47.1), (8.0, 47.1), (8.0, 47.0))
HOLE = ((8.04, 47.04), (8.06, 47.04), (8.06, 47.06), (8.04, 47.04))

ZONES = (
    Zone(id="ZRH", name="Zurich centre", restriction=Restriction.PROHIBITED,
         volumes=(Volume(Polygon((RING, HOLE)), Limit(0.0, AGL), Limit(120.0, AGL)),
                  Volume(Circle(8.5, 47.4, 2500.0), Limit(-np.inf, AMSL),
                         Limit(np.inf, AMSL))),
         applicability=(Applicability(start_t=T0, end_t=T0 + 86_400.5,
                                      daily=(DailyPeriod(frozenset({0, 1, 2, 3, 4}),
                                                         8 * 3600.0, 18 * 3600.0),),
                                      timezone="Europe/Zurich"),),
         exempt=frozenset({"icao:4840D6", "rid:MFG1A0123456789"}), authority="FOCA",
         reason=("SECURITY",), message="keep out", extra={"ref": [1, 2], "note": "x"}),
    Zone(id="BRN", name="Bern", restriction=Restriction.AUTHORISATION_REQUIRED,
         volumes=(Volume(Circle(7.44, 46.95, 800.0), Limit(0.0, AGL), Limit(150.0, AGL)),)),
)
SITES = (Site(id="HQ", name="Headquarters", lon_deg=8.55, lat_deg=47.37, radius_m=300.0),
         Site(id="D", name="Depot", lon_deg=8.6, lat_deg=47.3, radius_m=150.0, ceiling_m=80.0))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "node.db", retention=KEEP_ALL,
                     config=StoreConfig(retention_interval_s=None)) as s:
        yield s


def _tracks(store: SqliteStore, t: float, ids: Any, *, lat: Any = None, lon: Any = None,
            flags: Any = None) -> None:
    ids = np.asarray(ids, dtype=np.int64)
    n = ids.shape[0]
    lat = np.full(n, 47.0) if lat is None else np.asarray(lat, dtype=float)
    lon = np.full(n, 8.0) if lon is None else np.asarray(lon, dtype=float)
    store.record_tracks(t, ids, lat, lon, np.full(n, 500.0), np.full(n, 10.0),
                        np.full(n, -2.0), np.full(n, 0.5), np.full(n, "drone_multirotor"),
                        ["dark|rf_emitter"] * n if flags is None else flags,
                        np.array([f"rid:{i}" for i in ids.tolist()]))


def _event(t: float, event: str, alert: int = 1, **kw: Any) -> AlertEvent:
    base: dict[str, Any] = {"kind": "zone_breach_predicted", "severity": Severity.WARNING,
                            "reason": "heading into 'ZRH' in 30 s", "track": 7, "zone": "ZRH",
                            "lat_deg": 47.05, "lon_deg": 8.05, "height_m": 520.0}
    base.update(kw)
    return AlertEvent(t=t, event=event, alert=alert, **base)


# --------------------------------------------------------------------------- round trips


def test_zones_round_trip_through_geojson(store: SqliteStore) -> None:
    store.put_zones(ZONES, source="zones.geojson (geojson)")
    store.flush()
    assert store.zone_ids() == ["BRN", "ZRH"]
    back = {z.id: z for z in store.zones()}
    for z in ZONES:
        assert back[z.id] == replace(z, source="zones.geojson (geojson)")
        assert back[z.id].extra == z.extra
    listed = {r["id"]: r for r in store.zone_list()}
    assert list(listed["ZRH"]) == list(ZONE_LIST_SCHEMA.names)
    # The box holds the polygon and the circle, 2.5 km around (8.5, 47.4).
    assert listed["ZRH"]["lon_min_deg"] == 8.0 and listed["ZRH"]["lat_min_deg"] == 47.0
    assert 8.53 < listed["ZRH"]["lon_max_deg"] < 8.54
    assert [r["id"] for r in store.zone_list(bbox=(7.0, 46.0, 7.5, 47.0))] == ["BRN"]


def test_zones_put_delete_and_replace(store: SqliteStore) -> None:
    store.put_zones(ZONES, source="a")
    store.put_zones([replace(ZONES[1], name="Bern (new)")], source="b")
    store.flush()
    assert {z.id: (z.name, z.source) for z in store.zones()} == {
        "ZRH": ("Zurich centre", "a"), "BRN": ("Bern (new)", "b")}
    assert store.delete_zone("ZRH") is True  # synchronous: gone on return
    assert store.zone_ids() == ["BRN"]
    assert store.delete_zone("ZRH") is False
    store.put_zones([ZONES[0]], source="c", replace=True)
    store.flush()
    assert store.zone_ids() == ["ZRH"]
    with pytest.raises(ZoneError, match="no volume"):
        store.put_zones([replace(ZONES[0], id="EMPTY", volumes=())], source="x")


def test_sites_round_trip(store: SqliteStore) -> None:
    store.put_sites(SITES)
    store.flush()
    assert store.sites() == sorted(SITES, key=lambda s: s.id)
    assert store.delete_site("HQ") is True
    assert store.delete_site("HQ") is False
    store.put_sites([replace(SITES[0], radius_m=500.0)], source="api", replace=True)
    store.flush()
    assert store.sites() == [replace(SITES[0], radius_m=500.0)]


def test_sensor_status_keeps_the_latest_per_sensor(store: SqliteStore) -> None:
    store.record_sensor_status("radar", T0 + 10, "up", {"detections": 12})
    store.record_sensor_status("radar", T0 + 5, "down", {"why": "late report"})
    store.record_sensor_status("rf", T0 + 7, "waiting", {})
    store.flush()
    rows = store.sensor_status()
    assert [tuple(r) for r in rows] == [SENSOR_STATUS_SCHEMA.names] * 2
    assert rows == [{"sensor": "radar", "t": T0 + 10, "status": "up",
                     "detail": {"detections": 12}},
                    {"sensor": "rf", "t": T0 + 7, "status": "waiting", "detail": {}}]
    with pytest.raises(StoreError, match="not JSON"):
        store.record_sensor_status("rf", T0, "up", {"x": object()})


def test_audit_log_newest_first(store: SqliteStore) -> None:
    store.audit(T0 + 1, "alice", "zones.import", {"file": "z.geojson", "zones": 3})
    store.audit(T0 + 2, "bob", "alert.ack", {"alert": 4})
    store.audit(T0 + 3, "alice", "zone.delete", {"zone": "ZRH"})
    store.flush()
    log = store.audit_log()
    assert [tuple(r) for r in log] == [AUDIT_SCHEMA.names] * 3
    assert [r["action"] for r in log] == ["zone.delete", "alert.ack", "zones.import"]
    assert log[1] == {"t": T0 + 2, "who": "bob", "action": "alert.ack", "detail": {"alert": 4}}
    assert [r["t"] for r in store.audit_log(since_t=T0 + 2, limit=1)] == [T0 + 3]


# --------------------------------------------------------------------------- alerts


def test_alert_life_cycle_sets_the_alert_states(store: SqliteStore) -> None:
    def state() -> dict[str, Any]:
        store.flush()
        row = store.alert(1)
        assert row is not None
        return row

    store.record_alert_event(_event(T0, "raised", time_to_breach_s=30.0, probability=0.6))
    a = state()
    assert list(a) == list(ALERT_SCHEMA.names)
    assert (a["state"], a["kind"], a["severity"], a["raised_t"], a["updated_t"]) == (
        "raised", "zone_breach_predicted", "warning", T0, T0)
    assert (a["track"], a["zone"], a["time_to_breach_s"], a["probability"]) == (7, "ZRH",
                                                                                30.0, 0.6)
    store.record_alert_event(_event(T0 + 5, "updated", kind="zone_breach",
                                    severity=Severity.CRITICAL, reason="inside 'ZRH'",
                                    time_to_breach_s=0.0, lat_deg=47.06))
    a = state()
    assert (a["state"], a["kind"], a["severity"], a["reason"], a["lat_deg"]) == (
        "raised", "zone_breach", "critical", "inside 'ZRH'", 47.06)
    store.record_alert_event(_event(T0 + 10, "acknowledged", kind="zone_breach",
                                    severity=Severity.CRITICAL, by="alice"))
    a = state()
    assert (a["state"], a["acknowledged_by"], a["acknowledged_t"]) == ("acknowledged",
                                                                       "alice", T0 + 10)
    # A later update keeps the acknowledgement.
    store.record_alert_event(_event(T0 + 12, "updated", kind="zone_breach",
                                    severity=Severity.CRITICAL, track=9))
    a = state()
    assert (a["state"], a["track"], a["updated_t"]) == ("acknowledged", 9, T0 + 12)
    store.record_alert_event(_event(T0 + 40, "cleared", kind="zone_breach",
                                    severity=Severity.CRITICAL,
                                    reason="inside 'ZRH'; cleared: track lost"))
    a = state()
    assert (a["state"], a["cleared_t"], a["raised_t"], a["acknowledged_by"]) == (
        "cleared", T0 + 40, T0, "alice")
    assert a["reason"].endswith("cleared: track lost")

    history = store.alert_history(1)
    assert [h["event"] for h in history] == ["raised", "updated", "acknowledged", "updated",
                                             "cleared"]
    assert all(list(h) == [f[0] for f in ALERT_EVENT_SCHEMA] for h in history)
    ack = history[2]
    assert (ack["by"], ack["t"]) == ("alice", T0 + 10)
    assert history[0] == _event(T0, "raised", time_to_breach_s=30.0,
                                probability=0.6).to_json()
    assert store.alert_history(99) == []
    assert store.alert(99) is None


def test_alert_queries(store: SqliteStore) -> None:
    store.record_alert_event(_event(T0, "raised", alert=1))
    store.record_alert_event(_event(T0 + 1, "raised", alert=2, kind="swarm", track=None,
                                    zone=None, group=4))
    store.record_alert_event(_event(T0 + 2, "raised", alert=3, kind="dark_drone",
                                    severity=Severity.INFO))
    store.record_alert_event(_event(T0 + 3, "cleared", alert=1))
    store.flush()
    assert [a["alert"] for a in store.alerts()] == [1, 3, 2]  # latest event first
    assert [a["alert"] for a in store.alerts(active_only=True)] == [3, 2]
    assert [a["alert"] for a in store.alerts(kind="swarm")] == [2]
    assert store.alerts(kind="swarm")[0]["group"] == 4
    assert [a["alert"] for a in store.alerts(since_t=T0 + 2)] == [1, 3]
    assert [a["alert"] for a in store.alerts(limit=1)] == [1]
    with pytest.raises(StoreError, match="not an alert event"):
        store.record_alert_event(_event(T0, "escalated"))


# --------------------------------------------------------------------------- track history


def test_history_is_thinned_to_1_hz_vectorised(store: SqliteStore) -> None:
    """1,000 tracks at 10 Hz for 3 s: one row a second each; tracks that start late
    keep their own phase."""
    ids = np.arange(1000, dtype=np.int64)
    for k in range(30):
        live = ids if k >= 5 else ids[:500]  # half the tracks appear at 0.5 s
        _tracks(store, T0 + k / 10, live)
    store.flush()
    assert store.stats().written == 500 * 3 + 500 * 3
    times = [r["t"] - T0 for r in store.track_history(3)]
    assert times == pytest.approx([0.0, 1.0, 2.0])
    times = [r["t"] - T0 for r in store.track_history(700)]
    assert times == pytest.approx([0.5, 1.5, 2.5])
    t_min, t_max = store.history_range() or (0.0, 0.0)
    assert t_min == T0 and t_max == pytest.approx(T0 + 2.5)


def test_record_tracks_rate_for_10000_tracks(tmp_path: Path) -> None:
    """10,000 live tracks at 1 Hz: the rows/s the caller's side takes and the rows/s
    the writer commits (with the R*Tree), printed; the writer must hold 10,000 rows/s
    and a call must cost the engine little."""
    n, seconds = 10_000, 8
    rng = np.random.default_rng(1)
    ids = rng.choice(10**9, n, replace=False).astype(np.int64)
    lat, lon = 47.0 + rng.random(n) * 0.5, 8.0 + rng.random(n) * 0.5
    rest = (np.full(n, 120.0), rng.normal(size=n), rng.normal(size=n), rng.normal(size=n),
            np.full(n, "drone_multirotor"), np.full(n, "dark"),
            np.array([f"rid:{i}" for i in range(n)]))
    with SqliteStore(tmp_path / "rate.db", retention=KEEP_ALL,
                     config=StoreConfig(retention_interval_s=None)) as s:
        call_s = skip_s = 0.0
        start = time.perf_counter()
        for k in range(seconds):
            c = time.perf_counter()
            s.record_tracks(T0 + k, ids, lat + k * 1e-4, lon, *rest)
            call_s += time.perf_counter() - c
            c = time.perf_counter()
            s.record_tracks(T0 + k + 0.5, ids, lat, lon, *rest)  # not due: thinned out
            skip_s += time.perf_counter() - c
        s.flush()
        total_s = time.perf_counter() - start
        st = s.stats()
    rows = n * seconds
    assert (st.written, st.dropped, st.errors) == (rows, 0, 0)
    print(f"\nrecord_tracks, {n:,} tracks at 1 Hz: caller {rows / call_s:,.0f} rows/s "
          f"({call_s / seconds * 1e3:.1f} ms a call; {skip_s / seconds * 1e3:.2f} ms when "
          f"none is due), committed {rows / total_s:,.0f} rows/s, "
          f"{st.db_bytes / rows:.0f} bytes a row")
    assert rows / total_s > 10_000
    assert call_s / seconds < 0.1


@pytest.mark.parametrize("area_index", [True, False])
def test_history_queries_by_time_area_and_id(tmp_path: Path, area_index: bool) -> None:
    cfg = StoreConfig(retention_interval_s=None, area_index=area_index)
    with SqliteStore(tmp_path / "h.db", retention=KEEP_ALL, config=cfg) as s:
        assert s._rtree is area_index
        # Track 1 flies east along 47.0 N from 8.0 E; track 2 sits at 8.5 E; track 3
        # stops at t = 4 s.
        for k in range(10):
            ids = [1, 2, 3] if k <= 4 else [1, 2]
            _tracks(s, T0 + k, ids, lat=[47.0, 47.2, 46.0][:len(ids)],
                    lon=[8.0 + 0.01 * k, 8.5, 7.0][:len(ids)])
        s.flush()
        h = s.track_history(1, since_t=T0 + 2, until_t=T0 + 4)
        assert [r["t"] for r in h] == [T0 + 2, T0 + 3, T0 + 4]
        assert list(h[0]) == list(TRACK_HISTORY_SCHEMA.names)
        assert h[0] == {"t": T0 + 2, "track": 1, "lat_deg": 47.0, "lon_deg": 8.02,
                        "height_m": 500.0, "v_east_mps": 10.0, "v_north_mps": -2.0,
                        "v_up_mps": 0.5, "class_name": "drone_multirotor",
                        "flags": "dark|rf_emitter", "identity": "rid:1", "group": None}
        assert len(s.track_history(1)) == 10 and s.track_history(42) == []

        at = s.tracks_at(T0 + 6.5, window_s=1.0)
        assert [(r["track"], r["t"]) for r in at] == [(1, T0 + 6), (2, T0 + 6)]
        assert [r["track"] for r in s.tracks_at(T0 + 4.2)] == [1, 2, 3]
        assert s.tracks_at(T0 + 30) == []
        east = s.tracks_at(T0 + 6, bbox=(8.0, 46.9, 8.1, 47.1))
        assert [(r["track"], r["lon_deg"]) for r in east] == [(1, 8.06)]

        area = s.history_in_area((8.025, 46.9, 8.055, 47.1))
        assert [(r["track"], r["t"]) for r in area] == [(1, T0 + 3), (1, T0 + 4), (1, T0 + 5)]
        area = s.history_in_area((6.5, 45.0, 9.0, 48.0), since_t=T0 + 4, until_t=T0 + 5)
        assert [(r["track"], r["t"]) for r in area] == [(1, T0 + 4), (2, T0 + 4), (3, T0 + 4),
                                                        (1, T0 + 5), (2, T0 + 5)]
        # Across the antimeridian: nothing there, and no error.
        assert s.history_in_area((179.0, 46.0, -179.0, 48.0)) == []
        with pytest.raises(StoreError, match="not a box"):
            s.history_in_area((8.0, 48.0, 9.0, 47.0))
        assert s.history_range() == (T0, T0 + 9)


def test_record_tracks_checks_its_arrays(store: SqliteStore) -> None:
    with pytest.raises(StoreError, match="lon_deg has 2 values for 3 track ids"):
        store.record_tracks(T0, np.arange(3), np.zeros(3), np.zeros(2), np.zeros(3),
                            np.zeros(3), np.zeros(3), np.zeros(3), ["a"] * 3, [""] * 3,
                            [""] * 3)
    # Flags as lists of names, identities missing, NaN positions: stored as they come.
    store.record_tracks(T0, np.array([5]), np.array([np.nan]), np.array([np.nan]),
                        np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1),
                        np.array(["bird"]), [["dark", "spoof_suspect"]], [None])
    store.flush()
    (row,) = store.track_history(5)
    assert (row["lat_deg"], row["flags"], row["identity"]) == (None, "dark|spoof_suspect",
                                                                None)


# --------------------------------------------------------------------------- retention


def test_retention_by_age_keeps_active_alerts(tmp_path: Path) -> None:
    cfg = StoreConfig(retention_interval_s=None, retention_chunk_rows=100)
    with SqliteStore(tmp_path / "r.db", retention=Retention(max_age_s=50.0, max_bytes=None),
                     config=cfg) as s:
        for k in range(100):
            _tracks(s, T0 + k, np.arange(10))
        s.record_alert_event(_event(T0 + 1, "raised", alert=1))
        s.record_alert_event(_event(T0 + 2, "cleared", alert=1))
        s.record_alert_event(_event(T0 + 1, "raised", alert=2))  # still active
        s.record_alert_event(_event(T0 + 3, "raised", alert=3))
        s.record_alert_event(_event(T0 + 60, "cleared", alert=3))  # cleared recently
        s.flush()
        result = s.apply_retention(T0 + 99)
        assert (result.track_rows, result.alerts) == (490, 1)
        assert s.history_range() == (T0 + 49, T0 + 99)
        assert [a["alert"] for a in s.alerts()] == [3, 2]
        assert [e["event"] for e in s.alert_history(3)] == ["raised", "cleared"]
        assert s.alert_history(1) == []
        assert s.stats().errors == 0


def test_retention_by_size_deletes_the_oldest_history(tmp_path: Path) -> None:
    limit = 1 << 20
    cfg = StoreConfig(retention_interval_s=None)
    with SqliteStore(tmp_path / "s.db", retention=Retention(max_age_s=None, max_bytes=limit),
                     config=cfg) as s:
        ids = np.arange(100)
        for k in range(300):
            _tracks(s, T0 + k, ids, lat=47.0 + ids * 1e-3 + k * 1e-5)
        s.record_alert_event(_event(T0, "raised"))
        s.audit(T0, "alice", "test", {})
        s.flush()
        before = s.stats().db_bytes
        assert before > 3 * limit
        result = s.apply_retention(T0 + 300)
        after = s.stats().db_bytes
        assert after <= limit and result.db_bytes == after
        t_min, t_max = s.history_range() or (0.0, 0.0)
        assert t_max == T0 + 299 and t_min > T0 + 100
        # Whole seconds went, oldest first: every track keeps the same newest points.
        assert result.track_rows == 100 * round(t_min - T0)
        assert len(s.track_history(0)) == 300 - round(t_min - T0)
        assert len(s.history_in_area((7.0, 46.0, 9.0, 48.0), limit=10**6)) == (
            100 * (300 - round(t_min - T0)))
        assert s.alerts() and s.audit_log()


def test_retention_runs_on_its_own_by_the_data_time(tmp_path: Path) -> None:
    cfg = StoreConfig(retention_interval_s=0.05)
    with SqliteStore(tmp_path / "p.db", retention=Retention(max_age_s=10.0, max_bytes=None),
                     config=cfg) as s:
        for k in range(31):
            _tracks(s, T0 + k, np.arange(5))
        s.flush()
        deadline = time.monotonic() + 5.0
        while (s.history_range() or (0.0, 0.0))[0] < T0 + 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert s.history_range() == (T0 + 20, T0 + 30)


# --------------------------------------------------------------------------- concurrency


def test_readers_in_other_threads_while_writing(store: SqliteStore) -> None:
    failures: list[BaseException] = []
    stop = threading.Event()
    reads = [0]

    def read() -> None:
        try:
            while not stop.is_set():
                store.tracks_at(T0 + 1, window_s=5.0)
                store.track_history(3)
                store.alerts(active_only=True)
                store.history_range()
                store.stats()
                reads[0] += 1
        except BaseException as err:
            failures.append(err)

    readers = [threading.Thread(target=read) for _ in range(4)]
    for r in readers:
        r.start()
    ids = np.arange(1000)
    for k in range(60):
        _tracks(store, T0 + k * 0.1, ids)
        if k % 10 == 0:
            store.record_alert_event(_event(T0 + k * 0.1, "raised", alert=k))
        time.sleep(0.005)
    store.flush()
    stop.set()
    for r in readers:
        r.join()
    assert failures == []
    assert reads[0] > 4
    assert store.stats().errors == 0
    assert len(store.alerts()) == 6


def test_a_full_queue_drops_track_rows_but_not_alert_events(tmp_path: Path) -> None:
    cfg = StoreConfig(queue_size=8, track_queue_fraction=0.5, put_timeout_s=0.6,
                      history_interval_s=0.0, retention_interval_s=None)
    with SqliteStore(tmp_path / "q.db", retention=KEEP_ALL, config=cfg) as s:
        gate, holding = threading.Event(), threading.Event()

        def hold(con: sqlite3.Connection) -> None:
            holding.set()
            gate.wait(10.0)

        blocker = threading.Thread(target=s._call, args=(hold,))
        blocker.start()
        assert holding.wait(5.0)  # the writer is stuck; the queue fills
        ids = np.arange(50)
        for k in range(10):
            _tracks(s, T0 + k, ids)
        assert s.stats().dropped == 6 * 50  # 4 items fit under the track limit
        for a in range(1, 5):
            s.record_alert_event(_event(T0, "raised", alert=a))
        with pytest.raises(SkyfenceError, match=r"queue stayed full for 0\.6 s"):
            s.record_alert_event(_event(T0, "raised", alert=99))
        threading.Timer(0.05, gate.set).start()
        s.record_alert_event(_event(T0, "raised", alert=5))  # waits for room, then goes in
        s.flush()
        blocker.join()
        assert sorted(a["alert"] for a in s.alerts()) == [1, 2, 3, 4, 5]
        st = s.stats()
        assert (st.written, st.dropped, st.errors) == (4 * 50 + 5, 6 * 50, 0)
        # The thinning did not count the dropped rows as written: they come at once.
        _tracks(s, T0 + 10, ids)
        s.flush()
        assert len(s.track_history(0)) == 5


def test_a_failing_write_is_counted_and_the_writer_goes_on(
        store: SqliteStore, caplog: pytest.LogCaptureFixture) -> None:
    """A full disk, played by a page limit: the write fails, is logged and counted;
    once there is room again, writes go on."""
    store.flush()
    store._call(lambda con: con.execute(
        "PRAGMA max_page_count = " + str(con.execute("PRAGMA page_count").fetchone()[0])))
    _tracks(store, T0, np.arange(5000))
    store.flush()
    assert store.stats().errors == 1
    assert "could not store track history (5000 rows)" in caplog.text
    assert "database or disk is full" in caplog.text
    with pytest.raises(StoreError, match="full"):  # a caller who waits is told
        store._call(lambda con: con.execute("INSERT INTO audit (t, who, action, detail) "
                                            "VALUES (0, 'x', 'y', '" + "z" * 10_000 + "')"))
    assert store.stats().errors == 2
    store._call(lambda con: con.execute("PRAGMA max_page_count = 1000000000"))
    store.record_alert_event(_event(T0 + 1, "raised", alert=2))
    _tracks(store, T0 + 1, np.arange(5000))
    store.flush()
    assert store._thread.is_alive()
    assert [a["alert"] for a in store.alerts()] == [2]
    assert len(store.tracks_at(T0 + 1)) == 5000


# --------------------------------------------------------------------------- the file


def test_close_commits_pending_writes_and_reopening_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    # Batches that would wait 30 s: close() must not lose them.
    cfg = StoreConfig(batch_interval_s=30.0, batch_items=10**9, retention_interval_s=None)
    s = SqliteStore(path, retention=KEEP_ALL, config=cfg)
    s.put_zones(ZONES, source="configuration")
    s.put_sites(SITES)
    _tracks(s, T0, np.arange(10))
    s.record_alert_event(_event(T0, "raised"))
    s.record_sensor_status("radar", T0, "up", {})
    s.audit(T0, "alice", "start", {"version": 1})
    start = time.perf_counter()
    s.close()
    assert time.perf_counter() - start < 5.0
    s.close()  # twice is fine
    with pytest.raises(StoreError, match="closed"):
        s.zones()
    with pytest.raises(StoreError, match="closed"):
        s.audit(T0, "x", "y", {})

    with SqliteStore(path, retention=KEEP_ALL, config=cfg) as again:
        assert again.run == s.run + 1
        assert again.zone_ids() == ["BRN", "ZRH"]
        assert again.sites() == sorted(SITES, key=lambda x: x.id)
        assert len(again.tracks_at(T0)) == 10
        assert again.sensor_status()[0]["status"] == "up"
        assert again.audit_log()[0]["detail"] == {"version": 1}
        # The alert's node stopped: kept, no longer active; a new run's alert 1 is
        # another alert.
        assert [a["alert"] for a in again.alerts()] == [1]
        assert again.alerts(active_only=True) == []
        again.record_alert_event(_event(T0 + 100, "raised", reason="a new one"))
        again.flush()
        assert [(a["run"], a["alert"]) for a in again.alerts()] == [(again.run, 1), (s.run, 1)]
        assert again.alert_history(1)[0]["reason"] == "a new one"
        assert again.alert_history(1, run=s.run)[0]["reason"] == _event(T0, "raised").reason
        # A replayed journal writes no point twice.
        _tracks(again, T0, np.arange(10))
        again.flush()
        assert len(again.track_history(3)) == 1


def test_files_it_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database\n" * 200)
    with pytest.raises(StoreError) as err:
        SqliteStore(junk)
    assert str(junk) in str(err.value) and "move it aside" in str(err.value)
    assert isinstance(err.value, SkyfenceError)

    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE customers (name TEXT)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match=r"not a skyfence store.*give another path"):
        SqliteStore(other)

    newer = tmp_path / "newer.db"
    SqliteStore(newer).close()
    con = sqlite3.connect(newer)
    con.execute("INSERT INTO schema_version VALUES (99, 0)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="schema version 99"):
        SqliteStore(newer)

    with pytest.raises(StoreError, match="temporary file"):
        SqliteStore(":memory:")
    with pytest.raises(StoreError, match="is a directory"):
        SqliteStore(tmp_path)
    with pytest.raises(StoreError, match="does not exist"):
        SqliteStore(tmp_path / "nowhere" / "node.db")

    made = tmp_path / "rtree.db"
    SqliteStore(made).close()
    monkeypatch.setattr(store_sqlite, "_rtree_available", lambda: False)
    with pytest.raises(StoreError, match="R\\*Tree"):
        SqliteStore(made)
    # Without the module a new store falls back to a lat/lon index.
    with SqliteStore(tmp_path / "plain.db") as plain:
        assert plain._rtree is False


def test_schema_version_table(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    SqliteStore(path).close()
    con = sqlite3.connect(path)
    try:
        # Every migration step, in order, from a new store.
        assert con.execute("SELECT version FROM schema_version ORDER BY version").fetchall(
            ) == [(v,) for v in range(1, store_sqlite.SCHEMA_VERSION + 1)]
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    finally:
        con.close()


def test_history_keeps_each_track_s_swarm(store: SqliteStore) -> None:
    ids = np.array([1, 2, 3], dtype=np.int64)
    n = 3
    store.record_tracks(T0, ids, np.full(n, 47.0), np.full(n, 8.0), np.full(n, 500.0),
                        np.zeros(n), np.zeros(n), np.zeros(n), np.full(n, "drone_multirotor"),
                        [""] * n, np.full(n, ""), group=np.array([4, 4, -1]))
    _tracks(store, T0 + 1, ids)  # no group given: none
    store.flush()
    assert {r["track"]: r["group"] for r in store.tracks_at(T0)} == {1: 4, 2: 4, 3: None}
    assert {r["group"] for r in store.tracks_at(T0 + 1)} == {None}
    assert [r["group"] for r in store.track_history(2)] == [4, None]
    with pytest.raises(StoreError, match="group has 2 values for 3"):
        store.record_tracks(T0 + 2, ids, *(np.zeros(n),) * 6, np.full(n, "bird"), [""] * n,
                            np.full(n, ""), group=np.array([1, 2]))


def test_a_version_1_store_is_migrated_with_its_history(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    con = sqlite3.connect(path)
    store_sqlite._migrate_1(con, False)
    con.execute("INSERT INTO schema_version VALUES (1, 0)")
    con.execute("INSERT INTO track_history (track, t, lat_deg, lon_deg) VALUES (9, ?, 47, 8)",
                (T0,))
    con.commit()
    con.close()
    with SqliteStore(path, retention=KEEP_ALL) as s:
        assert [(r["track"], r["group"]) for r in s.tracks_at(T0)] == [(9, None)]
        _tracks(s, T0 + 1, [9])
        s.flush()
        assert len(s.track_history(9)) == 2
    con = sqlite3.connect(path)
    try:
        assert con.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 2
    finally:
        con.close()


def test_alert_events_at_gives_the_alerts_as_they_stood(store: SqliteStore) -> None:
    store.record_alert_event(_event(T0, "raised", alert=1))
    store.record_alert_event(_event(T0 + 2, "raised", alert=2, kind="dark_drone"))
    store.record_alert_event(_event(T0 + 4, "acknowledged", alert=1, by="alice"))
    store.record_alert_event(_event(T0 + 6, "cleared", alert=2, kind="dark_drone"))
    store.record_alert_event(_event(T0 + 8, "updated", alert=1, severity=Severity.CRITICAL))
    store.flush()

    def at(t: float) -> list[tuple[int, str]]:
        return [(e["alert"], e["event"]) for e in store.alert_events_at(t)]

    assert at(T0 - 1) == []
    assert at(T0 + 1) == [(1, "raised")]
    assert at(T0 + 3) == [(1, "raised"), (2, "raised")]
    assert at(T0 + 5) == [(1, "raised"), (2, "raised"), (1, "acknowledged")]
    # Alert 2 was cleared at T0 + 6: from then on it is not in the picture.
    assert at(T0 + 7) == [(1, "raised"), (1, "acknowledged")]
    assert at(T0 + 9) == [(1, "raised"), (1, "acknowledged"), (1, "updated")]
    assert store.alert_events_at(T0 + 9)[-1]["severity"] == "critical"
    # Only the events of the look-back span are read: an alert silent for longer is
    # not found, an older one with recent events is found with those.
    assert store.alert_events_at(T0 + 9, lookback_s=0.5) == []
    assert [e["event"] for e in store.alert_events_at(T0 + 9, lookback_s=2.0)] == ["updated"]


def test_trails_are_each_tracks_points_in_the_span(store: SqliteStore) -> None:
    for k in range(6):
        _tracks(store, T0 + k, [1, 2], lon=[8.0 + 0.01 * k, 9.0])
    _tracks(store, T0 + 6, [3])
    store.flush()
    trails = store.trails([1, 3, 9], since_t=T0 + 2, until_t=T0 + 4)
    assert sorted(trails) == [1, 3, 9]
    assert [p[0] for p in trails[1]] == [T0 + 2, T0 + 3, T0 + 4]
    assert trails[1][0][1] == pytest.approx(8.02)
    assert trails[3] == [] and trails[9] == []
    assert store.trails([], since_t=T0, until_t=T0 + 9) == {}
