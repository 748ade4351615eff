"""Bearing-pair triangulation: exact without noise, honest covariance with it."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from skyfence.track.triangulate import triangulate


def _bearings(s: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = p - s
    return np.arctan2(d[:, 0], d[:, 1]), np.arctan2(d[:, 2], np.hypot(d[:, 0], d[:, 1]))


def _cross(s1, p, s2, *, el1=True, el2=True, std=(0.01, 0.01)):  # type: ignore[no-untyped-def]
    a1, e1 = _bearings(s1, p)
    a2, e2 = _bearings(s2, p)
    m = p.shape[0]
    return triangulate(
        s1, a1, e1 if el1 else np.full(m, np.nan), np.full(m, std[0]), np.full(m, std[1]),
        s2, a2, e2 if el2 else np.full(m, np.nan), np.full(m, std[0]), np.full(m, std[1]),
        assumed_height_m=120.0, assumed_height_std_m=150.0)


@settings(max_examples=60, deadline=None)
@given(st.floats(-3000, 3000), st.floats(-3000, 3000), st.floats(5, 500))
def test_noise_free_bearings_cross_at_the_target(e: float, n: float, u: float) -> None:
    s1 = np.array([[-1500.0, 0.0, 10.0]])
    s2 = np.array([[1500.0, 200.0, 30.0]])
    p = np.array([[e, n, u]])
    fix = _cross(s1, p, s2)
    a1, _ = _bearings(s1, p)
    a2, _ = _bearings(s2, p)
    crossing = abs(math.sin(float(a2[0] - a1[0])))
    if crossing < math.sin(0.1):
        assert not fix.ok[0]
        return
    assert fix.ok[0]
    np.testing.assert_allclose(fix.pos[0], p[0], atol=1e-6 * (1 + np.abs(p).max()))
    assert fix.d2[0] < 1e-9


def test_azimuth_only_takes_the_assumed_height() -> None:
    s1, s2 = np.array([[-1000.0, 0.0, 0.0]]), np.array([[1000.0, 0.0, 0.0]])
    fix = _cross(s1, np.array([[0.0, 1000.0, 60.0]]), s2, el1=False, el2=False)
    assert fix.ok[0]
    np.testing.assert_allclose(fix.pos[0], [0.0, 1000.0, 120.0], atol=1e-6)
    assert fix.cov[0, 2, 2] == 150.0**2


def test_lines_that_meet_behind_a_sensor_are_rejected() -> None:
    s1, s2 = np.array([[-1000.0, 0.0, 0.0]]), np.array([[1000.0, 0.0, 0.0]])
    a1, a2 = np.array([-0.5]), np.array([0.5])  # both pointing away from each other
    nan = np.full(1, np.nan)
    fix = triangulate(s1, a1, nan, np.full(1, 0.01), nan, s2, a2, nan, np.full(1, 0.01), nan,
                      assumed_height_m=100.0, assumed_height_std_m=100.0)
    assert not fix.ok[0]


def test_covariance_matches_the_scatter_of_noisy_fixes() -> None:
    rng = np.random.default_rng(4)
    m = 20_000
    s1 = np.tile([-2000.0, 0.0, 10.0], (m, 1))
    s2 = np.tile([1500.0, -500.0, 20.0], (m, 1))
    p = np.tile([300.0, 2500.0, 80.0], (m, 1))
    a1, e1 = _bearings(s1, p)
    a2, e2 = _bearings(s2, p)
    std_a, std_e = 0.005, 0.004
    noise = rng.normal(size=(4, m))
    fix = triangulate(s1, a1 + std_a * noise[0], e1 + std_e * noise[1], np.full(m, std_a),
                      np.full(m, std_e), s2, a2 + std_a * noise[2], e2 + std_e * noise[3],
                      np.full(m, std_a), np.full(m, std_e),
                      assumed_height_m=120.0, assumed_height_std_m=150.0)
    assert fix.ok.all()
    scatter = np.cov((fix.pos - p).T)
    predicted = fix.cov.mean(axis=0)
    np.testing.assert_allclose(np.sqrt(np.diag(scatter)), np.sqrt(np.diag(predicted)),
                               rtol=0.1)
    # Height consistency is chi-square with one degree of freedom.
    assert abs(float(np.mean(fix.d2)) - 1.0) < 0.1
