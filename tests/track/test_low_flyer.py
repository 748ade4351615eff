"""The low_flyer preset end to end: six RF-emitting drones and a silent fast flyer under
a radar's lowest beam, held by three direction finders and two cameras.

The measure is bench/fusion.py's: each truth time (0.5 s) at which a target is inside
the cover of at least two bearing sensors counts as held when a confirmed track of the
picture shown then (the latest step's) is within 100 m or contains the truth in its own
χ²₃ 0.999 ellipsoid.
"""

import numpy as np
import pytest

from skyfence import sim
from skyfence.pipeline import batch_bounds
from skyfence.sim.sensors import in_cover
from skyfence.track import Tracker, TrackerConfig
from skyfence.types import Tracks, TrackStatus


def _held(seed: int, config: TrackerConfig) -> float:
    r = sim.build("low_flyer", seed=seed)
    sc, truth, det = r.scenario, r.truth, r.detections
    emitters = np.asarray(sc.extra["simulator"]["rf_emitters"], dtype=np.int64)
    cover = sum(in_cover(sc.origin, s, truth.x[:, :3], emits_rf=np.isin(truth.id, emitters))
                for s in sc.sensors if s.kind == "bearing")
    held = np.zeros(len(truth), dtype=bool)

    def judge(rows: np.ndarray, tr: Tracks) -> None:
        shown = tr.status != TrackStatus.TENTATIVE
        if rows.size and shown.any():
            d = truth.x[rows, None, :3] - tr.x[None, shown, :3]
            m2 = np.einsum("tki,kij,tkj->tk", d, np.linalg.inv(tr.P[shown, :3, :3]), d)
            held[rows] = np.any((m2 < 16.27) | (np.linalg.norm(d, axis=2) < 100.0), axis=1)

    tracker = Tracker.from_scenario(sc, config=config)
    last_t, last = -np.inf, None
    for a, b in zip(*batch_bounds(det.t), strict=True):
        t = float(det.t[a])
        tracks = tracker.step(det.take(slice(a, b))).tracks
        if last is not None:
            judge(np.flatnonzero((truth.t > last_t) & (truth.t < t)), last)
        judge(np.flatnonzero(truth.t == t), tracks)
        last_t, last = t, tracks
    sel = np.asarray(cover) >= 2
    return float(held[sel].mean())


@pytest.mark.parametrize("seed", [25, 34])
def test_close_pairs_under_the_radar_are_held_with_weighted_bearing_updates(seed: int) -> None:
    """Two drones a few hundred metres apart: with one bearing per track (GNN) one
    sensor's bearings were swapped between their tracks and stayed swapped, each track
    hundreds of metres off with a tight covariance (held 91 % and 93 % on these seeds).
    Weighted (JPDA) bearing updates do not lock the swap in."""
    assert _held(seed, TrackerConfig()) > 0.95
