"""GNN against JPDA on the simulator's presets: ``python bench/association.py``.

The tracker's default association is decided by this measurement (README,
"How the tracker works"). Each preset is simulated with a fixed seed, tracked
with each association, and scored with GOSPA (c = 100 m, p = 2, α = 2).
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np

from skyfence import sim
from skyfence.metrics import ScoreReport, score
from skyfence.pipeline import batch_bounds, confirmed_rows
from skyfence.track import Tracker, TrackerConfig

CASES = {"spread": 11, "swarm": 12, "crewed": 13, "long_range": 14, "mixed": 15}


def track_and_score(result: sim.SimResult, config: TrackerConfig) -> ScoreReport:
    tracker = Tracker.from_scenario(result.scenario, config=config)
    det = result.detections
    t, ids, x = [], [], []
    for a, b in zip(*batch_bounds(det.t), strict=True):  # over scans
        update = tracker.step(det.take(slice(a, b)))
        i, xs, _, _ = confirmed_rows(update)
        t.append(np.full(len(i), update.t))
        ids.append(i)
        x.append(xs)
    est_x = np.concatenate(x)
    return score(result.truth.t, result.truth.id, result.truth.x[:, :3], np.concatenate(t),
                 np.concatenate(ids), est_x[:, :3])


def main() -> int:
    print("| preset | association | GOSPA m | false tracks | identity switches |")
    print("|---|---|---:|---:|---:|")
    for preset, seed in CASES.items():
        result = sim.build(preset, seed=seed)
        for assoc in ("gnn", "jpda"):
            r = track_and_score(result, dataclasses.replace(TrackerConfig(), association=assoc))
            print(f"| {preset} | {assoc} | {r.gospa_m:.1f} | {r.false_tracks} | "
                  f"{r.identity_switches} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
