"""SQLite storage for a node: one writer thread fed by a bounded queue, readers on
connections of their own.

Every write method puts an item on the queue and returns at once (the engine never
waits on disk); the writer thread owns the only write connection, takes items in
batches and commits each batch as one transaction (``batch_items`` rows or
``batch_interval_s``, whichever comes first). When the queue is nearly full, track
history is dropped and counted; alert events, zones, sites, sensor status and audit
entries wait for room up to ``put_timeout_s`` and then raise, so that none is lost
silently. A write that fails (a full disk) is logged and counted and the writer goes
on. Readers use a connection per thread (``threading.local``); in WAL mode they see
the last commit and neither block the writer nor wait for it.

Times are float seconds since the Unix epoch (UTC), the data's time unless said
otherwise; positions WGS84 degrees, heights metres above the ellipsoid, velocities
ENU m/s.

Alert ids restart with each run of a node, so the store keys alerts by ``run`` (a
number it gives each opening of the file) and alert id; queries by alert id take
the latest run unless told.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from functools import partial
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import numpy as np
from numpy.typing import NDArray

from skyfence.errors import InputError
from skyfence.types import Field, Schema
from skyfence.zones.geojson import parse_geojson, to_geojson
from skyfence.zones.model import Circle, Zone
from skyfence.zones.sites import Site

if TYPE_CHECKING:
    from skyfence.alerts import AlertEvent

log = logging.getLogger("skyfence.store")

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
#: Text per track: an array of str (or object), or a list; an item that is itself a
#: list of names (flags) is stored joined by "|".
Texts: TypeAlias = NDArray[Any] | Sequence[Any]
BBox: TypeAlias = tuple[float, float, float, float]
_S = TypeVar("_S", bound=np.generic)

SCHEMA_VERSION = 2
_EARTH_RADIUS_M = 6_371_008.8
_EVENTS = ("raised", "updated", "acknowledged", "cleared")
#: history_in_area reads spans up to this long by time, longer ones by area (s).
_TIME_FIRST_S = 60.0


class StoreError(InputError):
    """A problem with the store: its file, what went wrong and the fix."""


# --------------------------------------------------------------------------- config


@dataclass(frozen=True, slots=True, kw_only=True)
class Retention:
    """How much the store keeps. ``max_age_s``: track history and the alerts cleared
    longer ago than this go (by the data's time); ``max_bytes``: over this, the oldest
    track history goes until the file is under it. None: no limit."""

    max_age_s: float | None = 7 * 86_400.0
    max_bytes: int | None = 2**30

    def __post_init__(self) -> None:
        if self.max_age_s is not None and not self.max_age_s > 0.0:
            raise StoreError(f"max_age_s must be positive, not {self.max_age_s!r}",
                             field="max_age_s", fix="give seconds, or None to keep everything")
        if self.max_bytes is not None and not self.max_bytes > 0:
            raise StoreError(f"max_bytes must be positive, not {self.max_bytes!r}",
                             field="max_bytes", fix="give bytes, or None for no limit")


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreConfig:
    #: Items the write queue holds (one call of a write method is one item).
    queue_size: int = 1024
    #: Track history is dropped once the queue is this full, so that alert events and
    #: the other writes that must not be lost find room without waiting.
    track_queue_fraction: float = 0.9
    #: A transaction is committed after this many rows ...
    batch_items: int = 20_000
    #: ... or this long after its first item (s).
    batch_interval_s: float = 0.2
    #: How long a write that must not be lost waits for room in a full queue (s).
    put_timeout_s: float = 5.0
    #: Track history is kept at most once per this interval per track (s).
    history_interval_s: float = 1.0
    #: The writer applies retention this often (s); None: only apply_retention().
    retention_interval_s: float | None = 60.0
    #: Rows deleted per retention step; the writer takes queued writes between steps.
    retention_chunk_rows: int = 50_000
    #: How long a connection waits for a lock held by another (s).
    busy_timeout_s: float = 5.0
    #: An R*Tree over track history positions for area queries (when SQLite has one).
    area_index: bool = True

    def __post_init__(self) -> None:
        for name in ("queue_size", "batch_items", "retention_chunk_rows"):
            if getattr(self, name) < 1:
                raise StoreError(f"{name} must be at least 1", field=name)
        for name in ("batch_interval_s", "put_timeout_s", "busy_timeout_s"):
            if not getattr(self, name) >= 0.0:
                raise StoreError(f"{name} must not be negative", field=name)
        if not 0.0 < self.track_queue_fraction <= 1.0:
            raise StoreError("track_queue_fraction must be in (0, 1]",
                             field="track_queue_fraction")
        if not self.history_interval_s >= 0.0:
            raise StoreError("history_interval_s must not be negative",
                             field="history_interval_s")
        if self.retention_interval_s is not None and not self.retention_interval_s > 0.0:
            raise StoreError("retention_interval_s must be positive (None: never)",
                             field="retention_interval_s")


@dataclass(frozen=True, slots=True)
class StoreStats:
    #: Items waiting in the write queue.
    queued: int
    #: Rows committed since the store was opened.
    written: int
    #: Track history rows dropped because the queue was full.
    dropped: int
    #: Writes that failed (logged); their rows are lost.
    errors: int
    #: Size of the database, page_count × page_size (the WAL file aside).
    db_bytes: int


@dataclass(frozen=True, slots=True)
class RetentionResult:
    track_rows: int  # track history rows deleted
    alerts: int  # alerts deleted with their events
    db_bytes: int  # size after


# --------------------------------------------------------------------------- schemas

#: Rows of track_history(), tracks_at() and history_in_area().
TRACK_HISTORY_SCHEMA = Schema("track_history", (
    Field("t", "float64", "s", "time of the picture, Unix epoch UTC"),
    Field("track", "int64", "", "track id"),
    Field("lat_deg", "float64", "deg", "WGS84 latitude (None: unknown)"),
    Field("lon_deg", "float64", "deg", "WGS84 longitude"),
    Field("height_m", "float64", "m", "height above the WGS84 ellipsoid"),
    Field("v_east_mps", "float64", "m/s", "ENU east rate"),
    Field("v_north_mps", "float64", "m/s", "ENU north rate"),
    Field("v_up_mps", "float64", "m/s", "ENU up rate"),
    Field("class_name", "str", "", "the track's class"),
    Field("flags", "str", "", "flag names joined by '|'"),
    Field("identity", "str", "", "icao:… / rid:… or empty"),
    Field("group", "int64", "", "the swarm (group id) the track was in, None if none"),
))

#: Rows of alerts() and alert(): one per alert, its latest state.
ALERT_SCHEMA = Schema("alerts", (
    Field("run", "int64", "", "the opening of the store the alert was raised in"),
    Field("alert", "int64", "", "alert id (unique within a run)"),
    Field("kind", "str", "", "the latest kind (skyfence.alerts.KINDS)"),
    Field("severity", "str", "", "info | warning | critical"),
    Field("state", "str", "", "raised | acknowledged | cleared"),
    Field("track", "int64", "", "track id or None"),
    Field("zone", "str", "", "zone identifier or None"),
    Field("site", "str", "", "defended site id or None"),
    Field("group", "int64", "", "group (swarm) id or None"),
    Field("raised_t", "float64", "s", "raised (None: raised before the store saw it)"),
    Field("updated_t", "float64", "s", "time of the latest event"),
    Field("cleared_t", "float64", "s", "cleared, or None"),
    Field("acknowledged_by", "str", "", "who acknowledged it last, or None"),
    Field("acknowledged_t", "float64", "s", "when, or None"),
    Field("reason", "str", "", "the latest reason"),
    Field("time_to_breach_s", "float64", "s", "latest time to breach, or None"),
    Field("probability", "float64", "", "latest probability, or None"),
    Field("lat_deg", "float64", "deg", "the latest position, WGS84"),
    Field("lon_deg", "float64", "deg", ""),
    Field("height_m", "float64", "m", "above the WGS84 ellipsoid"),
))

#: Rows of sensor_status(): the latest report of each sensor.
SENSOR_STATUS_SCHEMA = Schema("sensor_status", (
    Field("sensor", "str", "", "sensor id"),
    Field("t", "float64", "s", "time of the report"),
    Field("status", "str", "", "as the reporter put it (waiting, up, down, …)"),
    Field("detail", "object", "", "a JSON object"),
))

#: Rows of audit_log().
AUDIT_SCHEMA = Schema("audit", (
    Field("t", "float64", "s", "when"),
    Field("who", "str", "", "the operator or component"),
    Field("action", "str", "", "what was done"),
    Field("detail", "object", "", "a JSON object"),
))

#: Rows of zone_list(): the zones without their geometry.
ZONE_LIST_SCHEMA = Schema("zones", (
    Field("id", "str", "", "zone identifier"),
    Field("name", "str", "", ""),
    Field("restriction", "str", "", "skyfence.zones.Restriction value"),
    Field("lon_min_deg", "float64", "deg", "bounding box of the zone's volumes"),
    Field("lat_min_deg", "float64", "deg", ""),
    Field("lon_max_deg", "float64", "deg", ""),
    Field("lat_max_deg", "float64", "deg", ""),
    Field("source", "str", "", "where the zone came from"),
    Field("stored_t", "float64", "s", "when it was stored (wall clock)"),
))

def _columns(names: Sequence[str], prefix: str = "") -> str:
    """Column names for SQL, ``group`` (a keyword) quoted, each after ``prefix``."""
    return ", ".join(prefix + ('"group"' if n == "group" else n) for n in names)


_HISTORY_COLUMNS = _columns(TRACK_HISTORY_SCHEMA.names)
_ALERT_COLUMNS = _columns(ALERT_SCHEMA.names)


# --------------------------------------------------------------------------- schema

_SCHEMA_V1 = (
    "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_t REAL NOT NULL)",
    "CREATE TABLE runs (run INTEGER PRIMARY KEY, opened_t REAL NOT NULL, closed_t REAL)",
    """CREATE TABLE zones (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, restriction TEXT NOT NULL,
        lon_min_deg REAL NOT NULL, lat_min_deg REAL NOT NULL,
        lon_max_deg REAL NOT NULL, lat_max_deg REAL NOT NULL,
        source TEXT NOT NULL, stored_t REAL NOT NULL, geojson TEXT NOT NULL)""",
    """CREATE TABLE sites (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, lon_deg REAL NOT NULL,
        lat_deg REAL NOT NULL, radius_m REAL NOT NULL, ceiling_m REAL NOT NULL,
        source TEXT NOT NULL, stored_t REAL NOT NULL)""",
    """CREATE TABLE alerts (
        run INTEGER NOT NULL REFERENCES runs (run), alert INTEGER NOT NULL,
        kind TEXT NOT NULL, severity TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('raised', 'acknowledged', 'cleared')),
        track INTEGER, zone TEXT, site TEXT, "group" INTEGER,
        raised_t REAL, updated_t REAL NOT NULL, cleared_t REAL,
        acknowledged_by TEXT, acknowledged_t REAL, reason TEXT NOT NULL,
        time_to_breach_s REAL, probability REAL, lat_deg REAL, lon_deg REAL, height_m REAL,
        PRIMARY KEY (run, alert))""",
    "CREATE INDEX alerts_updated ON alerts (updated_t)",
    "CREATE INDEX alerts_alert ON alerts (alert, run)",
    """CREATE TABLE alert_events (
        seq INTEGER PRIMARY KEY, run INTEGER NOT NULL, alert INTEGER NOT NULL,
        t REAL NOT NULL, event TEXT NOT NULL, kind TEXT NOT NULL, severity TEXT NOT NULL,
        track INTEGER, zone TEXT, site TEXT, "by" TEXT, json TEXT NOT NULL,
        FOREIGN KEY (run, alert) REFERENCES alerts (run, alert) ON DELETE CASCADE)""",
    "CREATE INDEX alert_events_alert ON alert_events (run, alert, seq)",
    "CREATE INDEX alert_events_t ON alert_events (t)",
    """CREATE TABLE track_history (
        id INTEGER PRIMARY KEY, track INTEGER NOT NULL, t REAL NOT NULL,
        lat_deg REAL, lon_deg REAL, height_m REAL,
        v_east_mps REAL, v_north_mps REAL, v_up_mps REAL,
        class_name TEXT, flags TEXT, identity TEXT)""",
    # Unique: a journal replayed into the same store does not write a point twice.
    "CREATE UNIQUE INDEX track_history_track_t ON track_history (track, t)",
    "CREATE INDEX track_history_t ON track_history (t)",
    """CREATE TABLE sensor_status (
        sensor TEXT PRIMARY KEY, t REAL NOT NULL, status TEXT NOT NULL,
        detail TEXT NOT NULL)""",
    """CREATE TABLE audit (
        seq INTEGER PRIMARY KEY, t REAL NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL,
        detail TEXT NOT NULL)""",
    "CREATE INDEX audit_t ON audit (t)",
)
# float32 boxes, rounded outwards by SQLite: a coarse filter before the exact one.
_RTREE = ("CREATE VIRTUAL TABLE track_rtree USING rtree "
          "(id, lon_min_deg, lon_max_deg, lat_min_deg, lat_max_deg)")
_LATLON_INDEX = "CREATE INDEX track_history_lat_lon ON track_history (lat_deg, lon_deg)"


def _migrate_1(con: sqlite3.Connection, rtree: bool) -> None:
    for sql in _SCHEMA_V1:
        con.execute(sql)
    con.execute(_RTREE if rtree else _LATLON_INDEX)


def _migrate_2(con: sqlite3.Connection, rtree: bool) -> None:
    # Each stored point keeps its swarm, so that a replayed moment shows the swarms.
    con.execute('ALTER TABLE track_history ADD COLUMN "group" INTEGER')


#: Forward migrations: _MIGRATIONS[k] takes a store from version k to k + 1.
_MIGRATIONS: tuple[Callable[[sqlite3.Connection, bool], None], ...] = (_migrate_1, _migrate_2)


def _rtree_available() -> bool:
    """Whether this Python's SQLite has the R*Tree module."""
    con = sqlite3.connect(":memory:")
    try:
        con.execute("CREATE VIRTUAL TABLE probe USING rtree (id, a, b)")
        return True
    except sqlite3.Error:
        return False
    finally:
        con.close()


# --------------------------------------------------------------------------- queue items


@dataclass(slots=True)
class _Item:
    """One write: ``apply`` runs in the writer's transaction; ``waiter`` gets its result
    after the commit. ``job``: a retention run instead (between transactions)."""

    what: str
    apply: Callable[[sqlite3.Connection], Any] | None = None
    rows: int = 1
    waiter: Future[Any] | None = None
    #: The data's time (tracks, alert events): the periodic retention's present.
    data_t: float | None = None
    job: Callable[[sqlite3.Connection], Generator[None, None, RetentionResult]] | None = None


_STOP = _Item("stop")


@dataclass(slots=True)
class _Job:
    steps: Generator[None, None, RetentionResult]
    waiter: Future[Any] | None


class _ReadConnection:
    """A reader's connection, closed when its thread ends."""

    __slots__ = ("con",)

    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con

    def __del__(self) -> None:
        # Closing from another thread raises; the connection then closes as it is freed.
        with contextlib.suppress(Exception):
            self.con.close()


class _Thinning:
    """The time of each track's last history row, as sorted arrays: which tracks of a
    picture are due a row, vectorised."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.ids: I64 = np.empty(0, dtype=np.int64)
        self.t: F64 = np.empty(0, dtype=np.float64)
        # The tracker lists its tracks in the same order scan after scan: the last
        # lookup serves again while the ids are the same.
        self._seen: I64 | None = None
        self._pos: I64 = np.empty(0, dtype=np.int64)
        self._found: NDArray[np.bool_] = np.empty(0, dtype=bool)

    def due(self, t: float, ids: I64) -> NDArray[np.bool_]:
        pos, found = self._lookup(ids)
        last = np.where(found, self.t[pos], -np.inf) if self.t.size else np.full(
            ids.shape[0], -np.inf)
        # A microsecond of slack: 10 Hz times summed in floating point land a hair short
        # of the whole second. Time going back means a replay: start again.
        return (t - last >= self.interval_s - 1e-6) | (t < last)

    def mark(self, t: float, ids: I64, sel: I64) -> None:
        """Rows of ``ids[sel]`` were written at ``t``."""
        pos, found = self._lookup(ids)
        hit = found[sel]
        self.t[pos[sel[hit]]] = t
        new = ids[sel[~hit]]
        if new.size:
            # Entries a whole interval old mean no more than absent ones: drop them here.
            keep = t - self.t < self.interval_s
            all_ids = np.concatenate([self.ids[keep], np.unique(new)])
            all_t = np.concatenate([self.t[keep], np.full(all_ids.size - int(keep.sum()), t)])
            order = np.argsort(all_ids, kind="stable")
            self.ids, self.t = all_ids[order], all_t[order]
            self._seen = None

    def _lookup(self, ids: I64) -> tuple[I64, NDArray[np.bool_]]:
        seen = self._seen
        if seen is not None and seen.shape == ids.shape and np.array_equal(seen, ids):
            return self._pos, self._found
        if self.ids.size == 0:
            pos = np.zeros(ids.shape[0], dtype=np.int64)
            found = np.zeros(ids.shape[0], dtype=bool)
        else:
            pos = np.minimum(np.searchsorted(self.ids, ids), self.ids.size - 1)
            found = self.ids[pos] == ids
        self._seen, self._pos, self._found = ids.copy(), pos, found
        return pos, found


class _Throttle:
    """Log a repeated failure at most every ``every_s``, with the count in between."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s = every_s
        self.last = -math.inf
        self.quiet = 0

    def error(self, msg: str, *args: object) -> None:
        now = time.monotonic()
        if now - self.last < self.every_s:
            self.quiet += 1
            return
        if self.quiet:
            msg += f" ({self.quiet} more failures not logged)"
        log.error(msg, *args)
        self.last, self.quiet = now, 0


# --------------------------------------------------------------------------- the store


class SqliteStore:
    """The node's storage in one SQLite file (created when missing).

    ``path`` must be a file: readers open their own connections to it, so
    ``":memory:"`` cannot work. Close it (or use ``with``): pending writes are
    committed then.
    """

    def __init__(self, path: str | Path, *, retention: Retention | None = None,
                 config: StoreConfig | None = None) -> None:
        if str(path) in ("", ":memory:") or str(path).startswith("file:"):
            raise StoreError(f"{str(path)!r} is not a file path", file=str(path),
                             fix="give a file path: readers open their own connections, "
                                 "so an in-memory database cannot be shared (use a "
                                 "temporary file in tests)")
        self.path = Path(path)
        self.retention = retention if retention is not None else Retention()
        self.config = config if config is not None else StoreConfig()
        self._name = str(self.path)
        if self.path.is_dir():
            raise StoreError("is a directory", file=self._name,
                             fix="give the path of a file, e.g. skyfence.db inside it")
        if not self.path.parent.is_dir():
            raise StoreError("the directory does not exist", file=self._name,
                             fix=f"create {self.path.parent} or give another path")
        cfg = self.config
        self._q: queue.Queue[_Item] = queue.Queue(cfg.queue_size)
        self._track_limit = max(1, int(cfg.queue_size * cfg.track_queue_fraction))
        self._local = threading.local()
        self._uri = self.path.resolve().as_uri() + "?mode=ro"
        self._count_lock = threading.Lock()
        self._written = self._dropped = self._errors = 0
        self._closed = False
        self._close_lock = threading.Lock()
        self._thin_lock = threading.Lock()
        self._thinning = _Thinning(cfg.history_interval_s)
        self._throttle = _Throttle()
        self._data_t: float | None = None
        self._jobs: deque[_Job] = deque()
        self.run = 0
        self._rtree = False
        self._ready = threading.Event()
        self._open_error: list[BaseException] = []
        self._thread = threading.Thread(target=self._writer, name="skyfence-store-writer",
                                        daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._open_error:
            self._thread.join()
            self._closed = True
            raise self._open_error[0]

    # ------------------------------------------------------------------ life

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, timeout_s: float = 60.0) -> None:
        """Commit everything queued, stop the writer, close this thread's reader."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        if self._thread.is_alive():
            try:
                self._q.put(_STOP, timeout=timeout_s)
            except queue.Full:
                log.error("%s: the writer did not take the stop within %g s", self._name,
                          timeout_s)
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.error("%s: the writer did not stop within %g s; writes still queued "
                          "may be lost", self._name, timeout_s)
        self._fail_leftovers()
        self._close_reader()

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until everything queued before this call is committed (or has failed)."""
        fut: Future[Any] = Future()
        self._put(_Item("flush", apply=_nothing, rows=0, waiter=fut), must_keep=True,
                  timeout_s=timeout_s)
        try:
            fut.result(timeout=timeout_s)
        except FutureTimeout:
            raise StoreError(f"the writes queued were not all committed within {timeout_s:g} s",
                             file=self._name, fix="the disk is slow or the writer is "
                             "stuck: see the log of skyfence.store") from None

    def stats(self) -> StoreStats:
        with self._count_lock:
            written, dropped, errors = self._written, self._dropped, self._errors
        if self._closed:
            db_bytes = self.path.stat().st_size if self.path.exists() else 0
        else:
            con = self._reader()
            db_bytes = (con.execute("PRAGMA page_count").fetchone()[0]
                        * con.execute("PRAGMA page_size").fetchone()[0])
        return StoreStats(queued=self._q.qsize(), written=written, dropped=dropped,
                          errors=errors, db_bytes=int(db_bytes))

    # ------------------------------------------------------------------ zones and sites

    def put_zones(self, zones: Sequence[Zone], *, source: str, replace: bool = False) -> None:
        """Store zones (by id, replacing those stored before). ``source``: where they
        came from (a file and its format, a feed), given back as ``Zone.source``.
        ``replace``: the stored zones become exactly these."""
        now = time.time()
        rows = []
        for z in zones:
            doc = to_geojson([z])  # a zone it cannot write raises its ZoneError here
            try:
                text = json.dumps(doc, separators=(",", ":"), allow_nan=False)
            except (TypeError, ValueError) as err:
                raise StoreError(f"zone {z.id!r} cannot be written as JSON: {err}",
                                 field="extra", fix="keep only JSON values in Zone.extra"
                                 ) from err
            rows.append((z.id, z.name, z.restriction.value, *_zone_bbox(z), source, now, text))
        self._put(_Item(f"{len(rows)} zone(s)", partial(_write_zones, rows=rows,
                                                          replace=replace), len(rows)),
                  must_keep=True)

    def delete_zone(self, zone_id: str) -> bool:
        """Delete a zone now (waits for the commit); whether it was stored."""
        return bool(self._call(partial(_delete, table="zones", key=zone_id),
                               what=f"delete zone {zone_id!r}"))

    def zones(self) -> list[Zone]:
        """The stored zones, by id."""
        out: list[Zone] = []
        for zid, source, text in self._reader().execute(
                "SELECT id, source, geojson FROM zones ORDER BY id"):
            zones, problems = parse_geojson(json.loads(text), file=None)
            if problems or len(zones) != 1:
                raise StoreError(f"zone {zid!r} as stored no longer reads: "
                                 f"{'; '.join(map(str, problems))}", file=self._name,
                                 field="zones", fix="delete it (delete_zone) and load it "
                                 "again from its source")
            out.append(replace(zones[0], source=source))
        return out

    def zone_ids(self) -> list[str]:
        return [r[0] for r in self._reader().execute("SELECT id FROM zones ORDER BY id")]

    def zone_list(self, *, bbox: BBox | None = None) -> list[dict[str, Any]]:
        """The zones without their geometry (ZONE_LIST_SCHEMA), by id; ``bbox``
        (lon_min, lat_min, lon_max, lat_max) degrees: those whose box meets it."""
        where, params = "", list[float]()
        if bbox is not None:
            lon0, lat0, lon1, lat1 = _check_bbox(bbox)
            where = "WHERE lat_max_deg >= ? AND lat_min_deg <= ?"
            params = [lat0, lat1]
            if lon0 <= lon1:
                where += " AND lon_max_deg >= ? AND lon_min_deg <= ?"
            else:
                where += " AND (lon_max_deg >= ? OR lon_min_deg <= ?)"
            params += [lon0, lon1]
        return self._query(f"SELECT {', '.join(ZONE_LIST_SCHEMA.names)} FROM zones {where} "
                           "ORDER BY id", params)

    def put_sites(self, sites: Sequence[Site], *, source: str = "",
                  replace: bool = False) -> None:
        """Store defended sites (by id); ``replace``: the stored sites become these."""
        now = time.time()
        rows = [(s.id, s.name, s.lon_deg, s.lat_deg, s.radius_m, s.ceiling_m, source, now)
                for s in sites]
        self._put(_Item(f"{len(rows)} site(s)", partial(_write_sites, rows=rows,
                                                          replace=replace), len(rows)),
                  must_keep=True)

    def delete_site(self, site_id: str) -> bool:
        return bool(self._call(partial(_delete, table="sites", key=site_id),
                               what=f"delete site {site_id!r}"))

    def sites(self) -> list[Site]:
        return [Site(id=r[0], name=r[1], lon_deg=r[2], lat_deg=r[3], radius_m=r[4],
                     ceiling_m=r[5]) for r in self._reader().execute(
            "SELECT id, name, lon_deg, lat_deg, radius_m, ceiling_m FROM sites ORDER BY id")]

    # ------------------------------------------------------------------ alerts

    def record_alert_event(self, event: AlertEvent) -> None:
        """Keep an alert event and bring its alert's row up to date."""
        if event.event not in _EVENTS:
            raise StoreError(f"{event.event!r} is not an alert event", field="event",
                             fix=f"use one of {', '.join(_EVENTS)}")
        self._put(_Item(f"alert {event.alert} {event.event}",
                        partial(_write_alert, event=event, run=self.run), data_t=event.t),
                  must_keep=True)

    def alerts(self, *, active_only: bool = False, since_t: float | None = None,
               kind: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Alerts (ALERT_SCHEMA), the latest event first. ``active_only``: not cleared
        and raised in this run (a node that stopped took its alerts with it);
        ``since_t``: whose latest event is at or after it."""
        where: list[str] = ["1"]
        params: list[Any] = []
        if active_only:
            where.append("state != 'cleared' AND run = ?")
            params.append(self.run)
        if since_t is not None:
            where.append("updated_t >= ?")
            params.append(since_t)
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        params.append(limit)
        return self._query(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE {' AND '.join(where)} "
                           "ORDER BY updated_t DESC, run DESC, alert DESC LIMIT ?", params)

    def alert(self, alert_id: int, *, run: int | None = None) -> dict[str, Any] | None:
        """One alert (ALERT_SCHEMA) of ``run`` (None: the latest run that has it)."""
        rows = self._query(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE alert = ? "
                           "AND (? IS NULL OR run = ?) ORDER BY run DESC LIMIT 1",
                           (alert_id, run, run))
        return rows[0] if rows else None

    def alert_history(self, alert_id: int, *, run: int | None = None) -> list[dict[str, Any]]:
        """Every event of an alert in order, as written (ALERT_EVENT_SCHEMA): raised,
        updates, acknowledgements (``by`` and ``t``: who and when), cleared."""
        if run is None:
            row = self._reader().execute("SELECT max(run) FROM alerts WHERE alert = ?",
                                         (alert_id,)).fetchone()
            if row[0] is None:
                return []
            run = int(row[0])
        return [json.loads(r[0]) for r in self._reader().execute(
            "SELECT json FROM alert_events WHERE run = ? AND alert = ? ORDER BY seq",
            (run, alert_id))]

    def alert_events_at(self, t: float, *, lookback_s: float = 86_400.0,
                        limit: int = 10_000) -> list[dict[str, Any]]:
        """The alerts as they stood at ``t`` (the replay timeline), as their events
        (ALERT_EVENT_SCHEMA) in order: every event up to ``t`` of each alert whose
        latest event then was not its clearing. Folding them event by event, as a live
        client folds the stream, gives each alert's state at ``t``, acknowledgements
        included. Only the events of the ``lookback_s`` before ``t`` are read (by
        time): an alert silent for longer is not found, an older one with recent events
        is found with those (an active alert is updated as its track moves)."""
        rows = self._query(
            "SELECT e.json FROM alert_events e JOIN ("
            "  SELECT run, alert, max(seq) AS last FROM alert_events INDEXED BY alert_events_t"
            "  WHERE t >= ? AND t <= ? GROUP BY run, alert) l"
            " ON e.run = l.run AND e.alert = l.alert AND e.seq <= l.last"
            " WHERE (SELECT event FROM alert_events WHERE seq = l.last) != 'cleared'"
            " AND e.t >= ? ORDER BY e.seq LIMIT ?",
            (t - lookback_s, t, t - lookback_s, limit))
        return [json.loads(r["json"]) for r in rows]

    # ------------------------------------------------------------------ track history

    def record_tracks(self, t: float, ids: I64, lat_deg: F64, lon_deg: F64, height_m: F64,
                      v_east_mps: F64, v_north_mps: F64, v_up_mps: F64, class_name: Texts,
                      flags: Texts, identity: Texts, group: I64 | None = None) -> None:
        """Keep the picture at ``t``: aligned arrays over n tracks, ``ids`` (n,) int64,
        positions WGS84 degrees and metres above the ellipsoid, velocities ENU m/s,
        ``group`` (n,) the swarm of each (negative: none). Thinned to one row per
        ``history_interval_s`` per track; dropped (and counted) when the queue is nearly
        full."""
        if not math.isfinite(t):
            raise StoreError(f"the time {t!r} is not finite", field="t")
        ids = np.asarray(ids, dtype=np.int64)
        n = ids.shape[0]
        cols = [np.asarray(c, dtype=np.float64) for c in
                (lat_deg, lon_deg, height_m, v_east_mps, v_north_mps, v_up_mps)]
        names = ("lat_deg", "lon_deg", "height_m", "v_east_mps", "v_north_mps", "v_up_mps",
                 "class_name", "flags", "identity")
        groups = (np.full(n, -1, dtype=np.int64) if group is None
                  else np.asarray(group, dtype=np.int64))
        for name, c in zip((*names, "group"), (*cols, class_name, flags, identity, groups),
                           strict=True):
            if len(c) != n:
                raise StoreError(f"{name} has {len(c)} values for {n} track ids", field=name,
                                 fix="give aligned arrays, one value per track")
        with self._thin_lock:
            sel = np.flatnonzero(self._thinning.due(t, ids))
            if sel.size == 0:
                return
            texts = [_pick(x, sel) for x in (class_name, flags, identity)]
            item = _Item(f"track history ({sel.size} rows)",
                         partial(_write_tracks, t=float(t), ids=_take(ids, sel),
                                 cols=[_take(c, sel) for c in cols], texts=texts,
                                 groups=_take(groups, sel), rtree=self._rtree),
                         rows=int(sel.size), data_t=float(t))
            # Rows dropped for a full queue stay due: they go at the next call.
            if self._put(item, must_keep=False):
                self._thinning.mark(t, ids, sel)

    def track_history(self, track_id: int, *, since_t: float | None = None,
                      until_t: float | None = None) -> list[dict[str, Any]]:
        """One track's stored points (TRACK_HISTORY_SCHEMA) in time order."""
        return self._query(
            f"SELECT {_HISTORY_COLUMNS} FROM track_history WHERE track = ? AND t >= ? "
            "AND t <= ? ORDER BY t",
            (track_id, -math.inf if since_t is None else since_t,
             math.inf if until_t is None else until_t))

    def tracks_at(self, t: float, *, window_s: float = 1.0,
                  bbox: BBox | None = None) -> list[dict[str, Any]]:
        """The picture as stored at ``t`` (the replay timeline): the last point of each
        track within [t − window_s, t], by track; ``bbox`` (lon_min, lat_min, lon_max,
        lat_max) degrees keeps those whose point lies in it."""
        area, params = _area_condition(bbox)
        # SQLite takes the other columns from the row that has max(t).
        inner = (f"SELECT max(t) AS t, {_HISTORY_COLUMNS.removeprefix('t, ')} FROM "
                 "track_history INDEXED BY track_history_t WHERE t >= ? AND t <= ? "
                 "GROUP BY track")
        return self._query(f"SELECT {_HISTORY_COLUMNS} FROM ({inner}) WHERE {area} "
                           "ORDER BY track", (t - window_s, t, *params))

    def trails(self, ids: Sequence[int], *, since_t: float, until_t: float,
               limit: int = 200_000) -> dict[int, list[tuple[float, float, float]]]:
        """Each track's stored (t, lon, lat) points in [since_t, until_t], oldest first:
        the trails the replay timeline draws behind the picture of ``tracks_at``."""
        out: dict[int, list[tuple[float, float, float]]] = {int(i): [] for i in ids}
        if not out:
            return out
        # Read by time (the span is short), then kept for the tracks asked about.
        for r in self._query(
                "SELECT track, t, lon_deg, lat_deg FROM track_history INDEXED BY "
                "track_history_t WHERE t >= ? AND t <= ? ORDER BY t LIMIT ?",
                (since_t, until_t, limit)):
            points = out.get(r["track"])
            if points is not None and r["lon_deg"] is not None and r["lat_deg"] is not None:
                points.append((r["t"], r["lon_deg"], r["lat_deg"]))
        return out

    def history_in_area(self, bbox: BBox, *, since_t: float | None = None,
                        until_t: float | None = None, limit: int = 100_000
                        ) -> list[dict[str, Any]]:
        """Stored points inside ``bbox`` (lon_min, lat_min, lon_max, lat_max) degrees
        between the times, in time order (at most ``limit``)."""
        when, times = [], []
        if since_t is not None:
            when.append("h.t >= ?")
            times.append(since_t)
        if until_t is not None:
            when.append("h.t <= ?")
            times.append(until_t)
        # A short span is best read by time; anything longer by the R*Tree (CROSS JOIN
        # keeps SQLite from going by time all the same).
        by_time = (since_t is not None and until_t is not None
                   and until_t - since_t <= _TIME_FIRST_S)
        out: list[dict[str, Any]] = []
        for box in _split_bbox(_check_bbox(bbox)):
            area, params = _area_condition(box, prefix="h.")
            cond = " AND ".join([area, *when])
            columns = _columns(TRACK_HISTORY_SCHEMA.names, prefix="h.")
            if self._rtree and not by_time:
                sql = (f"SELECT {columns} FROM track_rtree r CROSS JOIN track_history h "
                       "ON h.id = r.id WHERE r.lon_max_deg >= ? AND r.lon_min_deg <= ? "
                       f"AND r.lat_max_deg >= ? AND r.lat_min_deg <= ? AND {cond} "
                       "ORDER BY h.t, h.track LIMIT ?")
                args = [box[0], box[2], box[1], box[3], *params, *times, limit]
            else:
                sql = (f"SELECT {columns} FROM track_history h WHERE {cond} "
                       "ORDER BY h.t, h.track LIMIT ?")
                args = [*params, *times, limit]
            out.extend(self._query(sql, args))
        out.sort(key=lambda r: (r["t"], r["track"]))
        return out[:limit]

    def history_range(self) -> tuple[float, float] | None:
        """(t_min, t_max) of the stored track history; None when there is none."""
        # Two subqueries: SQLite reads a lone min() or max() off the index.
        row = self._reader().execute("SELECT (SELECT min(t) FROM track_history), "
                                     "(SELECT max(t) FROM track_history)").fetchone()
        return None if row[0] is None else (float(row[0]), float(row[1]))

    # ------------------------------------------------------------------ sensors, audit

    def record_sensor_status(self, sensor_id: str, t: float, status: str,
                             detail: Mapping[str, Any]) -> None:
        """A sensor's status at ``t``; the latest per sensor is kept."""
        text = self._json(detail, "detail")
        self._put(_Item(f"sensor {sensor_id} status", partial(
            _write_sensor_status, row=(str(sensor_id), t, status, text))),
                  must_keep=True)

    def sensor_status(self) -> list[dict[str, Any]]:
        """The latest report of each sensor (SENSOR_STATUS_SCHEMA), by sensor."""
        rows = self._query("SELECT sensor, t, status, detail FROM sensor_status "
                           "ORDER BY sensor", ())
        for r in rows:
            r["detail"] = json.loads(r["detail"])
        return rows

    def audit(self, t: float, who: str, action: str, detail: Mapping[str, Any]) -> None:
        """Log what an operator (or the node) did."""
        text = self._json(detail, "detail")
        self._put(_Item(f"audit {action}", partial(_write_audit, row=(t, who, action, text))),
                  must_keep=True)

    def audit_log(self, since_t: float | None = None, limit: int = 1000
                  ) -> list[dict[str, Any]]:
        """Audit entries (AUDIT_SCHEMA), the latest first."""
        rows = self._query("SELECT t, who, action, detail FROM audit WHERE t >= ? "
                           "ORDER BY t DESC, seq DESC LIMIT ?",
                           (-math.inf if since_t is None else since_t, limit))
        for r in rows:
            r["detail"] = json.loads(r["detail"])
        return rows

    # ------------------------------------------------------------------ retention

    def apply_retention(self, now_t: float, timeout_s: float = 600.0) -> RetentionResult:
        """Apply the retention now (``now_t``: the data's present time); waits for it.
        The writer also does this every ``retention_interval_s`` with the latest data
        time it has seen."""
        fut: Future[Any] = Future()
        self._put(_Item("retention", waiter=fut, job=partial(self._retention, now_t=now_t)),
                  must_keep=True, timeout_s=timeout_s)
        try:
            result: RetentionResult = fut.result(timeout=timeout_s)
        except FutureTimeout:
            raise StoreError(f"retention did not finish within {timeout_s:g} s",
                             file=self._name, fix="give it longer") from None
        return result

    # ------------------------------------------------------------------ the caller's side

    def _put(self, item: _Item, *, must_keep: bool, timeout_s: float | None = None) -> bool:
        if self._closed:
            raise StoreError("the store is closed", file=self._name,
                             fix="open it again; writes after close() are refused")
        if not self._thread.is_alive():
            raise StoreError("the store's writer thread has stopped", file=self._name,
                             fix="see the log of skyfence.store and open the store again")
        if not must_keep:
            if self._q.qsize() >= self._track_limit:
                self._count(dropped=item.rows)
                return False
            try:
                self._q.put_nowait(item)
            except queue.Full:
                self._count(dropped=item.rows)
                return False
            return True
        wait_s = self.config.put_timeout_s if timeout_s is None else timeout_s
        try:
            self._q.put(item, timeout=wait_s)
        except queue.Full:
            raise StoreError(f"the write queue stayed full for {wait_s:g} s; "
                             f"{item.what} was not stored", file=self._name,
                             fix="the disk is too slow or the writer is stuck: see the log "
                                 "of skyfence.store, or give a larger queue_size") from None
        return True

    def _call(self, fn: Callable[[sqlite3.Connection], Any], *, what: str = "call",
              timeout_s: float | None = None) -> Any:
        """Run ``fn(connection)`` in the writer's transaction; its result after the
        commit."""
        wait_s = self.config.put_timeout_s + 30.0 if timeout_s is None else timeout_s
        fut: Future[Any] = Future()
        self._put(_Item(what, fn, rows=0, waiter=fut), must_keep=True)
        try:
            return fut.result(timeout=wait_s)
        except FutureTimeout:
            raise StoreError(f"{what} was not committed within {wait_s:g} s",
                             file=self._name, fix="see the log of skyfence.store") from None

    def _count(self, *, written: int = 0, dropped: int = 0, errors: int = 0) -> None:
        with self._count_lock:
            self._written += written
            self._dropped += dropped
            self._errors += errors

    @staticmethod
    def _json(detail: Mapping[str, Any], name: str) -> str:
        try:
            return json.dumps(dict(detail), separators=(",", ":"))
        except (TypeError, ValueError) as err:
            raise StoreError(f"{name} is not JSON: {err}", field=name,
                             fix="give a mapping of JSON values") from err

    def _fail_leftovers(self) -> None:
        lost = 0
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                continue
            lost += 1
            if item.waiter is not None:
                item.waiter.set_exception(StoreError("the store closed first", file=self._name))
        if lost:
            self._count(errors=lost)
            log.error("%s: %d writes arrived as the store closed and were not stored",
                      self._name, lost)

    # ------------------------------------------------------------------ readers

    def _reader(self) -> sqlite3.Connection:
        held: _ReadConnection | None = getattr(self._local, "reader", None)
        if self._closed:
            if held is not None:
                self._close_reader()
            raise StoreError("the store is closed", file=self._name,
                             fix="open it again to read")
        if held is None:
            con = sqlite3.connect(self._uri, uri=True, isolation_level=None,
                                  timeout=self.config.busy_timeout_s)
            con.execute(f"PRAGMA busy_timeout = {int(self.config.busy_timeout_s * 1000)}")
            con.execute("PRAGMA query_only = ON")
            held = _ReadConnection(con)
            self._local.reader = held
        return held.con

    def _close_reader(self) -> None:
        held: _ReadConnection | None = getattr(self._local, "reader", None)
        if held is not None:
            held.con.close()
            self._local.reader = None

    def _query(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        try:
            cur = self._reader().execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur]
        except sqlite3.Error as err:
            raise StoreError(f"a query failed: {err}", file=self._name,
                             fix="see the log of skyfence.store") from err

    # ------------------------------------------------------------------ the writer thread

    def _writer(self) -> None:
        try:
            con = self._open()
        except BaseException as err:
            self._open_error.append(err)
            self._ready.set()
            return
        self._ready.set()
        interval = self.config.retention_interval_s
        next_retention = math.inf if interval is None else time.monotonic() + interval
        try:
            while True:
                try:
                    timeout = 0.0 if self._jobs else min(
                        1.0, max(0.01, next_retention - time.monotonic()))
                    batch, control = self._collect(timeout)
                    if batch:
                        self._write(con, batch)
                    if control is _STOP:
                        break
                    if control is not None and control.job is not None:
                        self._jobs.append(_Job(control.job(con), control.waiter))
                    if time.monotonic() >= next_retention:
                        next_retention = time.monotonic() + (interval or math.inf)
                        if not self._jobs:
                            self._jobs.append(_Job(self._retention(con, now_t=self._data_t),
                                                   None))
                    if self._jobs:
                        self._step(con)
                except Exception as err:  # the writer must outlive any one failure
                    self._count(errors=1)
                    self._throttle.error("%s: the writer failed: %s", self._name, err)
                    _rollback(con)
            # Stopping: finish what a caller waits for; a periodic run can wait.
            while self._jobs:
                if self._jobs[0].waiter is None:
                    self._jobs.popleft().steps.close()
                else:
                    self._step(con)
        finally:
            with contextlib.suppress(sqlite3.Error):
                con.execute("UPDATE runs SET closed_t = ? WHERE run = ?", (time.time(), self.run))
                con.execute("PRAGMA analysis_limit = 1000")  # optimize stays quick when big
                con.execute("PRAGMA optimize")
            con.close()

    def _open(self) -> sqlite3.Connection:
        name = self._name
        try:
            con = sqlite3.connect(name, isolation_level=None,
                                  timeout=self.config.busy_timeout_s)
        except sqlite3.Error as err:
            raise StoreError(f"cannot open the store: {err}", file=name,
                             fix="check the path and its permissions") from err
        try:
            con.execute(f"PRAGMA busy_timeout = {int(self.config.busy_timeout_s * 1000)}")
            tables = {r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables:
                # Only possible before the first table: retention shrinks the file with it.
                con.execute("PRAGMA auto_vacuum = INCREMENTAL")
            mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"the file cannot use write-ahead logging (journal mode "
                                 f"stays {mode!r})", file=name,
                                 fix="put the store on a local file system")
            con.execute("PRAGMA synchronous = NORMAL")
            con.execute("PRAGMA foreign_keys = ON")
            con.execute("PRAGMA cache_size = -65536")  # 64 MiB: indexes of a busy day
            con.execute("PRAGMA journal_size_limit = 67108864")
            self._migrate(con, tables)
            self._rtree = "track_rtree" in {r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if self._rtree and not _rtree_available():
                raise StoreError("the store was made with SQLite's R*Tree module, which "
                                 "this Python's SQLite lacks", file=name,
                                 fix="use a Python whose sqlite3 has R*Tree, or another path")
            self.run = int(con.execute("INSERT INTO runs (opened_t) VALUES (?)",
                                       (time.time(),)).lastrowid or 0)
        except sqlite3.DatabaseError as err:
            con.close()
            raise StoreError(f"not a usable SQLite database ({err})", file=name,
                             fix="if it is some other file, give another path; if it is a "
                                 "damaged store, move it aside (a new store is made where "
                                 "no file is) or recover it with the sqlite3 shell's "
                                 ".recover") from err
        except BaseException:
            con.close()
            raise
        return con

    def _migrate(self, con: sqlite3.Connection, tables: set[str]) -> None:
        name = self._name
        if "schema_version" in tables:
            version = int(con.execute("SELECT max(version) FROM schema_version"
                                      ).fetchone()[0] or 0)
        elif tables:
            raise StoreError("a SQLite database, but not a skyfence store (it has tables "
                             f"{', '.join(sorted(tables)[:5])} and no schema_version)",
                             file=name, fix="give another path")
        else:
            version = 0
        if version > SCHEMA_VERSION:
            raise StoreError(f"the store has schema version {version}; this skyfence knows "
                             f"up to {SCHEMA_VERSION}", file=name,
                             fix="use the newer skyfence that wrote it, or another path")
        rtree = self.config.area_index and _rtree_available()
        for v in range(version, SCHEMA_VERSION):
            con.execute("BEGIN IMMEDIATE")
            try:
                _MIGRATIONS[v](con, rtree)
                con.execute("INSERT INTO schema_version (version, applied_t) VALUES (?, ?)",
                            (v + 1, time.time()))
                con.execute("COMMIT")
            except BaseException:
                _rollback(con)
                raise
            log.info("%s: schema version %d", name, v + 1)

    def _collect(self, timeout_s: float) -> tuple[list[_Item], _Item | None]:
        """Items for one transaction: up to ``batch_items`` rows or ``batch_interval_s``
        after the first; a control item (stop, retention) or one a caller waits for
        ends the batch."""
        batch: list[_Item] = []
        try:
            item = self._q.get(timeout=timeout_s) if timeout_s > 0 else self._q.get_nowait()
        except queue.Empty:
            return batch, None
        deadline = time.monotonic() + self.config.batch_interval_s
        rows = 0
        while True:
            if item is _STOP or item.job is not None:
                return batch, item
            batch.append(item)
            rows += item.rows
            if item.waiter is not None or rows >= self.config.batch_items:
                return batch, None
            remaining = deadline - time.monotonic()
            try:
                item = (self._q.get(timeout=remaining) if remaining > 0
                        else self._q.get_nowait())
            except queue.Empty:
                return batch, None

    def _write(self, con: sqlite3.Connection, batch: list[_Item]) -> None:
        try:
            con.execute("BEGIN IMMEDIATE")
            results = [None if item.apply is None else item.apply(con) for item in batch]
            con.execute("COMMIT")
        except Exception as err:
            _rollback(con)
            if len(batch) > 1:
                # One bad item must not take the others with it: again, one at a time.
                log.debug("%s: a batch of %d failed (%s); writing them one by one",
                          self._name, len(batch), err)
                for item in batch:
                    self._write(con, [item])
                return
            self._count(errors=1)
            self._throttle.error("%s: could not store %s: %s", self._name, batch[0].what, err)
            if batch[0].waiter is not None:
                batch[0].waiter.set_exception(StoreError(
                    f"could not store {batch[0].what}: {err}", file=self._name,
                    fix="see the log of skyfence.store (a full disk?)"))
            return
        written = 0
        for item, result in zip(batch, results, strict=True):
            written += item.rows
            if item.data_t is not None and (self._data_t is None or item.data_t > self._data_t):
                self._data_t = item.data_t
            if item.waiter is not None:
                item.waiter.set_result(result)
        self._count(written=written)

    def _step(self, con: sqlite3.Connection) -> None:
        job = self._jobs[0]
        try:
            next(job.steps)
        except StopIteration as done:
            self._jobs.popleft()
            if job.waiter is not None:
                job.waiter.set_result(done.value)
        except Exception as err:
            self._jobs.popleft()
            _rollback(con)
            self._count(errors=1)
            self._throttle.error("%s: retention failed: %s", self._name, err)
            if job.waiter is not None:
                job.waiter.set_exception(StoreError(f"retention failed: {err}",
                                                    file=self._name))

    # ------------------------------------------------------------------ retention

    def _retention(self, con: sqlite3.Connection, *, now_t: float | None
                   ) -> Generator[None, None, RetentionResult]:
        """Retention in steps of one transaction each; the writer takes queued writes
        between them."""
        r, chunk = self.retention, self.config.retention_chunk_rows
        rows = alerts = 0
        if r.max_age_s is not None and now_t is not None:
            cutoff = now_t - r.max_age_s
            while True:
                n = self._delete_history(con, chunk, before_t=cutoff)
                rows += n
                yield
                if n < chunk:
                    break
            # An alert goes with all its events once cleared (or left behind by a run
            # that stopped) for longer than the age limit.
            con.execute("BEGIN IMMEDIATE")
            alerts = con.execute("DELETE FROM alerts WHERE updated_t < ? AND "
                                 "(state = 'cleared' OR run != ?)", (cutoff, self.run)).rowcount
            con.execute("COMMIT")
            yield
        if r.max_bytes is not None:
            for _ in range(10_000):
                page_size, pages, free = _pages(con)
                used = (pages - free) * page_size
                if used <= r.max_bytes:
                    break
                lo, hi = con.execute("SELECT min(id), max(id) FROM track_history").fetchone()
                if lo is None:
                    log.warning("%s: %d bytes in use, over max_bytes %d, with no track "
                                "history left to delete", self._name, used, r.max_bytes)
                    break
                # As if the history were all of the file: deletes too little rather than
                # too much, and the loop comes back for the rest.
                approx_rows = hi - lo + 1
                need = math.ceil(approx_rows * (used - r.max_bytes) / used)
                n = self._delete_history(con, max(1, min(chunk, max(need, 100), approx_rows)))
                rows += n
                yield
                if n == 0:
                    break
        while _pages(con)[2] > 0:
            freed = _pages(con)[2]
            con.execute("PRAGMA incremental_vacuum(2048)").fetchall()
            yield
            if _pages(con)[2] >= freed:
                break
        page_size, pages, _ = _pages(con)
        if rows or alerts:
            log.info("%s: retention deleted %d track history rows and %d alerts", self._name,
                     rows, alerts)
        return RetentionResult(track_rows=rows, alerts=alerts, db_bytes=page_size * pages)

    def _delete_history(self, con: sqlite3.Connection, limit: int,
                        before_t: float = math.inf) -> int:
        """Delete about the oldest ``limit`` history rows older than ``before_t``, in
        whole time slices: the replay timeline never shows a picture with some of its
        tracks gone."""
        row = con.execute("SELECT t FROM track_history WHERE t < ? ORDER BY t LIMIT 1 "
                          "OFFSET ?", (before_t, limit - 1)).fetchone()
        cond, arg = ("t <= ?", row[0]) if row is not None else ("t < ?", before_t)
        con.execute("BEGIN IMMEDIATE")
        try:
            if self._rtree:
                con.execute("DELETE FROM track_rtree WHERE id IN "
                            f"(SELECT id FROM track_history WHERE {cond})", (arg,))
            n = int(con.execute(f"DELETE FROM track_history WHERE {cond}", (arg,)).rowcount)
            con.execute("COMMIT")
        except BaseException:
            _rollback(con)
            raise
        return n


# --------------------------------------------------------------------------- writes


def _nothing(con: sqlite3.Connection) -> None:
    return None


def _rollback(con: sqlite3.Connection) -> None:
    if con.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            con.execute("ROLLBACK")


def _pages(con: sqlite3.Connection) -> tuple[int, int, int]:
    """page_size, page_count, freelist_count."""
    return (int(con.execute("PRAGMA page_size").fetchone()[0]),
            int(con.execute("PRAGMA page_count").fetchone()[0]),
            int(con.execute("PRAGMA freelist_count").fetchone()[0]))


def _delete(con: sqlite3.Connection, *, table: str, key: str) -> bool:
    return int(con.execute(f"DELETE FROM {table} WHERE id = ?", (key,)).rowcount) > 0


def _replace_all(con: sqlite3.Connection, table: str, keep: set[str]) -> None:
    gone = [(k,) for (k,) in con.execute(f"SELECT id FROM {table}") if k not in keep]
    con.executemany(f"DELETE FROM {table} WHERE id = ?", gone)


def _write_zones(con: sqlite3.Connection, *, rows: list[tuple[Any, ...]],
                 replace: bool) -> None:
    if replace:
        _replace_all(con, "zones", {r[0] for r in rows})
    con.executemany("INSERT OR REPLACE INTO zones (id, name, restriction, lon_min_deg, "
                    "lat_min_deg, lon_max_deg, lat_max_deg, source, stored_t, geojson) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def _write_sites(con: sqlite3.Connection, *, rows: list[tuple[Any, ...]],
                 replace: bool) -> None:
    if replace:
        _replace_all(con, "sites", {r[0] for r in rows})
    con.executemany("INSERT OR REPLACE INTO sites (id, name, lon_deg, lat_deg, radius_m, "
                    "ceiling_m, source, stored_t) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)


_ALERT_UPSERT = """
INSERT INTO alerts (run, alert, kind, severity, state, track, zone, site, "group", raised_t,
                    updated_t, cleared_t, acknowledged_by, acknowledged_t, reason,
                    time_to_breach_s, probability, lat_deg, lon_deg, height_m)
VALUES (:run, :alert, :kind, :severity, :state, :track, :zone, :site, :group, :raised_t,
        :t, :cleared_t, :by, :acknowledged_t, :reason, :time_to_breach_s, :probability,
        :lat_deg, :lon_deg, :height_m)
ON CONFLICT (run, alert) DO UPDATE SET
    kind = excluded.kind, severity = excluded.severity,
    state = CASE WHEN alerts.state = 'cleared' OR :event = 'updated' THEN alerts.state
                 ELSE excluded.state END,
    track = excluded.track, zone = excluded.zone, site = excluded.site,
    "group" = excluded."group", raised_t = coalesce(alerts.raised_t, excluded.raised_t),
    updated_t = excluded.updated_t, cleared_t = coalesce(excluded.cleared_t, alerts.cleared_t),
    acknowledged_by = coalesce(excluded.acknowledged_by, alerts.acknowledged_by),
    acknowledged_t = coalesce(excluded.acknowledged_t, alerts.acknowledged_t),
    reason = excluded.reason, time_to_breach_s = excluded.time_to_breach_s,
    probability = excluded.probability, lat_deg = excluded.lat_deg,
    lon_deg = excluded.lon_deg, height_m = excluded.height_m
"""


def _write_alert(con: sqlite3.Connection, *, event: AlertEvent, run: int) -> None:
    doc = event.to_json()
    e = doc["event"]
    params = {**doc, "run": run,
              "state": {"acknowledged": "acknowledged", "cleared": "cleared"}.get(e, "raised"),
              "raised_t": doc["t"] if e == "raised" else None,
              "cleared_t": doc["t"] if e == "cleared" else None,
              "acknowledged_t": doc["t"] if e == "acknowledged" else None}
    con.execute(_ALERT_UPSERT, params)
    con.execute('INSERT INTO alert_events (run, alert, t, event, kind, severity, track, zone, '
                'site, "by", json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
                (run, doc["alert"], doc["t"], e, doc["kind"], doc["severity"], doc["track"],
                 doc["zone"], doc["site"], doc["by"], json.dumps(doc, separators=(",", ":"))))


def _write_tracks(con: sqlite3.Connection, *, t: float, ids: I64, cols: list[F64],
                  texts: list[NDArray[Any] | list[Any]], groups: I64, rtree: bool) -> None:
    before = 0
    if rtree:
        before = con.execute("SELECT max(id) FROM track_history").fetchone()[0] or 0
    con.executemany(
        f"INSERT OR IGNORE INTO track_history ({_HISTORY_COLUMNS}) "
        f"VALUES ({', '.join('?' * len(TRACK_HISTORY_SCHEMA.names))})",
        zip(repeat(t), ids.tolist(), *(c.tolist() for c in cols),
            *(map(_text, x.tolist() if isinstance(x, np.ndarray) else x) for x in texts),
            [g if g >= 0 else None for g in groups.tolist()]))
    if rtree:
        # Set-based, after the rows: ignored duplicates get no box, NaN positions none.
        con.execute("INSERT INTO track_rtree SELECT id, lon_deg, lon_deg, lat_deg, lat_deg "
                    "FROM track_history WHERE id > ? AND lat_deg IS NOT NULL "
                    "AND lon_deg IS NOT NULL", (before,))


def _write_sensor_status(con: sqlite3.Connection, *, row: tuple[Any, ...]) -> None:
    con.execute("INSERT INTO sensor_status (sensor, t, status, detail) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (sensor) DO UPDATE SET t = excluded.t, status = excluded.status, "
                "detail = excluded.detail WHERE excluded.t >= sensor_status.t", row)


def _write_audit(con: sqlite3.Connection, *, row: tuple[Any, ...]) -> None:
    con.execute("INSERT INTO audit (t, who, action, detail) VALUES (?, ?, ?, ?)", row)


# --------------------------------------------------------------------------- helpers


def _take(values: NDArray[_S], sel: I64) -> NDArray[_S]:
    """A copy of the selected values (the caller may reuse its arrays)."""
    return values.copy() if sel.size == values.shape[0] else values[sel]


def _pick(values: Texts, sel: I64) -> NDArray[Any] | list[Any]:
    if isinstance(values, np.ndarray):
        return _take(values, sel)
    if sel.size == len(values):
        return list(values)
    return [values[i] for i in sel.tolist()]


def _text(v: Any) -> str | None:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, Sequence | set | frozenset):
        return "|".join(str(x) for x in v)
    return str(v)


def _zone_bbox(zone: Zone) -> tuple[float, float, float, float]:
    """(lon_min, lat_min, lon_max, lat_max) degrees around every volume."""
    lons: list[float] = []
    lats: list[float] = []
    for v in zone.volumes:
        s = v.shape
        if isinstance(s, Circle):
            dlat = math.degrees(s.radius_m / _EARTH_RADIUS_M)
            dlon = dlat / max(math.cos(math.radians(s.lat_deg)), 1e-6)
            lons += [s.lon_deg - dlon, s.lon_deg + dlon]
            lats += [s.lat_deg - dlat, s.lat_deg + dlat]
        else:
            for x, y in s.rings[0] if s.rings else ():
                lons.append(x)
                lats.append(y)
    if not lons:
        return (math.nan, math.nan, math.nan, math.nan)
    return (min(lons), max(-90.0, min(lats)), max(lons), min(90.0, max(lats)))


def _check_bbox(bbox: BBox) -> BBox:
    lon0, lat0, lon1, lat1 = (float(x) for x in bbox)
    if not (all(math.isfinite(x) for x in (lon0, lat0, lon1, lat1)) and lat0 <= lat1):
        raise StoreError(f"{bbox!r} is not a box (lon_min, lat_min, lon_max, lat_max)",
                         field="bbox", fix="give finite degrees with lat_min ≤ lat_max; "
                         "lon_min > lon_max crosses the antimeridian")
    return lon0, lat0, lon1, lat1


def _split_bbox(bbox: BBox) -> list[BBox]:
    """A box across the antimeridian (lon_min > lon_max) as two."""
    lon0, lat0, lon1, lat1 = bbox
    if lon0 <= lon1:
        return [bbox]
    return [(lon0, lat0, 180.0, lat1), (-180.0, lat0, lon1, lat1)]


def _area_condition(bbox: BBox | None, prefix: str = "") -> tuple[str, list[float]]:
    if bbox is None:
        return "1", []
    lon0, lat0, lon1, lat1 = _check_bbox(bbox)
    lat = f"{prefix}lat_deg BETWEEN ? AND ?"
    if lon0 <= lon1:
        return f"{lat} AND {prefix}lon_deg BETWEEN ? AND ?", [lat0, lat1, lon0, lon1]
    return (f"{lat} AND ({prefix}lon_deg >= ? OR {prefix}lon_deg <= ?)",
            [lat0, lat1, lon0, lon1])

