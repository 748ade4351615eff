"""The outcome of a simulation, and writing it as a scenario directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from skyfence.scenario import Scenario, StateTable, write_detections, write_scenario, write_truth
from skyfence.types import F64, Detections

TARGET_KINDS = ("multirotor", "fixed_wing", "swarm", "fast_low_flyer", "crewed")


@dataclass(frozen=True, slots=True)
class SimResult:
    """A simulated scenario.

    ``detections`` are sorted by time, then sensor. ``truth`` has a row for every
    target that exists at every scan time of every sensor, sorted by time then id.
    ``target_kind`` maps each target id to one of ``TARGET_KINDS``.
    ``detection_target`` (aligned with ``detections``) is the target behind each
    detection, -1 for clutter; ``scan_times`` holds each sensor's scan times, in the
    order of ``scenario.sensors``, including scans that detected nothing.
    """

    scenario: Scenario
    detections: Detections
    truth: StateTable
    target_kind: dict[int, str]
    detection_target: NDArray[np.int64] | None = None
    scan_times: tuple[F64, ...] = ()

    @property
    def n_clutter(self) -> int:
        if self.detection_target is None:
            return 0
        return int(np.count_nonzero(self.detection_target < 0))


def write(directory: str | Path, result: SimResult) -> None:
    """Write ``scenario.json``, ``detections.csv`` and ``truth.csv`` into ``directory``."""
    write_scenario(directory, result.scenario)
    write_detections(directory, result.scenario, result.detections)
    write_truth(directory, result.truth)
