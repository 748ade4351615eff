"""Covariance intersection: optimal ω, consistent whatever the cross-correlation."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from skyfence.track.t2t import covariance_intersection


def _spd(rng: np.random.Generator, n: int, d: int, scale: float = 1.0) -> np.ndarray:
    a = rng.normal(size=(n, d, d))
    return scale * (a @ np.swapaxes(a, 1, 2) + 0.5 * np.eye(d))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_omega_minimises_the_determinant(seed: int) -> None:
    rng = np.random.default_rng(seed)
    Pa, Pb = _spd(rng, 4, 6), _spd(rng, 4, 6, scale=3.0)
    xa, xb = rng.normal(size=(4, 6)), rng.normal(size=(4, 6))
    _, P, w = covariance_intersection(xa, Pa, xb, Pb)
    grid = np.linspace(0.0, 1.0, 1001)
    Ia, Ib = np.linalg.inv(Pa), np.linalg.inv(Pb)
    for i in range(4):
        dets = np.linalg.slogdet(grid[:, None, None] * Ia[i] + (1 - grid)[:, None, None] * Ib[i])[1]
        best = grid[int(np.argmax(dets))]
        assert abs(w[i] - best) <= 2e-3
        assert np.all(np.linalg.eigvalsh(P[i]) > 0)


def test_the_same_estimate_twice_is_not_counted_twice() -> None:
    rng = np.random.default_rng(1)
    Pa = _spd(rng, 3, 6)
    xa = rng.normal(size=(3, 6))
    x, P, _ = covariance_intersection(xa, Pa, xa.copy(), Pa.copy())
    np.testing.assert_allclose(x, xa, atol=1e-9)
    np.testing.assert_allclose(P, Pa, rtol=1e-6)  # a Kalman update would halve it


def test_a_much_better_estimate_dominates() -> None:
    rng = np.random.default_rng(2)
    Pa = _spd(rng, 2, 6)
    x, _P, w = covariance_intersection(np.zeros((2, 6)), Pa, np.ones((2, 6)), 1e6 * Pa)
    assert np.all(w > 0.99)
    np.testing.assert_allclose(x, 0.0, atol=1e-3)


def test_consistent_when_both_share_the_same_error() -> None:
    """Fully correlated errors: the fused covariance still covers the real error."""
    rng = np.random.default_rng(3)
    m = 4000
    Pa = np.tile(np.diag([100.0, 100.0, 400.0, 4.0, 4.0, 1.0]), (m, 1, 1))
    Pb = np.tile(np.diag([400.0, 25.0, 100.0, 1.0, 9.0, 4.0]), (m, 1, 1))
    common = rng.normal(size=(m, 6))
    ea = common * np.sqrt(np.diagonal(Pa[0]))
    eb = common * np.sqrt(np.diagonal(Pb[0]))
    x, P, _ = covariance_intersection(ea, Pa, eb, Pb)
    nees = np.einsum("ni,nij,nj->n", x, np.linalg.inv(P), x)
    assert nees.mean() <= 6.0 * 1.05


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.floats(1e-4, 1e4))
def test_the_kernel_agrees_with_the_numpy_reference(seed: int, scale: float) -> None:
    from skyfence.track.t2t import covariance_intersection_reference

    rng = np.random.default_rng(seed)
    n = 50
    Pa, Pb = _spd(rng, n, 6), _spd(rng, n, 6, scale=scale)
    xa, xb = rng.normal(size=(n, 6)), rng.normal(size=(n, 6))
    x, P, w = covariance_intersection(xa, Pa, xb, Pb)
    xr, Pr, wr = covariance_intersection_reference(xa, Pa, xb, Pb)
    # The reference's golden section stops 6e-6 wide; the kernel's Newton steps do not.
    np.testing.assert_allclose(w, wr, atol=2e-5)
    np.testing.assert_allclose(P, Pr, rtol=1e-3, atol=1e-4 * np.abs(Pr).max())
    np.testing.assert_allclose(x, xr, rtol=1e-3, atol=1e-3 * np.abs(xr).max())
    # And ω is at least as good as the reference's: det P no larger.
    assert np.all(np.linalg.slogdet(P)[1] <= np.linalg.slogdet(Pr)[1] + 1e-9)
    assert np.all(np.linalg.eigvalsh(P)[:, 0] > 0)


def test_a_pair_not_positive_definite_gives_nan_rows_not_an_error() -> None:
    rng = np.random.default_rng(4)
    Pa, Pb = _spd(rng, 3, 6), _spd(rng, 3, 6)
    Pb[1] = -Pb[1]
    x, P, w = covariance_intersection(rng.normal(size=(3, 6)), Pa, rng.normal(size=(3, 6)), Pb)
    assert np.isnan(w[1]) and np.isnan(x[1]).all() and np.isnan(P[1]).all()
    assert np.isfinite(w[[0, 2]]).all() and np.isfinite(P[[0, 2]]).all()
    x0, P0, w0 = covariance_intersection(np.empty((0, 6)), np.empty((0, 6, 6)),
                                         np.empty((0, 6)), np.empty((0, 6, 6)))
    assert x0.shape == (0, 6) and P0.shape == (0, 6, 6) and w0.shape == (0,)
