"""GNN against JPDA on the simulator's presets: ``python bench/association.py``.

The tracker's default associations are decided by this measurement (README,
"How the tracker works"): ``association`` for the sensors that fix a position and
``bearing_association`` for bearing sensors. Each preset is simulated with a fixed
seed, tracked with each choice, and scored with GOSPA (c = 100 m, p = 2, α = 2).
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np

from skyfence import sim
from skyfence.metrics import ScoreReport, score
from skyfence.pipeline import batch_bounds, confirmed_rows
from skyfence.track import Tracker, TrackerConfig

CASES = {"spread": 11, "swarm": 12, "crewed": 13, "long_range": 14, "mixed": 15,
         "fusion": 16, "low_flyer": 17}


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
    print("| preset | association | bearing association | GOSPA m | false tracks | "
          "identity switches |")
    print("|---|---|---|---:|---:|---:|")
    for preset, seed in CASES.items():
        result = sim.build(preset, seed=seed)
        bearings = any(s.kind == "bearing" for s in result.scenario.sensors)
        for assoc in ("gnn", "jpda"):
            for bearing in ("gnn", "jpda") if bearings else ("-",):
                config = dataclasses.replace(TrackerConfig(), association=assoc,
                                             bearing_association="jpda" if bearing == "-"
                                             else bearing)
                r = track_and_score(result, config)
                print(f"| {preset} | {assoc} | {bearing} | {r.gospa_m:.1f} | "
                      f"{r.false_tracks} | {r.identity_switches} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
