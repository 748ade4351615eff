"""What both trackers share in the benchmark: batching, timing, and the estimate rows.

A runner wraps one tracker behind two verbs: ``step(k)`` consumes batch ``k`` (this is
the only thing timed) and ``snapshot()`` gives the tracks to score after it (not timed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np
from numpy.typing import NDArray

from skyfence.types import F64, Detections

#: Columns of the binary estimate file, float64 each: the content of ``tracks.csv``
#: (``TRACKS_CSV_SCHEMA``) with status as its code (1 confirmed, 2 coasting).
ROW_COLUMNS = ("t", "track", "east_m", "north_m", "up_m",
               "v_east_mps", "v_north_mps", "v_up_mps", "status")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Tracks to score after a scan: ids (n,), ENU states (n, 6) m and m/s, status (n,)."""

    id: NDArray[np.int64]
    x: F64
    status: NDArray[np.int8]


class Runner(Protocol):
    times: F64  # (n_batches,) batch times, s
    sizes: NDArray[np.intp]  # (n_batches,) detections per batch

    def __len__(self) -> int: ...

    def step(self, k: int) -> None: ...

    def snapshot(self) -> Snapshot: ...


def split_batches(det: Detections) -> list[Detections]:
    """Detections grouped by identical ``t`` (the file is sorted by ``t``)."""
    starts = np.concatenate([[0], np.flatnonzero(np.diff(det.t)) + 1, [len(det)]])
    return [det.take(slice(int(a), int(b))) for a, b in pairwise(starts)]


class RowSink:
    """Streams estimate rows to a binary file so that they do not count in peak memory."""

    def __init__(self, path: Path) -> None:
        self._f: BinaryIO = path.open("wb")

    def write(self, t: float, snap: Snapshot) -> None:
        rows = np.empty((len(snap.id), len(ROW_COLUMNS)))
        rows[:, 0] = t
        rows[:, 1] = snap.id
        rows[:, 2:8] = snap.x
        rows[:, 8] = snap.status
        rows.tofile(self._f)

    def close(self) -> None:
        self._f.close()


def read_rows(path: Path) -> F64:
    return np.fromfile(path).reshape(-1, len(ROW_COLUMNS))


@dataclass(frozen=True, slots=True)
class Timing:
    scan_s: F64  # (k,) wall time of each processed batch
    n_detections: int  # detections in the processed batches
    n_batches_total: int
    t_last: float  # time of the last processed batch, s (UTC epoch)


def run_timed(runner: Runner, sink: RowSink, *, budget_s: float) -> Timing:
    """Step through the batches until done or until tracking time exceeds ``budget_s``."""
    scan_s = np.zeros(len(runner))
    k = 0
    spent = 0.0
    while k < len(runner) and spent < budget_s:
        t0 = time.perf_counter()
        runner.step(k)
        scan_s[k] = time.perf_counter() - t0
        spent += scan_s[k]
        sink.write(float(runner.times[k]), runner.snapshot())
        k += 1
    return Timing(scan_s=scan_s[:k], n_detections=int(runner.sizes[:k].sum()),
                  n_batches_total=len(runner), t_last=float(runner.times[k - 1]) if k else 0.0)
