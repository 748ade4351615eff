import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from skyfence.track.linalg import inv_logdet, quad_form


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=st.integers(0, 100_000), m=st.integers(1, 4),
       scale=st.sampled_from([1e-6, 1.0, 1e4, 1e8]))
def test_inverse_and_logdet_match_numpy(seed: int, m: int, scale: float) -> None:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(20, m, m))
    S = (a @ a.transpose(0, 2, 1) + 0.1 * np.eye(m)) * scale
    inv, logdet = inv_logdet(S)
    np.testing.assert_allclose(inv @ S, np.broadcast_to(np.eye(m), S.shape), atol=1e-8)
    np.testing.assert_allclose(logdet, np.linalg.slogdet(S)[1], rtol=1e-9, atol=1e-9)
    nu = rng.normal(size=(20, m))
    np.testing.assert_allclose(quad_form(nu, inv), np.einsum("ki,kij,kj->k", nu, inv, nu))
