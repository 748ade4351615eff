from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree

from skyfence.geo import Origin, height_above_origin_m
from skyfence.sim.swarm import formation, swarm

ORIGIN = Origin(lat_deg=47.45, lon_deg=8.56, alt_m=480.0)


def _nearest(points: np.ndarray) -> np.ndarray:
    d, _ = cKDTree(points).query(points, k=2)
    out: np.ndarray = d[:, 1]
    return out


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 600), st.floats(15.0, 30.0), st.integers(0, 2**32 - 1))
def test_formation_neighbours_are_10_to_50_m_apart(n: int, spacing: float, seed: int) -> None:
    offsets, branch = formation(np.random.default_rng(seed), n, spacing)
    nn = _nearest(offsets)
    assert nn.min() >= 10.0 and nn.max() <= 50.0
    assert set(branch.tolist()) == {0, 1}


def test_swarm_flies_in_formation_then_splits() -> None:
    times = np.arange(0.0, 90.0, 1.0)
    truth = swarm(ORIGIN, times, np.random.default_rng(3), n_drones=30,
                  center_en_m=(0.0, 3000.0), course_rad=math.pi, split_s=45.0)
    pos, vel = truth.states.pos, truth.states.vel
    halves = [np.flatnonzero(truth.branch == b) for b in (0, 1)]
    assert min(h.size for h in halves) >= 2
    for k in range(times.size):
        if times[k] < 45.0:
            nn = _nearest(pos[k])
            assert nn.min() >= 10.0 and nn.max() <= 50.0
            # A common velocity: the formation keeps its shape.
            np.testing.assert_allclose(vel[k], vel[k, :1].repeat(30, axis=0), atol=1e-3)
        for h in halves:
            nn = _nearest(pos[k, h])
            assert nn.min() >= 10.0 and nn.max() <= 50.0
            np.testing.assert_allclose(vel[k, h], vel[k, h[:1]].repeat(h.size, axis=0),
                                       atol=1e-3)
    gap = np.linalg.norm(pos[:, halves[0]].mean(axis=1) - pos[:, halves[1]].mean(axis=1), axis=1)
    before, end = gap[times < 45.0], gap[-1]
    assert before.max() - before.min() < 1.0  # together until the split
    assert end > before.max() + 200.0  # then diverging
    # The halves' headings differ after the split.
    hd = [np.arctan2(vel[-1, h[0], 0], vel[-1, h[0], 1]) for h in halves]
    assert abs(math.remainder(hd[0] - hd[1], 2 * math.pi)) > math.radians(30)
    # Flying towards the radar (south) and at drone heights above the ground.
    assert pos[-1, :, 1].mean() < 3000.0 - 500.0
    h_agl = height_above_origin_m(ORIGIN, pos)
    assert h_agl.min() > 50.0 and h_agl.max() < 150.0


def test_swarm_without_split_stays_together() -> None:
    times = np.arange(0.0, 60.0, 2.0)
    truth = swarm(ORIGIN, times, np.random.default_rng(1), n_drones=12,
                  center_en_m=(1000.0, 0.0), course_rad=0.0, split_s=None)
    for k in range(times.size):
        nn = _nearest(truth.states.pos[k])
        assert nn.min() >= 10.0 and nn.max() <= 50.0
