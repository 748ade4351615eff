"""Scan latencies of skyfence's tracker on one scenario directory.

``python bench/latency.py DIR`` prints each scan's wall time (ms) and the mean;
e.g. DIR = bench/out/scenarios/spread-10000 after ``bench/run.py``. A quick
repeat of one row of the benchmark, to see the run-to-run spread.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from skyfence.pipeline import batch_bounds
from skyfence.scenario import read_detections, read_scenario
from skyfence.track import Tracker


def main(directory: str) -> int:
    scenario = read_scenario(directory)
    det = read_detections(directory, scenario)
    tracker = Tracker.from_scenario(scenario)
    latency = []
    for a, b in zip(*batch_bounds(det.t), strict=True):  # over scans
        batch = det.take(slice(a, b))
        t0 = time.perf_counter()
        tracker.step(batch)
        latency.append(time.perf_counter() - t0)
    ms = 1e3 * np.asarray(latency)
    print(" ".join(f"{x:.0f}" for x in ms))
    print(f"{len(ms)} scans, mean {ms.mean():.1f} ms, worst {ms.max():.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
