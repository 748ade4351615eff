"""The Stone Soup side of the benchmark: frame conventions and a small end-to-end run.

Runs in the bench environment, where Stone Soup is installed:
``.venv-bench/bin/python -m pytest bench``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stonesoup.types.detection import Detection
from stonesoup.types.state import State, StateVector

import handmade
import stonesoup_runner as ssr
from skyfence.scenario import read_detections, read_scenario, read_truth


def test_radar_conversion_round_trips_noise_free() -> None:
    """Our (range, azimuth from north, elevation) → Stone Soup's model and back."""
    sensor = handmade.scenario().sensors[0]
    model = ssr.measurement_model(sensor)
    rng = np.random.default_rng(3)
    targets = rng.uniform([-5000, -5000, -50], [5000, 5000, 2000], size=(200, 3))
    ours = handmade.radar_measure(targets, np.asarray(sensor.position_enu_m))
    theirs = ssr.radar_to_stonesoup(ours)
    for enu, z in zip(targets, theirs, strict=True):
        state = State(StateVector([enu[0], 0.0, enu[1], 0.0, enu[2], 0.0]))
        predicted = np.asarray(model.function(state), dtype=np.float64).ravel()
        np.testing.assert_allclose(predicted, z, rtol=0, atol=1e-9)
        back = model.inverse_function(Detection(StateVector(list(z)), measurement_model=model))
        np.testing.assert_allclose(np.asarray(back, dtype=np.float64).ravel()[[0, 2, 4]], enu,
                                   atol=1e-6)


def test_bearing_is_counter_clockwise_from_east() -> None:
    north, east = (1000.0, 0.0, 0.0), (1000.0, math.pi / 2, 0.0)  # (range, azimuth, elevation)
    b = ssr.radar_to_stonesoup(np.array([north, east]))[:, 1]
    np.testing.assert_allclose(b, [math.pi / 2, 0.0], atol=1e-12)


def test_tracks_a_handmade_scenario(tmp_path: Path) -> None:
    handmade.write(tmp_path, n_targets=3, duration_s=15.0, seed=5)
    scenario = read_scenario(tmp_path)
    runner = ssr.StoneSoupRunner(scenario, read_detections(tmp_path, scenario))
    for k in range(len(runner)):
        runner.step(k)
    snap = runner.snapshot()
    truth = read_truth(tmp_path)
    assert truth is not None
    last = truth.t == truth.t.max()
    assert len(snap.id) == 3
    # Each truth has a track within a few radar range-noise sigmas.
    d = np.linalg.norm(truth.x[last, None, :3] - snap.x[None, :, :3], axis=2)
    assert d.min(axis=1).max() < 50.0


def test_kd_tree_associator_gives_the_plain_associators_tracks(tmp_path: Path) -> None:
    """The tree only skips pairs outside the gate: same tracks, same states, every scan."""
    from skyfence import sim

    # A tight swarm with clutter: many tracks and detections inside each other's gates.
    sim.write(tmp_path, sim.build("swarm", n_targets=20, seed=2, duration_s=10.0, pd=0.9))
    scenario = read_scenario(tmp_path)
    det = read_detections(tmp_path, scenario)
    plain = ssr.StoneSoupRunner(scenario, det, use_tree=False)
    tree = ssr.StoneSoupRunner(scenario, det, use_tree=True)
    assert ssr.tree_multiplier(scenario, 16.27) is not None
    n_tracks = 0
    for k in range(len(plain)):
        plain.step(k)
        tree.step(k)
        a, b = plain.snapshot(), tree.snapshot()
        order_a, order_b = np.lexsort(a.x.T), np.lexsort(b.x.T)
        np.testing.assert_array_equal(a.x[order_a], b.x[order_b])
        np.testing.assert_array_equal(a.status[order_a], b.status[order_b])
        n_tracks = max(n_tracks, len(a.id))
    assert n_tracks >= 10
