"""Every filter variant against a textbook linear Kalman filter written with plain matrices."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from skyfence.track import imm
from skyfence.track.kalman import update
from skyfence.track.models import (
    ModelNoise,
    ct_predict,
    cv_propagate,
    cv_transition,
    cwna_q,
)

NOISE = ModelNoise(q_h_m2ps3=2.0, q_v_m2ps3=0.5, q_omega_rad2ps3=1e-3)


def _spd(rng: np.random.Generator, n: int, d: int, scale: float = 10.0) -> np.ndarray:
    a = rng.normal(size=(n, d, d)) * scale
    return a @ a.transpose(0, 2, 1) + np.eye(d) * 1e-2


def _reference_kf_update(x, P, z, H, R):  # type: ignore[no-untyped-def]
    S = H @ P @ H.T + R
    K = P @ H.T @ np.linalg.inv(S)
    nu = z - H @ x
    ll = -0.5 * (nu @ np.linalg.solve(S, nu) + np.log(np.linalg.det(S))
                 + len(z) * np.log(2 * np.pi))
    return x + K @ nu, (np.eye(len(x)) - K @ H) @ P, ll


@settings(max_examples=50, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000))
def test_update_equals_reference_kalman_filter(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 5
    x = rng.normal(size=(n, 7)) * 100
    P = _spd(rng, n, 7)
    H = np.zeros((3, 7))
    H[0, 0] = H[1, 1] = H[2, 2] = 1.0
    R = _spd(rng, n, 3, 2.0)
    z = rng.normal(size=(n, 3)) * 100
    xs, Ps, ll = update(x, P, z - x[:, :3], np.broadcast_to(H, (n, 3, 7)).copy(), R)
    for i in range(n):
        xr, Pr, llr = _reference_kf_update(x[i], P[i], z[i], H, R[i])
        np.testing.assert_allclose(xs[i], xr, rtol=1e-9, atol=1e-6)
        np.testing.assert_allclose(Ps[i], Pr, rtol=1e-7, atol=1e-6)
        assert abs(ll[i] - llr) < 1e-6


@settings(max_examples=30, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), dt=st.floats(0.1, 10.0))
def test_cv_prediction_equals_reference(seed: int, dt: float) -> None:
    rng = np.random.default_rng(seed)
    P = _spd(rng, 4, 7)
    F = cv_transition(dt)
    np.testing.assert_allclose(cv_propagate(P, dt), F @ P @ F.T, rtol=1e-12, atol=1e-9)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), dt=st.floats(0.1, 10.0))
def test_ct_jacobian_matches_finite_differences(seed: int, dt: float) -> None:
    rng = np.random.default_rng(seed)
    x = np.c_[rng.normal(size=(3, 3)) * 1000, rng.normal(size=(3, 3)) * 50,
              rng.choice([0.0, 1e-7, 0.05, -0.3], 3)]
    _, J = ct_predict(x, dt)
    eps = 1e-6
    for k in range(7):
        dxp = x.copy()
        dxm = x.copy()
        dxp[:, k] += eps
        dxm[:, k] -= eps
        fd = (ct_predict(dxp, dt)[0] - ct_predict(dxm, dt)[0]) / (2 * eps)
        np.testing.assert_allclose(J[:, :, k], fd, rtol=1e-5, atol=1e-4)


def test_ct_turns_velocity_at_omega_and_equals_cv_when_straight() -> None:
    x = np.array([[0.0, 0.0, 100.0, 10.0, 0.0, 1.0, np.pi / 2]])
    xp, _ = ct_predict(x, 1.0)  # a quarter circle, left turn, radius 10/(π/2)
    np.testing.assert_allclose(xp[0, 3:5], [0.0, 10.0], atol=1e-12)
    r = 10.0 / (np.pi / 2)
    np.testing.assert_allclose(xp[0, :3], [r, r, 101.0], atol=1e-9)
    straight = x.copy()
    straight[0, 6] = 0.0
    np.testing.assert_allclose(ct_predict(straight, 2.0)[0][0, :6],
                               (straight[0] @ cv_transition(2.0).T)[:6], atol=1e-12)


def test_imm_with_identical_modes_is_the_kalman_filter() -> None:
    """Mixing K copies of one CV model must reproduce the single-model KF exactly."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(4, 7)) * 100
    P = _spd(rng, 4, 7)
    models = [imm.MotionModel("cv", NOISE)] * 3
    xk = np.repeat(x[:, None], 3, axis=1)
    Pk = np.repeat(P[:, None], 3, axis=1)
    mu = np.tile([0.5, 0.3, 0.2], (4, 1))
    pi = imm.transition_probabilities(1.5, (10.0, 5.0, 3.0))
    x0, P0, c_bar = imm.mix(mu, xk, Pk, pi)
    xp, Pp = imm.predict(models, x0, P0, 1.5, np.ones(4))
    xc, Pc = imm.combine(c_bar, xp, Pp)
    F, Q = cv_transition(1.5), cwna_q(1.5, NOISE)
    for i in range(4):
        np.testing.assert_allclose(xc[i], F @ x[i], rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(Pc[i], F @ P[i] @ F.T + Q, rtol=1e-10, atol=1e-8)


def test_transition_probabilities_are_stochastic() -> None:
    for dt in (0.0, 0.5, 4.0, 100.0):
        pi = imm.transition_probabilities(dt, (20.0, 10.0, 5.0))
        np.testing.assert_allclose(pi.sum(axis=1), 1.0)
        assert (pi >= 0).all()
    np.testing.assert_allclose(imm.transition_probabilities(0.0, (20.0, 10.0, 5.0)), np.eye(3))
