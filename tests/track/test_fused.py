"""The compiled IMM kernels against the numpy reference forms in ``imm`` and ``kalman``."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from skyfence.track import fused, imm
from skyfence.track.kalman import update
from skyfence.track.models import ModelNoise, cwna_q
from skyfence.track.tracker import DEFAULT_MODELS

MODELS = DEFAULT_MODELS
KINDS = np.array([fused.CT if m.kind == "ct" else fused.CV for m in MODELS])


def _state(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    k = len(MODELS)
    x = np.c_[rng.normal(size=(n * k, 3)) * 3000, rng.normal(size=(n * k, 3)) * 40,
              rng.choice([0.0, 1e-6, 0.08, -0.5], n * k)].reshape(n, k, 7)
    a = rng.normal(size=(n, k, 7, 7)) * 5
    P = a @ np.swapaxes(a, 2, 3) + np.eye(7) * 0.1
    mu = rng.random((n, k)) + 0.01
    return x, P, mu / mu.sum(axis=1, keepdims=True)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), dt=st.floats(0.05, 12.0),
       scale=st.floats(0.2, 5.0))
def test_fused_predict_equals_numpy_mix_predict_combine(seed: int, dt: float,
                                                        scale: float) -> None:
    rng = np.random.default_rng(seed)
    x, P, mu = _state(rng, 16)
    q_scale = np.full(16, scale)
    q_scale[::3] = 1.0
    pi = imm.transition_probabilities(dt, (20.0, 10.0, 5.0))
    x0, P0, c_bar = imm.mix(mu, x, P, pi)
    xr, Pr = imm.predict(MODELS, x0, P0, dt, q_scale)
    xcr, Pcr = imm.combine(c_bar, xr, Pr)

    xf, Pf, muf = x.copy(), P.copy(), mu.copy()
    xc, Pc = np.empty((16, 7)), np.empty((16, 7, 7))
    Q = np.stack([cwna_q(dt, m.noise) for m in MODELS])
    fused.imm_predict(muf, xf, Pf, pi, dt, KINDS, Q, q_scale, xc, Pc)
    np.testing.assert_allclose(muf, c_bar, rtol=1e-12)
    np.testing.assert_allclose(xf, xr, rtol=1e-10, atol=1e-7)
    np.testing.assert_allclose(Pf, Pr, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(xc, xcr, rtol=1e-10, atol=1e-7)
    np.testing.assert_allclose(Pc, Pcr, rtol=1e-9, atol=1e-6)
    assert np.array_equal(Pf, np.swapaxes(Pf, 2, 3))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), m=st.integers(1, 3))
def test_fused_update_equals_numpy_update_reweight_combine(seed: int, m: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = 12, len(MODELS)
    x, P, mu = _state(rng, n)
    H = np.zeros((n, k, m, 7))
    H[..., :, :3] = rng.normal(size=(n, k, m, 3))
    nu = rng.normal(size=(n, k, m)) * 3
    b = rng.normal(size=(n, m, m))
    R = b @ np.swapaxes(b, 1, 2) + np.eye(m)
    xr, Pr, ll = update(x.reshape(-1, 7), P.reshape(-1, 7, 7), nu.reshape(-1, m),
                        H.reshape(-1, m, 7), np.repeat(R, k, axis=0))
    mur = imm.reweight(mu, ll.reshape(n, k))
    xcr, Pcr = imm.combine(mur, xr.reshape(n, k, 7), Pr.reshape(n, k, 7, 7))

    xf, Pf, muf = x.copy(), P.copy(), mu.copy()
    xc, Pc = np.empty((n, 7)), np.empty((n, 7, 7))
    fused.imm_update(xf, Pf, muf, H, nu, R, xc, Pc)
    np.testing.assert_allclose(xf.reshape(-1, 7), xr, rtol=1e-9, atol=1e-7)
    np.testing.assert_allclose(Pf.reshape(-1, 7, 7), Pr, rtol=1e-8, atol=1e-6)
    np.testing.assert_allclose(muf, mur, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(xc, xcr, rtol=1e-9, atol=1e-7)
    np.testing.assert_allclose(Pc, Pcr, rtol=1e-8, atol=1e-6)


def test_kernels_keep_covariances_positive_definite() -> None:
    rng = np.random.default_rng(0)
    x, P, mu = _state(rng, 50)
    pi = imm.transition_probabilities(1.0, (20.0, 10.0, 5.0))
    Q = np.stack([cwna_q(1.0, ModelNoise(0.5, 0.5, 1e-4))] * 3)
    xc, Pc = np.empty((50, 7)), np.empty((50, 7, 7))
    for _ in range(20):
        fused.imm_predict(mu, x, P, pi, 1.0, KINDS, Q, np.ones(50), xc, Pc)
        H = np.zeros((50, 3, 3, 7))
        H[..., [0, 1, 2], [0, 1, 2]] = 1.0
        nu = rng.normal(size=(50, 3, 3))
        fused.imm_update(x, P, mu, H, nu, np.broadcast_to(np.eye(3) * 25, (50, 3, 3)).copy(),
                         xc, Pc)
        assert (np.linalg.eigvalsh(P) > 0).all()
        assert (np.linalg.eigvalsh(Pc) > 0).all()
