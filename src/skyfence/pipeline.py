"""File in, file out: run the tracker over a scenario directory.

Used by ``skyfence track``, ``skyfence demo`` and the benchmarks. The tracker
sees one batch per distinct detection time, in file order, and after each
batch the confirmed tracks are written as ``tracks.csv`` rows (with their class,
identity, flags and group) and the swarm groups as ``groups.csv`` rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from skyfence.alerts import AlertEvent, Watch, watch_input
from skyfence.picture import Frame, Picture
from skyfence.scenario import Scenario, TracksCsvWriter, read_detections, read_scenario
from skyfence.track import Tracker, TrackerConfig
from skyfence.types import Detections, Tracks, TrackStatus, TrackUpdate

_STATUS_NAMES = np.array(["tentative", "confirmed", "coasting"])


@dataclass(frozen=True, slots=True)
class ScanProgress:
    """Reported after each batch: where we are and what the tracker holds."""

    index: int
    n_scans: int
    t: float
    n_detections: int
    n_confirmed: int
    n_tracks: int
    elapsed_s: float


@dataclass(frozen=True, slots=True)
class RunStats:
    n_scans: int
    n_detections: int
    tracking_s: float
    mean_scan_s: float
    worst_scan_s: float
    tracks_started: int
    tracks_confirmed: int
    alerts_raised: int = 0

    @property
    def detections_per_s(self) -> float:
        return self.n_detections / self.tracking_s if self.tracking_s > 0 else float("nan")


def batch_bounds(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end indices of runs of equal time in a sorted time array."""
    if t.size == 0:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    starts = np.flatnonzero(np.r_[True, t[1:] != t[:-1]])
    return starts, np.r_[starts[1:], t.size]


def confirmed_rows(update: TrackUpdate) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """Ids, states (n, 6), status names and position σ of the confirmed or coasting tracks."""
    tr = update.tracks
    return _row_fields(tr, tr.status != TrackStatus.TENTATIVE)


def _row_fields(tr: Tracks, keep: np.ndarray | slice
                ) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """The ``tracks.csv`` state columns of tracks ``keep``: ids, states, status, σ."""
    pos_std = np.sqrt(np.trace(tr.P[keep, :3, :3], axis1=1, axis2=2))
    return tr.id[keep], tr.x[keep], _STATUS_NAMES[tr.status[keep]].tolist(), pos_std


def run_tracker(
    tracker: Tracker,
    det: Detections,
    writer: TracksCsvWriter | None = None,
    *,
    on_scan: Callable[[ScanProgress], None] | None = None,
    picture: Picture | None = None,
    watch: Watch | None = None,
    on_alert: Callable[[AlertEvent], None] | None = None,
) -> RunStats:
    """Step the tracker through ``det`` one time at a time; with a ``picture``, classify
    and group after each step and write the full rows (classes, flags, groups); with a
    ``watch`` too, check zones and sites and pass each alert event to ``on_alert``."""
    if watch is not None and picture is None:
        raise ValueError("a watch needs a picture (classes, groups, flags)")
    raised = 0
    starts, ends = batch_bounds(det.t)
    clock = time.perf_counter
    total = worst = 0.0
    confirmed_ids: set[int] = set()
    begin = clock()
    started_before = tracker.tracks_started
    for k, (a, b) in enumerate(zip(starts, ends, strict=True)):  # over scans
        t0 = clock()
        update = tracker.step(det.take(slice(a, b)))
        dt = clock() - t0
        total += dt
        worst = max(worst, dt)
        ids, x, status, pos_std = confirmed_rows(update)
        confirmed_ids.update(update.confirmed.tolist())
        if picture is not None:
            frame = picture.update(update)
            if writer is not None:
                write_frame(writer, frame)
            if watch is not None:
                for event in watch.update(watch_input(frame, update.deleted)):
                    raised += event.event == "raised"
                    if on_alert is not None:
                        on_alert(event)
        elif writer is not None:
            writer.write(update.t, ids, x, status, pos_std)
        if on_scan is not None:
            on_scan(ScanProgress(index=k, n_scans=len(starts), t=update.t,
                                 n_detections=int(b - a), n_confirmed=len(ids),
                                 n_tracks=len(update.tracks), elapsed_s=clock() - begin))
    n = len(starts)
    return RunStats(n_scans=n, n_detections=len(det), tracking_s=total,
                    mean_scan_s=total / n if n else 0.0, worst_scan_s=worst,
                    tracks_started=tracker.tracks_started - started_before,
                    tracks_confirmed=len(confirmed_ids), alerts_raised=raised)


def track_directory(
    directory: str | Path,
    out_csv: str | Path,
    *,
    config: TrackerConfig | None = None,
    on_scan: Callable[[ScanProgress], None] | None = None,
    watch: Callable[[Scenario], Watch] | None = None,
    on_alert: Callable[[AlertEvent], None] | None = None,
) -> RunStats:
    """Track a scenario directory's ``detections.csv`` into ``out_csv``; ``watch``
    makes the zone and alert watch for the scenario (its origin)."""
    scenario = read_scenario(directory)
    det = read_detections(directory, scenario)
    tracker = Tracker.from_scenario(scenario, config=config)
    groups_csv = Path(out_csv).with_name("groups.csv")
    with TracksCsvWriter(out_csv, groups_path=groups_csv) as writer:
        return run_tracker(tracker, det, writer, on_scan=on_scan,
                           picture=Picture.for_scenario(scenario),
                           watch=None if watch is None else watch(scenario), on_alert=on_alert)


def write_frame(writer: TracksCsvWriter, frame: Frame) -> None:
    """A picture's tracks (with classes, identity, flags, group) and its groups."""
    tr = frame.tracks
    writer.write(frame.t, *_row_fields(tr, slice(None)),
                 class_name=frame.class_names(), class_p=frame.class_p(),
                 identity=tr.identity, flags=tr.flag_names(), group=frame.group)
    g = frame.groups
    writer.write_groups(frame.t, g.id, g.count, g.centroid, g.velocity, g.extent_m)
