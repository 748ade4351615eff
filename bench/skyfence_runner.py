"""skyfence's tracker behind the benchmark's ``step`` / ``snapshot`` verbs."""

from __future__ import annotations

import numpy as np

from harness import Snapshot, split_batches
from skyfence.scenario import Scenario
from skyfence.track import Tracker
from skyfence.types import F64, Detections, TrackStatus, TrackUpdate


class SkyfenceRunner:
    def __init__(self, scenario: Scenario, det: Detections) -> None:
        self._batches = split_batches(det)
        self.times: F64 = np.array([b.t[0] for b in self._batches])
        self.sizes = np.array([len(b) for b in self._batches], dtype=np.intp)
        self._tracker = Tracker.from_scenario(scenario)
        self._last: TrackUpdate | None = None

    def __len__(self) -> int:
        return len(self._batches)

    def step(self, k: int) -> None:
        self._last = self._tracker.step(self._batches[k])

    def snapshot(self) -> Snapshot:
        if self._last is None:
            return Snapshot(id=np.empty(0, dtype=np.int64), x=np.empty((0, 6)),
                            status=np.empty(0, dtype=np.int8))
        tracks = self._last.tracks
        keep = tracks.status != TrackStatus.TENTATIVE
        return Snapshot(id=tracks.id[keep], x=tracks.x[keep], status=tracks.status[keep])
